//! The live dashboard (`GET /` on the admin listener) in a real browser:
//! Debian's headless Chromium, driven through `chromedriver` with plain
//! WebDriver JSON requests. The page must load with no script error and no
//! request leaving loopback, show a route's requests/s above 0 under traffic,
//! and show a target turning unhealthy after its backend is killed. A
//! screenshot is saved to `target/test-artifacts/dashboard.png`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::Method;
use serde_json::{json, Value};
use tempfile::TempDir;
use wasmgate_tests::plugins::PluginDir;
use wasmgate_tests::{closed_port, gateway, get, request, Backend};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const START_DEADLINE: Duration = Duration::from_secs(20);
/// How long the page has to show something before the test gives up.
const SHOW_DEADLINE: Duration = Duration::from_secs(8);

/// A chromedriver on a free loopback port, its log and Chromium's profile in a
/// temporary directory; killed by its PID on drop.
struct ChromeDriver {
    addr: SocketAddr,
    child: Child,
    dir: TempDir,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let addr = closed_port();
        let log = dir.path().join("chromedriver.log");
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={}", addr.port()))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER} (is Debian's `chromium-driver` installed?): {e}"));
        let mut driver = ChromeDriver { addr, child, dir };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = driver.child.try_wait() {
                panic!("chromedriver exited during start ({status}):\n{}", driver.log());
            }
            if let Ok(stream) = tokio::net::TcpStream::connect(addr).await {
                drop(stream);
                let status = driver.call(Method::GET, "/status", None).await;
                if status["value"]["ready"] == true {
                    return driver;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver not ready on {addr}:\n{}", driver.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// One WebDriver command; its JSON answer.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let host = self.addr.to_string();
        let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
        let headers = [("host", host.as_str()), ("content-type", "application/json")];
        let reply = request(self.addr, method, path, &headers, body).await;
        serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("{path}: {} is not JSON ({e}): {}", reply.status, reply.text()))
    }

    /// A headless Chromium that can reach nothing but loopback.
    async fn session(&self) -> Session<'_> {
        let profile = self.dir.path().join("profile");
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,900".into(),
            format!("--user-data-dir={}", profile.display()),
            // Anything not loopback goes to a port nobody answers (loopback bypasses proxies).
            "--proxy-server=127.0.0.1:9".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-default-apps".into(),
        ];
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let created = self.call(Method::POST, "/session", Some(capabilities)).await;
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}\n{}", self.log()))
            .to_owned();
        Session { driver: self, id }
    }
}

impl Drop for ChromeDriver {
    /// Asks chromedriver to quit its browsers and exit (so a failed test leaves
    /// no Chromium behind), then kills it by its PID if it is still there.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        if let Ok(mut stream) = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let request = format!("GET /shutdown HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n", self.addr);
            if stream.write_all(request.as_bytes()).is_ok() {
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Session<'a> {
    driver: &'a ChromeDriver,
    id: String,
}

impl Session<'_> {
    async fn command(&self, method: Method, what: &str, body: Option<Value>) -> Value {
        let answer = self.driver.call(method, &format!("/session/{}/{what}", self.id), body).await;
        assert!(answer["value"]["error"].is_null(), "{what}: {answer}");
        answer["value"].clone()
    }

    async fn open(&self, url: &str) {
        self.command(Method::POST, "url", Some(json!({ "url": url }))).await;
    }

    /// Runs `script` (a function body) in the page; its return value.
    async fn run(&self, script: &str) -> Value {
        self.command(Method::POST, "execute/sync", Some(json!({ "script": script, "args": [] }))).await
    }

    /// Polls `script` until `done` holds for its value (or `SHOW_DEADLINE` passes).
    async fn wait_for(&self, script: &str, done: impl Fn(&Value) -> bool) -> Result<Value, Value> {
        let deadline = Instant::now() + SHOW_DEADLINE;
        loop {
            let value = self.run(script).await;
            if done(&value) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                return Err(value);
            }
            // The page updates once a second; look a few times per update.
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self) -> Vec<u8> {
        let png = self.command(Method::GET, "screenshot", None).await;
        base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot is not base64: {e}"))
    }

    async fn close(self) {
        self.driver.call(Method::DELETE, &format!("/session/{}", self.id), None).await;
    }
}

/// One route `api` over two targets with fast health checks and a breaker;
/// with a plugin folder, the route runs `pass`, then `faulty` (which traps on `x-boom`, failing open).
fn config(a: SocketAddr, b: SocketAddr, plugins: Option<&std::path::Path>) -> String {
    let (chain, folder) = match plugins {
        Some(dir) => (
            r#"plugins = [ { name = "pass" }, { name = "faulty", config = { mode = "trap", when_header = "x-boom" }, on_error = "fail-open" } ]"#,
            format!("[plugins]\ndir = \"{}\"\n", dir.display()),
        ),
        None => ("", String::new()),
    };
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
name = "api"
listener = "web"
upstream = "up"
{chain}

[[upstream]]
name = "up"
targets = [ {{ address = "{a}" }}, {{ address = "{b}" }} ]
health_check = {{ kind = "tcp", interval = "200ms", timeout = "100ms", unhealthy_after = 1, healthy_after = 1 }}
circuit_breaker = {{}}

[runtime]
workers = 2

[log]
access = false

{folder}
[admin]
address = "127.0.0.1:0"
"#
    )
}

fn artifact_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("test-artifacts");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir.canonicalize().unwrap_or(dir)
}

const READ_ROUTE: &str = r#"
    const card = document.querySelector('[data-route="api"][data-rps]');
    return { errors: window.__dashboard.errors, snapshots: window.__dashboard.snapshots,
             rps: card ? Number(card.dataset.rps) : null };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_traffic_and_a_dead_target_in_a_real_browser() {
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let b_addr = b.addr;
    let plugins = PluginDir::with(&[("pass", "pass"), ("faulty", "faulty")]);
    let gw = gateway(&config(a.addr, b.addr, Some(plugins.path())));
    let web = gw.local_addr("web").unwrap();
    let admin = gw.admin_addr().unwrap();

    // The page, as the browser gets it: HTML with a strict policy.
    let page = request(admin, Method::GET, "/", &[("host", "admin"), ("accept", "text/html")], Bytes::new()).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers["content-type"], "text/html; charset=utf-8");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.starts_with("default-src 'none'; script-src 'sha256-") && csp.contains("connect-src 'self'"), "{csp}");

    // Traffic until the test ends: a client that keeps the route busy.
    let sending = Arc::new(AtomicBool::new(true));
    let traffic = tokio::spawn({
        let sending = sending.clone();
        async move {
            let mut sent = 0u64;
            while sending.load(Ordering::Relaxed) && sent < 100_000 {
                match sent % 10 {
                    0 => request(web, Method::GET, "/", &[("host", "x"), ("x-boom", "1")], Bytes::new()).await,
                    _ => get(web, "/").await,
                };
                sent += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    });

    let driver = ChromeDriver::start().await;
    let session = driver.session().await;
    let url = format!("http://{admin}/");
    session.open(&url).await;

    let shown = session
        .wait_for(READ_ROUTE, |v| v["snapshots"].as_u64() >= Some(2) && v["rps"].as_f64().is_some_and(|r| r > 0.0))
        .await
        .unwrap_or_else(|v| panic!("the route card never showed traffic: {v}"));
    println!("route api under traffic: {shown}");

    drop(b);
    let target = format!(
        r#"const row = document.querySelector('[data-upstream="up"] [data-target="{b_addr}"]');
           return row ? {{ health: row.dataset.health, breaker: row.dataset.breaker,
                           in_rotation: row.dataset.inRotation }} : null;"#
    );
    let dead = session
        .wait_for(&target, |v| v["health"] == "unhealthy" || v["breaker"] == "open")
        .await
        .unwrap_or_else(|v| panic!("the killed target never showed unhealthy/open: {v}"));
    assert_eq!(dead["in_rotation"], "false", "{dead}");
    println!("killed target {b_addr}: {dead}");
    let faulty = session
        .wait_for(
            r#"const row = document.querySelector('#plugins [data-plugin="faulty"][data-route="api"]');
               return row ? { faults: Number(row.dataset.faults), p99_ms: row.dataset.p99Ms } : null;"#,
            |v| v["faults"].as_u64().is_some_and(|f| f > 0) && v["p99_ms"] != "",
        )
        .await
        .unwrap_or_else(|v| panic!("the plugin table never showed faulty's faults: {v}"));
    println!("plugin faulty on api: {faulty}");

    // The reload log: one applied, one refused.
    gw.reload(None).unwrap_or_else(|e| panic!("reload: {e}"));
    let restart = wasmgate::Config::parse(&config(a.addr, b_addr, Some(plugins.path())).replace("workers = 2", "workers = 3"), "t.toml".as_ref());
    assert!(gw.reload(Some(restart.unwrap())).is_err(), "changing workers needs a restart");
    session
        .wait_for("return document.querySelectorAll('#reloads [data-reload-ok]').length;", |v| v == 2)
        .await
        .unwrap_or_else(|v| panic!("the reload log did not show both reloads: {v}"));
    // One more update so the screenshot shows a settled page.
    let seen = session.run("return window.__dashboard.snapshots;").await.as_u64().unwrap_or(0);
    let _ = session.wait_for("return window.__dashboard.snapshots;", |v| v.as_u64() > Some(seen)).await;

    let png = session.screenshot().await;
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    let dir = artifact_dir();
    let path = dir.join("dashboard.png");
    std::fs::write(&path, &png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    println!("dashboard screenshot: {}", path.display());

    // No script error, no CSP violation, and every request the page made went to the admin listener.
    let checks = session
        .run(
            "return { errors: window.__dashboard.errors, page: location.href,
                      resources: performance.getEntriesByType('resource').map(e => e.name) };",
        )
        .await;
    assert_eq!(checks["errors"], json!([]), "{checks}");
    assert_eq!(checks["page"], url.as_str());
    for resource in checks["resources"].as_array().unwrap() {
        assert!(resource.as_str().unwrap().starts_with(&url), "a request left the admin listener: {checks}");
    }
    let log = driver.call(Method::POST, &format!("/session/{}/se/log", session.id), Some(json!({ "type": "browser" }))).await;
    let severe: Vec<&Value> =
        log["value"].as_array().map(|l| l.iter().filter(|e| e["level"] == "SEVERE").collect()).unwrap_or_default();
    assert!(severe.is_empty(), "browser console errors: {severe:?}");

    session.close().await;
    sending.store(false, Ordering::Relaxed);
    let _ = traffic.await;
}

/// `/events` without the browser: a JSON snapshot a second, the token checked
/// like on every admin path, a stream in flight is not idle (it outlives the
/// admin idle timeout), and it ends when the gateway stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_needs_the_token_and_ends_at_shutdown() {
    use http_body_util::{BodyExt, Empty};
    const TOKEN: &str = "dashboard-token-0123456789abcdef";
    let a = Backend::start("a").await;
    let b = Backend::start("b").await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("admin.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let admin_extra = format!("token_file = \"{}\"\nlimits = {{ idle_timeout = \"300ms\" }}\n", token_file.display());
    let gw = gateway(&(config(a.addr, b.addr, None) + &admin_extra));
    let admin = gw.admin_addr().unwrap();

    let refused = request(admin, Method::GET, "/events", &[("host", "admin")], Bytes::new()).await;
    assert_eq!(refused.status, 401, "{}", refused.text());

    let stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/events")
        .header("host", "admin")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.into_body();
    let mut text = String::new();
    // Three snapshots: two seconds, well past the 300 ms idle timeout.
    let events = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), body.frame()).await.expect("a frame within 5 s");
        let frame = frame.expect("the stream goes on").unwrap();
        text.push_str(&String::from_utf8_lossy(frame.data_ref().unwrap()));
        let events: Vec<&str> = text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")).collect();
        if events.len() >= 3 {
            break events.iter().map(|e| serde_json::from_str::<Value>(e).unwrap()).collect::<Vec<_>>();
        }
    };
    assert!(events[2]["at_unix_ms"].as_u64() > events[0]["at_unix_ms"].as_u64(), "{events:?}");
    let snapshot = &events[2];
    assert_eq!(snapshot["routes"][0]["name"], "api", "{snapshot}");
    assert_eq!(snapshot["upstreams"][0]["targets"].as_array().map(Vec::len), Some(2), "{snapshot}");
    assert!(snapshot["routes"][0]["duration"]["buckets"].as_array().is_some_and(|b| !b.is_empty()), "{snapshot}");

    let started = Instant::now();
    gw.shutdown();
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the event stream outlived the gateway");
    println!("event stream ended {:?} after shutdown", started.elapsed());
}
