//! The standard plugins (`plugins/*`) through the real gateway: rate-limit
//! accuracy, the example chain of `examples/07-standard-plugins`, and each
//! of the simpler plugins once.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::Method;
use wasmgate_tests::plugins::{plugin_config, PluginDir};
use wasmgate_tests::{gateway, request, Backend, Reply, Seen};

/// An HS256 token over `claims`.
fn hs256(secret: &str, claims: &serde_json::Value) -> String {
    let b64 = |b: &[u8]| URL_SAFE_NO_PAD.encode(b);
    let message = format!("{}.{}", b64(br#"{"alg":"HS256","typ":"JWT"}"#), b64(claims.to_string().as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(message.as_bytes());
    format!("{message}.{}", b64(&mac.finalize().into_bytes()))
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn send(addr: std::net::SocketAddr, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("host", "localhost")];
    all.extend_from_slice(headers);
    request(addr, method, path, &all, Bytes::new()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_admits_rate_times_time_plus_burst_and_keys_are_independent() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("rate-limit", "rate-limit")]);
    let config = plugin_config(
        backend.addr,
        dir.path(),
        r#"{ name = "rate-limit", config = { rate = 100, burst = 10, key = "header", header = "x-key" } }"#,
    );
    let gw = gateway(&config);
    let addr = gw.local_addr("web").unwrap();
    // Warm the plugin's instances so compilation does not eat the window.
    send(addr, Method::GET, "/", &[("x-key", "warm-up")]).await;

    // 2,000 requests from key `a`, evenly spread over 3 s by 20 senders.
    const TOTAL: u32 = 2000;
    const SENDERS: u32 = 20;
    let window = Duration::from_secs(3);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..SENDERS {
        tasks.push(tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for k in (s..TOTAL).step_by(SENDERS as usize) {
                tokio::time::sleep_until((started + window * k / TOTAL).into()).await;
                let r = send(addr, Method::GET, "/", &[("x-key", "a")]).await;
                outcomes.push((Instant::now(), r));
            }
            outcomes
        }));
    }
    let mut admitted = 0u32;
    let mut refused = 0u32;
    let mut last = started;
    for task in tasks {
        for (at, reply) in task.await.unwrap() {
            last = last.max(at);
            match reply.status.as_u16() {
                200 => admitted += 1,
                429 => {
                    refused += 1;
                    for name in ["retry-after", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"] {
                        assert!(reply.headers.contains_key(name), "429 without {name}");
                    }
                }
                other => panic!("unexpected {other}: {}", reply.text()),
            }
        }
    }
    let elapsed = last - started;
    let expected = 10.0 + 100.0 * elapsed.as_secs_f64();
    println!("admitted {admitted}, refused {refused} in {elapsed:?} (expected ≈ {expected:.0})");
    assert_eq!(admitted + refused, TOTAL);
    assert!((admitted as f64 - expected).abs() <= 15.0, "admitted {admitted}, expected {expected:.0} ± 15 over {elapsed:?}");
    if elapsed < Duration::from_millis(3100) {
        assert!((285..=315).contains(&admitted), "{admitted}");
    }

    // Key `b` has its own full bucket, untouched by `a`'s refusals.
    let mut b_admitted = 0;
    for _ in 0..10 {
        let reply = send(addr, Method::GET, "/", &[("x-key", "b")]).await;
        if reply.status == 200 {
            b_admitted += 1;
            assert!(reply.headers.contains_key("x-ratelimit-remaining"));
        }
    }
    assert_eq!(b_admitted, 10);
}

/// The example config, pointed at `backend` and the test plugins.
fn example_config(backend: std::net::SocketAddr, dir: &std::path::Path) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/07-standard-plugins/wasmgate.toml");
    std::fs::read_to_string(&path)
        .unwrap()
        .replace("127.0.0.1:8080", "127.0.0.1:0")
        .replace("127.0.0.1:2003", &backend.to_string())
        .replace(r#"dir = "plugins""#, &format!("dir = \"{}\"", dir.display()))
        + "\n[log]\naccess = false\n"
}

const ALL: &[(&str, &str)] = &[
    ("request-id", "request-id"),
    ("ip-acl", "ip-acl"),
    ("jwt-auth", "jwt-auth"),
    ("rate-limit", "rate-limit"),
    ("url-rewrite", "url-rewrite"),
    ("response-rewrite", "response-rewrite"),
    ("cors", "cors"),
    ("key-auth", "key-auth"),
    ("headers", "headers"),
];

const SECRET: &str = "change-me-to-a-long-random-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_chain_works_end_to_end() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(ALL);
    let gw = gateway(&example_config(backend.addr, dir.path()));
    let addr = gw.local_addr("web").unwrap();
    let token = |iss: &str, sub: &str| {
        hs256(SECRET, &serde_json::json!({ "sub": sub, "iss": iss, "aud": "demo-api", "exp": now() + 60 }))
    };

    // No token: jwt-auth answers 401; request-id (before it) still tags the answer.
    let reply = send(addr, Method::GET, "/api/v1/items", &[]).await;
    assert_eq!(reply.status, 401);
    assert!(reply.headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    assert_eq!(reply.headers["x-request-id"].len(), 32);
    assert_eq!(backend.hits(), 0);

    // A good token: rewritten path and query, consumer and request id
    // upstream, the JSON answer wrapped in an envelope.
    let bearer = format!("Bearer {}", token("app-web", "alice"));
    let reply = send(addr, Method::GET, "/api/v1/items?id=7", &[("authorization", &bearer), ("x-request-id", "req-123")]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["x-envelope"], "v1");
    assert_eq!(reply.headers["x-request-id"], "req-123");
    assert_eq!(reply.headers["x-ratelimit-limit"], "10");
    let envelope: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    let seen = Seen::parse(envelope["data"].to_string().as_bytes());
    assert_eq!(seen.path, "/items");
    assert_eq!(seen.query.as_deref(), Some("id=7&via=wasmgate"));
    assert_eq!(seen.header("x-consumer-id"), Some("alice"));
    assert_eq!(seen.header("x-request-id"), Some("req-123"));

    // A token from an unknown app, and one that has expired.
    let stranger = format!("Bearer {}", token("app-other", "mallory"));
    assert_eq!(send(addr, Method::GET, "/api/v1/items", &[("authorization", &stranger)]).await.status, 401);
    let old = hs256(SECRET, &serde_json::json!({ "sub": "a", "iss": "app-web", "aud": "demo-api", "exp": now() - 120 }));
    let expired = send(addr, Method::GET, "/api/v1/items", &[("authorization", &format!("Bearer {old}"))]).await;
    assert_eq!(expired.status, 401);
    assert!(expired.headers["www-authenticate"].to_str().unwrap().contains("expired"));

    // A denied client behind the trusted local proxy: 403 before any auth.
    let denied = send(addr, Method::GET, "/api/v1/items", &[("x-forwarded-for", "203.0.113.9")]).await;
    assert_eq!(denied.status, 403);

    // The batch app's user has its own, smaller limit (5 a minute).
    let batch = format!("Bearer {}", token("app-batch", "batch-user"));
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(send(addr, Method::GET, "/api/v1/x", &[("authorization", &batch)]).await.status.as_u16());
    }
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 5, "{statuses:?}");
    assert_eq!(statuses.last(), Some(&429));
    // ...and alice is unaffected.
    assert_eq!(send(addr, Method::GET, "/api/v1/x", &[("authorization", &bearer)]).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_key_auth_and_headers_on_the_public_route() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(ALL);
    let gw = gateway(&example_config(backend.addr, dir.path()));
    let addr = gw.local_addr("web").unwrap();

    // Preflight is answered by cors, before key-auth could refuse it.
    let preflight = send(
        addr,
        Method::OPTIONS,
        "/things",
        &[("origin", "https://app.example.com"), ("access-control-request-method", "POST"), ("access-control-request-headers", "x-api-key")],
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.headers["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(preflight.headers["access-control-max-age"], "600");
    assert_eq!(backend.hits(), 0);

    let reply = send(addr, Method::GET, "/things", &[("origin", "https://app.example.com")]).await;
    assert_eq!(reply.status, 401);
    assert!(reply.headers.contains_key("www-authenticate"));

    let reply = send(
        addr,
        Method::GET,
        "/things",
        &[("origin", "https://app.example.com"), ("x-api-key", "partner-a-demo-key"), ("cookie", "a=1")],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["access-control-allow-origin"], "https://app.example.com");
    assert_eq!(reply.headers["x-served-by"], "wasmgate");
    let seen = reply.seen();
    assert_eq!(seen.header("x-consumer-id"), Some("partner-a"));
    assert_eq!(seen.header("x-api-key"), None);
    assert_eq!(seen.header("x-client-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-route"), Some("public"));
    assert_eq!(seen.header("cookie"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_a_standard_plugin_config_is_refused_at_load_naming_the_key() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("url-rewrite", "url-rewrite")]);
    let config = plugin_config(backend.addr, dir.path(), r#"{ name = "url-rewrite", config = { rules = [ { match = "^/(", replace = "" } ] } }"#);
    let parsed = wasmgate::Config::parse(&config, std::path::Path::new("t.toml")).unwrap();
    let err = wasmgate::Gateway::start(&parsed).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("rules[0].match"), "{err}");
}

/// The ```toml blocks of a README.
fn toml_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in text.lines() {
        match (&mut open, line.trim_end()) {
            (None, "```toml") => open = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                open = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Every plugin README's example config loads as written: it parses, and the
/// plugin accepts it at init (what `wasmgate check` does), so a newcomer who
/// copies it gets a working start, not a parse error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_plugin_readme_example_loads() {
    let dir = PluginDir::with(ALL);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins");
    let rest = format!(
        "\n[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n\n[[upstream]]\nname = \"up\"\ntargets = [ {{ address = \"127.0.0.1:9\" }} ]\n\n[plugins]\ndir = \"{}\"\nwatch = false\n\n[log]\naccess = false\n",
        dir.path().display()
    );
    let (mut checked, mut failures) = (0, Vec::new());
    for (name, _) in ALL {
        let readme = root.join(name).join("README.md");
        let text = std::fs::read_to_string(&readme).unwrap_or_else(|e| panic!("{}: {e}", readme.display()));
        let examples: Vec<String> = toml_blocks(&text)
            .into_iter()
            .filter(|block| block.contains(&format!("name = \"{name}\"")))
            .collect();
        if examples.is_empty() {
            failures.push(format!("{}: no example config", readme.display()));
        }
        for block in examples {
            let config = format!("[[route]]\nlistener = \"web\"\nupstream = \"up\"\n{block}{rest}");
            let loaded = wasmgate::Config::parse(&config, &readme)
                .map_err(|e| e.to_string())
                .and_then(|config| wasmgate::Gateway::start(&config).map(drop).map_err(|e| e.to_string()));
            match loaded {
                Ok(()) => checked += 1,
                Err(e) => failures.push(format!("{}:\n{block}\n  -> {e}", readme.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= ALL.len(), "only {checked} examples checked");
}
