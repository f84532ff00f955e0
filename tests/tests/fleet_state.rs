//! Global state for plugins through Redis (`[state]`, `state = "global"`):
//! two gateways in this process, each with its own listener and plugin
//! runtime, sharing a rate limit through a real redis-server. Every request
//! is bounded by a timeout; every run is a few seconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use wasmgate::Gateway;
use wasmgate_tests::plugins::PluginDir;
use wasmgate_tests::redis::Redis;
use wasmgate_tests::{gateway, request, wait_until, Backend};

/// Longest any one request may take: past it, the request "hung".
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// A gateway config: routes `/open` and `/closed` running rate-limit with
/// `limit` (TOML inline-table fields), `state` and the two `on_state_error`s
/// (local state takes none), sharing Redis `redis` in a fleet of two.
fn config(backend: SocketAddr, dir: &std::path::Path, redis: SocketAddr, state: &str, limit: &str) -> String {
    let entry = |on_state_error: &str| {
        let on_state_error = match state {
            "global" => format!(r#", on_state_error = "{on_state_error}""#),
            _ => String::new(),
        };
        format!(
            r#"{{ name = "rate-limit", state = "{state}"{on_state_error}, config = {{ {limit}, key = "header", header = "x-key" }} }}"#
        )
    };
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
name = "open"
listener = "web"
path_prefix = "/open"
upstream = "up"
plugins = [ {open} ]

[[route]]
name = "closed"
listener = "web"
path_prefix = "/closed"
upstream = "up"
plugins = [ {closed} ]

[[upstream]]
name = "up"
targets = [ {{ address = "{backend}" }} ]

[plugins]
dir = "{dir}"

[state]
redis = "redis://{redis}"
fleet_size = 2
sync_interval = "50ms"
timeout = "200ms"

[admin]
address = "127.0.0.1:0"

[runtime]
workers = 2

[log]
access = false
"#,
        open = entry("fail-open"),
        closed = entry("fail-closed"),
        dir = dir.display(),
    )
}

/// Statuses of what two gateways answered.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    admitted: u32,
    refused: u32,
    unavailable: u32,
}

/// Sends `per_gateway` requests for key `key` to `path` on each gateway,
/// spread evenly over `window` by 8 senders per gateway. Panics on a request
/// that takes longer than `REQUEST_TIMEOUT` or an unexpected status.
async fn drive(addrs: &[SocketAddr], path: &'static str, key: &'static str, per_gateway: u32, window: Duration) -> (Tally, Duration) {
    const SENDERS: u32 = 8;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for &addr in addrs {
        for s in 0..SENDERS {
            tasks.push(tokio::spawn(async move {
                let mut statuses = Vec::new();
                for k in (s..per_gateway).step_by(SENDERS as usize) {
                    tokio::time::sleep_until((started + window * k / per_gateway).into()).await;
                    let headers = [("host", "localhost"), ("x-key", key)];
                    let sent = request(addr, Method::GET, path, &headers, Bytes::new());
                    match tokio::time::timeout(REQUEST_TIMEOUT, sent).await {
                        Ok(reply) => statuses.push(reply.status.as_u16()),
                        Err(_) => panic!("a request to {addr}{path} took longer than {REQUEST_TIMEOUT:?}"),
                    }
                }
                statuses
            }));
        }
    }
    let mut tally = Tally::default();
    for task in tasks {
        for status in task.await.unwrap_or_else(|e| panic!("sender: {e}")) {
            match status {
                200 => tally.admitted += 1,
                429 => tally.refused += 1,
                503 => tally.unavailable += 1,
                other => panic!("unexpected status {other}"),
            }
        }
    }
    (tally, started.elapsed())
}

/// `GET path` on `gateway`'s admin listener: (status, body).
async fn admin(gateway: &Gateway, path: &str) -> (u16, String) {
    let addr = gateway.admin_addr().unwrap_or_else(|| panic!("no admin listener"));
    let reply = tokio::time::timeout(REQUEST_TIMEOUT, wasmgate_tests::get(addr, path))
        .await
        .unwrap_or_else(|_| panic!("admin {path} hung"));
    (reply.status.as_u16(), reply.text())
}

/// What the admin API says of the backend: (`state_backend.up` of
/// `/status/plugins`, the `wasmgate_state_backend_up` sample of `/metrics`).
async fn reported(gateway: &Gateway) -> (bool, String) {
    let (_, status) = admin(gateway, "/status/plugins").await;
    let status: serde_json::Value = serde_json::from_str(&status).unwrap_or_else(|e| panic!("{e}: {status}"));
    let up = status["state_backend"]["up"].as_bool().unwrap_or_else(|| panic!("no state_backend.up: {status}"));
    let (_, metrics) = admin(gateway, "/metrics").await;
    let sample = metrics.lines().find(|l| l.starts_with("wasmgate_state_backend_up")).unwrap_or("").to_owned();
    (up, sample)
}

/// Whether `gateway`'s global state backend answers.
fn backend_up(gateway: &Gateway) -> bool {
    let state = gateway.state().load_full();
    let up = state
        .routes()
        .flat_map(|(_, r)| r.chain.plugins().to_vec())
        .find_map(|p| p.global_state().map(|g| g.is_up()));
    up.unwrap_or_else(|| panic!("no global plugin entry"))
}

struct Fleet {
    _backend: Backend,
    _dir: PluginDir,
    gateways: Vec<Gateway>,
}

impl Fleet {
    async fn start(redis: SocketAddr, state: &str, limit: &str) -> Fleet {
        let backend = Backend::start("b").await;
        let dir = PluginDir::with(&[("rate-limit", "rate-limit")]);
        let text = config(backend.addr, dir.path(), redis, state, limit);
        let gateways = vec![gateway(&text), gateway(&text)];
        let fleet = Fleet { _backend: backend, _dir: dir, gateways };
        // Warm every plugin instance so compilation does not eat the window.
        for addr in fleet.addrs() {
            for path in ["/open", "/closed"] {
                let headers = [("host", "localhost"), ("x-key", "warm-up")];
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, request(addr, Method::GET, path, &headers, Bytes::new())).await;
            }
        }
        fleet
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.gateways.iter().map(|g| g.local_addr("web").unwrap_or_else(|| panic!("no listener"))).collect()
    }
}

const RATE: f64 = 100.0;
const BURST: f64 = 20.0;
const LIMIT: &str = "rate = 100, burst = 20";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_gateways_share_one_limit_and_local_state_does_not() {
    let redis = Redis::start().await;
    let window = Duration::from_secs(3);

    // Each gateway is driven at 400 requests/s, the limit is 100/s for the fleet.
    let fleet = Fleet::start(redis.addr, "global", LIMIT).await;
    let (global, elapsed) = drive(&fleet.addrs(), "/open", "app-x", 1200, window).await;
    let expected = BURST + RATE * elapsed.as_secs_f64();
    println!("global: admitted {} refused {} in {elapsed:?}; expected {expected:.0}", global.admitted, global.refused);
    assert_eq!(global.unavailable, 0);
    let error = (f64::from(global.admitted) - expected).abs() / expected;
    assert!(error <= 0.10, "global: admitted {}, expected {expected:.0} ± 10%", global.admitted);
    drop(fleet);

    let fleet = Fleet::start(redis.addr, "local", LIMIT).await;
    let (local, elapsed) = drive(&fleet.addrs(), "/open", "app-x", 1200, window).await;
    let expected_local = 2.0 * (BURST + RATE * elapsed.as_secs_f64());
    println!("local: admitted {} refused {} in {elapsed:?}; expected {expected_local:.0}", local.admitted, local.refused);
    let error = (f64::from(local.admitted) - expected_local).abs() / expected_local;
    assert!(error <= 0.10, "local: admitted {}, expected {expected_local:.0} ± 10%", local.admitted);
    assert!(f64::from(local.admitted) > 1.6 * f64::from(global.admitted), "the test cannot tell local from global");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_daily_quota_holds_across_the_fleet() {
    let redis = Redis::start().await;
    const QUOTA: u32 = 150;
    let fleet = Fleet::start(redis.addr, "global", "rate = 150, per = \"day\"").await;
    // Each gateway gets 300 requests in 1 s: four times the quota between them.
    let (tally, elapsed) = drive(&fleet.addrs(), "/open", "app-q", 300, Duration::from_secs(1)).await;
    println!("quota {QUOTA}: admitted {} refused {} in {elapsed:?}", tally.admitted, tally.refused);
    // The documented bound: at most one request per gateway over the quota
    // (admitted on a key's first sight, before its first lease).
    assert!(tally.admitted <= QUOTA + 2, "admitted {} over a quota of {QUOTA}", tally.admitted);
    assert!(tally.admitted >= QUOTA - 2, "admitted only {} of a quota of {QUOTA}", tally.admitted);
    // A gateway that sees the key for the first time now (a restart, say)
    // adds at most its one provisional request.
    let late = Fleet::start(redis.addr, "global", "rate = 150, per = \"day\"").await;
    let (more, _) = drive(&late.addrs(), "/open", "app-q", 50, Duration::from_millis(500)).await;
    println!("late gateways: admitted {}", more.admitted);
    assert!(tally.admitted + more.admitted <= QUOTA + 4, "{} + {} over {QUOTA}", tally.admitted, more.admitted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_run_fails_open_or_closed_then_recovers() {
    let redis = Redis::start().await;
    let port = redis.addr.port();
    let fleet = Fleet::start(redis.addr, "global", LIMIT).await;
    let addrs = fleet.addrs();
    let window = Duration::from_secs(2);

    let (before, elapsed) = drive(&addrs, "/open", "app-a", 600, window).await;
    let expected = BURST + RATE * elapsed.as_secs_f64();
    println!("before: admitted {} in {elapsed:?}; expected {expected:.0}", before.admitted);
    assert!((f64::from(before.admitted) - expected).abs() <= 0.15 * expected, "before: {}", before.admitted);

    redis.kill();
    let noticed = wait_until(Duration::from_secs(3), || fleet.gateways.iter().all(|g| !backend_up(g))).await;
    assert!(noticed.is_some(), "the gateways did not notice Redis was gone");
    assert_eq!(reported(&fleet.gateways[0]).await, (false, "wasmgate_state_backend_up 0".to_owned()));

    // Fail-open: each gateway limits locally at rate / 2, burst / 2.
    let (open, elapsed) = drive(&addrs, "/open", "app-b", 600, window).await;
    let expected = 2.0 * ((BURST / 2.0) + RATE / 2.0 * elapsed.as_secs_f64());
    println!("Redis down, fail-open: admitted {} in {elapsed:?}; expected {expected:.0}", open.admitted);
    assert_eq!(open.unavailable, 0);
    assert!((f64::from(open.admitted) - expected).abs() <= 0.15 * expected, "fail-open: {}", open.admitted);
    // Fail-closed: every request is refused with 503.
    let (closed, _) = drive(&addrs, "/closed", "app-c", 50, Duration::from_millis(500)).await;
    println!("Redis down, fail-closed: {closed:?}");
    assert_eq!((closed.admitted, closed.refused, closed.unavailable), (0, 0, 100));

    let redis = Redis::start_on(port).await;
    let back = wait_until(Duration::from_secs(5), || fleet.gateways.iter().all(backend_up)).await;
    println!("back after {back:?}");
    assert!(back.is_some(), "the gateways did not reconnect to Redis");
    assert_eq!(reported(&fleet.gateways[1]).await, (true, "wasmgate_state_backend_up 1".to_owned()));
    let (after, elapsed) = drive(&addrs, "/closed", "app-d", 600, window).await;
    let expected = BURST + RATE * elapsed.as_secs_f64();
    println!("Redis back: admitted {} refused {} unavailable {} in {elapsed:?}; expected {expected:.0}", after.admitted, after.refused, after.unavailable);
    assert_eq!(after.unavailable, 0);
    assert!((f64::from(after.admitted) - expected).abs() <= 0.15 * expected, "after: {}", after.admitted);
    drop(redis);
}
