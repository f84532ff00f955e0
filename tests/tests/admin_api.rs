//! The admin API through a real gateway: every endpoint's shape, the bearer
//! token, draining a target under traffic, `POST /reload` with a broken and a
//! good config file and redacted plugin secrets. (The log level that expires is in
//! `admin_log_level.rs`: the logger is the process's, so that test has a process
//! of its own.)

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use wasmgate::{Config, Gateway};
use wasmgate_tests::plugins::{plugin_config, PluginDir};
use wasmgate_tests::{get, request, simple_config, Backend, Reply};

/// A request to the admin listener, with `Authorization: Bearer <token>` when given.
async fn admin(addr: SocketAddr, method: Method, path: &str, token: Option<&str>, body: &str) -> Reply {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("host", "admin")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    request(addr, method, path, &headers, Bytes::from(body.to_owned())).await
}

fn json(reply: &Reply) -> Value {
    assert_eq!(reply.headers["content-type"], "application/json", "{reply:?}");
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.text()))
}

/// `GET path` on the admin listener, expecting 200 and JSON.
async fn status(addr: SocketAddr, path: &str) -> Value {
    let reply = admin(addr, Method::GET, path, None, "").await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    json(&reply)
}

/// A config file in a temporary folder, so that `POST /reload` has a file to read again.
struct ConfigFile {
    dir: tempfile::TempDir,
}

impl ConfigFile {
    fn new(text: &str) -> ConfigFile {
        let file = ConfigFile { dir: tempfile::tempdir().unwrap() };
        file.write(text);
        file
    }

    fn path(&self) -> PathBuf {
        self.dir.path().join("wasmgate.toml")
    }

    /// Replaces the file's content by renaming a complete copy over it.
    fn write(&self, text: &str) {
        let partial = self.dir.path().join(".wasmgate.toml.partial");
        std::fs::write(&partial, text).unwrap();
        std::fs::rename(&partial, self.path()).unwrap();
    }

    fn start(&self) -> Gateway {
        let config = Config::load(&self.path()).unwrap_or_else(|e| panic!("{e}"));
        Gateway::start(&config).unwrap_or_else(|e| panic!("{e}"))
    }

    fn hash(&self) -> String {
        wasmgate::config::config_hash(&Config::load(&self.path()).unwrap())
    }
}

const ADMIN: &str = "\n[admin]\naddress = \"127.0.0.1:0\"\n";
const JWT_SECRET: &str = "a-very-secret-hmac-key-that-must-not-leak";

fn jwt_config(backend: SocketAddr, dir: &Path) -> String {
    let plugins = format!(
        r#"{{ name = "jwt-auth", config = {{ keys = [ {{ alg = "HS256", secret = "{JWT_SECRET}" }} ], issuers = ["app"] }} }}"#
    );
    plugin_config(backend, dir, &plugins) + ADMIN
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_json_of_its_shape() {
    let backend = Backend::start("b").await;
    let plugins = PluginDir::with(&[("jwt-auth", "jwt-auth")]);
    let file = ConfigFile::new(&jwt_config(backend.addr, plugins.path()));
    let gw = file.start();
    let addr = gw.admin_addr().unwrap();

    let index = status(addr, "/").await;
    assert!(index["endpoints"].as_array().unwrap().iter().any(|e| e == "POST /reload"), "{index}");

    let routes = status(addr, "/status/routes").await;
    let web = &routes["listeners"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["address"], gw.local_addr("web").unwrap().to_string(), "the bound address, not port 0");
    assert_eq!(web["protocol"], "http");
    let route = &web["routes"][0];
    assert_eq!(route["name"], "main");
    assert_eq!((route["host"].clone(), route["path_prefix"].clone()), (Value::Null, "/".into()));
    assert_eq!((route["strip_prefix"].clone(), route["upstream"].clone()), (false.into(), "up".into()));
    assert_eq!(route["plugins"], serde_json::json!(["jwt-auth"]));
    assert_eq!(route["upgrades"], serde_json::json!(["websocket"]));

    let upstreams = status(addr, "/status/upstreams").await;
    let up = &upstreams["upstreams"][0];
    assert_eq!((up["name"].clone(), up["available"].clone()), ("up".into(), 1.into()));
    let target = &up["targets"][0];
    assert_eq!(target["address"], backend.addr.to_string());
    assert_eq!((target["in_rotation"].clone(), target["drained"].clone()), (true.into(), false.into()));
    assert_eq!(target["health"], "unchecked");

    let listed = status(addr, "/status/plugins").await;
    assert_eq!(listed["dir"], plugins.path().display().to_string());
    let jwt = &listed["plugins"][0];
    assert_eq!(jwt["name"], "jwt-auth");
    assert_eq!(jwt["version"].as_str().unwrap().len(), 12, "{jwt}");
    assert_eq!(jwt["sha256"].as_str().unwrap().len(), 64, "{jwt}");
    assert!(jwt["sha256"].as_str().unwrap().starts_with(jwt["version"].as_str().unwrap()));
    assert_eq!(
        jwt["routes"],
        serde_json::json!([{ "route": "main", "on_error": "fail-closed", "state": "local", "on_state_error": null }])
    );
    assert_eq!(listed["state_backend"], Value::Null, "no [state]");
    assert_eq!(jwt["load_error"], Value::Null);

    let config = status(addr, "/status/config").await;
    assert_eq!(config["source"], file.path().display().to_string());
    assert_eq!(config["hash"], file.hash());
    assert_eq!(config["hash"].as_str().unwrap().len(), 16);
    assert!(config["applied_unix_ms"].as_u64().unwrap() > 0);
    assert_eq!(config["last_refused_reload"], Value::Null);
    assert_eq!(config["config"]["upstream"][0]["name"], "up");
    assert_eq!(config["config"]["route"][0]["plugins"][0]["name"], "jwt-auth");

    let metrics = admin(addr, Method::GET, "/metrics", None, "").await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers["content-type"].to_str().unwrap().starts_with("text/plain"), "{metrics:?}");

    let missing = admin(addr, Method::GET, "/status/nothing", None, "").await;
    assert_eq!(missing.status, 404);
    assert!(json(&missing)["error"].is_string());
    for (method, path, allowed) in [
        (Method::POST, "/status/upstreams", "GET"),
        (Method::DELETE, "/status/config", "GET"),
        (Method::GET, "/reload", "POST"),
        (Method::GET, "/upstreams/up/targets/127.0.0.1:1/drain", "POST"),
        (Method::POST, "/log-level", "GET, PUT, DELETE"),
    ] {
        let reply = admin(addr, method.clone(), path, None, "").await;
        assert_eq!(reply.status, 405, "{method} {path}");
        assert_eq!(reply.headers["allow"], allowed, "{method} {path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_secrets_are_redacted_unless_the_operator_opts_in() {
    let backend = Backend::start("b").await;
    let plugins = PluginDir::with(&[("jwt-auth", "jwt-auth")]);
    let text = jwt_config(backend.addr, plugins.path());
    let file = ConfigFile::new(&text);
    let gw = file.start();
    let addr = gw.admin_addr().unwrap();

    let reply = admin(addr, Method::GET, "/status/config", None, "").await;
    assert!(!reply.text().contains(JWT_SECRET), "the secret leaked: {}", reply.text());
    let config = json(&reply);
    assert_eq!(config["plugin_configs"], "redacted");
    assert_eq!(config["config"]["route"][0]["plugins"][0]["config"], "<redacted>");
    // Nor is it in any other page.
    for path in ["/", "/status/routes", "/status/upstreams", "/status/plugins", "/metrics"] {
        let reply = admin(addr, Method::GET, path, None, "").await;
        assert!(!reply.text().contains(JWT_SECRET), "{path} leaked the secret");
    }

    // Opting in is an [admin] change a reload applies.
    file.write(&format!("{text}show_plugin_config = true\n"));
    assert_eq!(admin(addr, Method::POST, "/reload", None, "").await.status, 200);
    let config = status(addr, "/status/config").await;
    assert_eq!(config["plugin_configs"], "shown");
    assert_eq!(config["config"]["route"][0]["plugins"][0]["config"]["keys"][0]["secret"], JWT_SECRET);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_every_request_needs_it_and_learns_nothing_without_it() {
    const TOKEN: &str = "s3cr3t-admin-token-0123456789";
    let backend = Backend::start("b").await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("admin.token"), format!("{TOKEN}\n")).unwrap();
    let text = simple_config("round_robin", &[(backend.addr, 1)], "")
        + &format!("{ADMIN}token_file = \"{}\"\n", dir.path().join("admin.token").display());
    let file = ConfigFile::new(&text);
    let gw = file.start();
    let addr = gw.admin_addr().unwrap();

    let refused = |reply: &Reply, what: &str| {
        assert_eq!(reply.status, 401, "{what}: {}", reply.text());
        assert_eq!(reply.headers["www-authenticate"], "Bearer", "{what}");
        assert!(reply.body.is_empty(), "{what}: a refusal says nothing: {}", reply.text());
        assert!(reply.headers.get("content-type").is_none() && reply.headers.get("allow").is_none(), "{what}");
    };
    for path in ["/status/upstreams", "/status/config", "/metrics", "/", "/no/such/page"] {
        refused(&admin(addr, Method::GET, path, None, "").await, &format!("no token, GET {path}"));
        refused(&admin(addr, Method::GET, path, Some("wrong-token-0123456789"), "").await, "a wrong token");
        refused(&admin(addr, Method::GET, path, Some(&TOKEN[..TOKEN.len() - 1]), "").await, "a prefix of the token");
    }
    refused(&admin(addr, Method::POST, "/reload", None, "").await, "POST /reload without a token");
    refused(&admin(addr, Method::POST, "/upstreams/up/targets/x/drain", None, "").await, "a drain without a token");
    let basic = request(addr, Method::GET, "/status/upstreams", &[("authorization", &format!("Basic {TOKEN}"))], Bytes::new()).await;
    refused(&basic, "the Basic scheme");
    assert_eq!(wasmgate_tests::rotation(&gw, "up"), vec![backend.addr], "nothing was drained");

    let reply = admin(addr, Method::GET, "/status/upstreams", Some(TOKEN), "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let config = admin(addr, Method::GET, "/status/config", Some(TOKEN), "").await;
    assert_eq!(config.status, 200);
    assert!(!config.text().contains(TOKEN), "the token is never shown");
    assert!(config.text().contains("admin.token"), "where it is read from is");

    // The token file is read again on reload: the old token stops working.
    const NEW: &str = "a-rotated-admin-token-9876543210";
    std::fs::write(dir.path().join("admin.token"), NEW).unwrap();
    assert_eq!(admin(addr, Method::POST, "/reload", Some(TOKEN), "").await.status, 200);
    refused(&admin(addr, Method::GET, "/status/upstreams", Some(TOKEN), "").await, "the old token");
    assert_eq!(admin(addr, Method::GET, "/status/upstreams", Some(NEW), "").await.status, 200);
}

#[test]
fn the_config_check_refuses_an_admin_address_off_loopback_without_a_token() {
    let text = simple_config("round_robin", &[("127.0.0.1:2003".parse().unwrap(), 1)], "");
    let file = ConfigFile::new(&format!("{text}\n[admin]\naddress = \"0.0.0.0:9901\"\n"));
    let err = Config::load(&file.path()).unwrap_err();
    assert_eq!(err.key, "admin.address");
    assert!(err.to_string().contains("0.0.0.0:9901 is not a loopback address") && err.reason.contains("token_file"), "{err}");

    std::fs::write(file.dir.path().join("token"), "0123456789abcdef0123456789abcdef\n").unwrap();
    file.write(&format!("{text}\n[admin]\naddress = \"0.0.0.0:9901\"\ntoken_file = \"token\"\n"));
    let config = Config::load(&file.path()).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.admin.unwrap().token.is_some(), "a token file relative to the config file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_drained_target_leaves_rotation_without_a_failed_request_and_comes_back() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let text = simple_config("round_robin", &[(a.addr, 1), (b.addr, 1)], "health_check = { kind = \"tcp\", interval = \"100ms\" }")
        + ADMIN;
    let file = ConfigFile::new(&text);
    let gw = file.start();
    let (web, addr) = (gw.local_addr("web").unwrap(), gw.admin_addr().unwrap());
    let drain = |target: SocketAddr, action: &'static str| async move {
        admin(addr, Method::POST, &format!("/upstreams/up/targets/{target}/{action}"), None, "").await
    };

    // A request in flight on b when it is drained still finishes.
    let mut held = Vec::new();
    for _ in 0..10 {
        held.push(tokio::spawn(get(web, "/hold")));
        if wasmgate_tests::wait_until(Duration::from_secs(2), || a.hits() + b.hits() == held.len()).await.is_none() {
            panic!("a /hold request did not arrive");
        }
        if b.hits() > 0 {
            break;
        }
    }
    assert_eq!(b.hits(), 1, "no request went to b");

    // Clients keep sending while b is drained.
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let reply = get(web, "/load").await;
                    if reply.status != 200 {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    let wait_sent = |more: usize| {
        let sent = sent.clone();
        let target = sent.load(Ordering::Relaxed) + more;
        async move {
            let started = Instant::now();
            while sent.load(Ordering::Relaxed) < target {
                assert!(started.elapsed() < Duration::from_secs(10), "the clients stalled");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    };
    wait_sent(20).await;

    let reply = drain(b.addr, "drain").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = json(&reply);
    assert_eq!(answer["target"], b.addr.to_string());
    assert_eq!((answer["drained"].clone(), answer["in_rotation"].clone()), (true.into(), false.into()));
    assert_eq!(answer["available"], 1);
    assert_eq!(wasmgate_tests::rotation(&gw, "up"), vec![a.addr]);

    // Requests picked before the drain finish; after them, b gets nothing.
    wait_sent(8).await;
    let b_hits = b.hits();
    wait_sent(100).await;
    assert_eq!(b.hits(), b_hits, "a drained target got new requests");

    // The held request on b finishes normally.
    for _ in 0..held.len() {
        a.release();
        b.release();
    }
    for hold in held {
        assert_eq!(hold.await.unwrap().status, 200, "a request in flight on the drained target failed");
    }

    // Health checks keep running and a reload that keeps the upstream (but changes it) keeps the drain.
    tokio::time::sleep(Duration::from_millis(250)).await;
    file.write(&text.replace("balance = \"round_robin\"", "balance = \"round_robin\"\nretries = 2"));
    assert_eq!(admin(addr, Method::POST, "/reload", None, "").await.status, 200);
    let upstreams = status(addr, "/status/upstreams").await;
    let targets = upstreams["upstreams"][0]["targets"].as_array().unwrap().clone();
    let b_status = targets.iter().find(|t| t["address"] == b.addr.to_string()).unwrap();
    assert_eq!((b_status["drained"].clone(), b_status["in_rotation"].clone()), (true.into(), false.into()));
    assert_eq!(b_status["health"], "healthy");
    let b_hits = b.hits();
    wait_sent(50).await;
    assert_eq!(b.hits(), b_hits, "the drain did not survive the reload");

    // Unknown upstreams and targets are 404s.
    assert_eq!(admin(addr, Method::POST, "/upstreams/nope/targets/127.0.0.1:1/drain", None, "").await.status, 404);
    assert_eq!(drain("127.0.0.1:1".parse().unwrap(), "drain").await.status, 404);

    // Undrained, b is back in rotation.
    let reply = drain(b.addr, "undrain").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(json(&reply)["in_rotation"], true);
    let before = b.hits();
    let back = wasmgate_tests::wait_until(Duration::from_secs(5), || b.hits() > before + 10).await;
    assert!(back.is_some(), "b got no requests after undrain");

    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert_eq!(failed.load(Ordering::Relaxed), 0, "of {} requests", sent.load(Ordering::Relaxed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_reload_refuses_a_broken_config_and_applies_a_good_one() {
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let text = |backend: SocketAddr| simple_config("round_robin", &[(backend, 1)], "") + ADMIN;
    let file = ConfigFile::new(&text(a.addr));
    let gw = file.start();
    let (web, addr) = (gw.local_addr("web").unwrap(), gw.admin_addr().unwrap());
    let first_hash = file.hash();

    // Broken: the validation error, with file, key and reason; the old config serves on.
    file.write(&text(b.addr).replace(", weight = 1", ", weight = 0"));
    let reply = admin(addr, Method::POST, "/reload", None, "").await;
    assert_eq!(reply.status, 422, "{}", reply.text());
    let error = json(&reply);
    assert_eq!(error["error"], "invalid config");
    assert_eq!(error["file"], file.path().display().to_string());
    assert_eq!(error["key"], "upstream[0].targets[0].weight");
    assert_eq!(error["reason"], "must be at least 1");
    assert_eq!(get(web, "/x").await.seen().backend, "a");
    let config = status(addr, "/status/config").await;
    assert_eq!(config["hash"], first_hash);
    assert!(config["last_refused_reload"]["error"].as_str().unwrap().contains("must be at least 1"));

    // Not TOML at all: the line is named too.
    file.write("[[listener]\n");
    let error = json(&admin(addr, Method::POST, "/reload", None, "").await);
    assert_eq!(error["line"], 1, "{error}");

    // A change a reload cannot apply: 409.
    file.write(&text(b.addr).replace("workers = 2", "workers = 3"));
    let reply = admin(addr, Method::POST, "/reload", None, "").await;
    assert_eq!(reply.status, 409, "{}", reply.text());
    assert!(json(&reply)["message"].as_str().unwrap().contains("restart"));
    assert_eq!(get(web, "/x").await.seen().backend, "a");

    // Good: the new config's hash, and it is live.
    file.write(&text(b.addr));
    let reply = admin(addr, Method::POST, "/reload", None, "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = json(&reply);
    assert_eq!(answer["hash"], file.hash());
    assert_ne!(answer["hash"], first_hash);
    assert_eq!(get(web, "/x").await.seen().backend, "b");
    let config = status(addr, "/status/config").await;
    assert_eq!(config["hash"], answer["hash"]);
    assert_eq!(config["last_refused_reload"], Value::Null, "a successful reload clears the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_that_does_not_load_is_named_and_the_running_version_serves_on() {
    let backend = Backend::start("b").await;
    let plugins = PluginDir::with(&[("jwt-auth", "jwt-auth")]);
    let file = ConfigFile::new(&jwt_config(backend.addr, plugins.path()));
    let gw = file.start();
    let (web, addr) = (gw.local_addr("web").unwrap(), gw.admin_addr().unwrap());
    let version = status(addr, "/status/plugins").await["plugins"][0]["version"].clone();

    plugins.write("jwt-auth", b"not a wasm component");
    let reply = admin(addr, Method::POST, "/reload", None, "").await;
    assert_eq!(reply.status, 422, "{}", reply.text());
    let error = json(&reply);
    assert_eq!(error["error"], "plugins not loaded");
    assert_eq!(error["failures"][0]["file"], plugins.file("jwt-auth").display().to_string());

    let listed = status(addr, "/status/plugins").await;
    let jwt = &listed["plugins"][0];
    assert_eq!(jwt["version"], version, "the loaded version still runs");
    assert!(jwt["load_error"].is_string(), "{jwt}");
    assert_eq!(get(web, "/x").await.status, 401, "jwt-auth still guards the route");

    plugins.install("jwt-auth", "jwt-auth");
    assert_eq!(admin(addr, Method::POST, "/reload", None, "").await.status, 200);
    assert_eq!(status(addr, "/status/plugins").await["plugins"][0]["load_error"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stray_wasm_no_route_names_is_ignored_with_why_and_never_blocks_a_reload() {
    let backend = Backend::start("b").await;
    let plugins = PluginDir::with(&[("jwt-auth", "jwt-auth")]);
    let file = ConfigFile::new(&jwt_config(backend.addr, plugins.path()));
    let gw = file.start();
    let (web, addr) = (gw.local_addr("web").unwrap(), gw.admin_addr().unwrap());
    assert_eq!(status(addr, "/status/plugins").await["ignored"], serde_json::json!([]));

    // Not even WebAssembly, and in the watched folder: the reloads it sets off apply.
    plugins.write("notes", b"hello world, these are my notes");
    file.write(&jwt_config(backend.addr, plugins.path()).replace("workers = 2", "workers = 2\n\n# edited"));
    let reply = admin(addr, Method::POST, "/reload", None, "").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let answer = json(&reply);
    assert_eq!(answer["config"], file.path().display().to_string(), "the answer names the file");
    assert_eq!(answer["hash"], file.hash());

    let listed = status(addr, "/status/plugins").await;
    assert_eq!(listed["plugins"][0]["name"], "jwt-auth");
    assert_eq!(listed["plugins"].as_array().map(Vec::len), Some(1), "{listed}");
    let notes = serde_json::json!({
        "name": "notes",
        "file": plugins.file("notes").display().to_string(),
        "reason": "no route names it",
    });
    assert_eq!(listed["ignored"], serde_json::json!([notes]));
    assert_eq!(status(addr, "/status/config").await["last_refused_reload"], Value::Null);
    assert_eq!(get(web, "/x").await.status, 401, "jwt-auth still guards the route");

    // Named by a route, the same file is loaded, and refused saying what it is.
    let text = jwt_config(backend.addr, plugins.path()).replace(r#"plugins = [ {"#, r#"plugins = [ { name = "notes" }, {"#);
    file.write(&text);
    let reply = admin(addr, Method::POST, "/reload", None, "").await;
    assert_eq!(reply.status, 422, "{}", reply.text());
    let error = json(&reply);
    assert_eq!(error["config"], file.path().display().to_string());
    assert_eq!(
        error["message"],
        format!(
            "{}: not a WebAssembly file (starts with \"hello wo\u{2026}\"); build the plugin with cargo build --target wasm32-wasip2",
            plugins.file("notes").display()
        )
    );
}
