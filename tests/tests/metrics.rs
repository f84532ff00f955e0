//! `GET /metrics` on the admin listener: counters that are exact, series that
//! follow targets and reloads, an exposition `promtool` accepts, and a real
//! Prometheus that scrapes it and answers a query with exactly what was sent.

use std::time::Duration;

use bytes::Bytes;
use http::Method;
use wasmgate_tests::plugins::{plugin_config, PluginDir};
use wasmgate_tests::prometheus::{promtool_check, Prometheus};
use wasmgate_tests::tls::TestCert;
use wasmgate_tests::{gateway, get, request, Backend};

const ADMIN: &str = "\n[admin]\naddress = \"127.0.0.1:0\"\n";

/// Two routes on listener `web`: `/a` to `up` (at `backend`), `/b` to `down`
/// (at `other`); anything else matches no route.
fn two_routes(backend: std::net::SocketAddr, other: std::net::SocketAddr) -> String {
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
name = "a"
listener = "web"
path_prefix = "/a"
upstream = "up"

[[route]]
name = "b"
listener = "web"
path_prefix = "/b"
strip_prefix = true
upstream = "down"

[[upstream]]
name = "up"
targets = [ {{ address = "{backend}" }} ]

[[upstream]]
name = "down"
targets = [ {{ address = "{other}" }} ]

[runtime]
workers = 2

[log]
access = false
{ADMIN}"#
    )
}

/// The admin listener's `/metrics`, as a scraper gets it (default format).
async fn scrape(gw: &wasmgate::Gateway) -> String {
    let admin = gw.admin_addr().expect("the test config has [admin]");
    let reply = request(admin, Method::GET, "/metrics", &[("host", "admin")], Bytes::new()).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    reply.text()
}

/// The value of one series (`name{labels}` exactly as exposed); `None` when absent.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

fn requests(route: &str, class: &str, source: &str) -> String {
    format!(r#"wasmgate_requests_total{{listener="web",route="{route}",status_class="{class}",source="{source}"}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counters_are_exact() {
    let backend = Backend::start("a").await;
    let other = Backend::start("b").await;
    let gw = gateway(&two_routes(backend.addr, other.addr));
    let web = gw.local_addr("web").unwrap();

    let mut sent = 0;
    for i in 0..7 {
        sent += get(web, &format!("/a/{i}")).await.body.len();
    }
    backend.fail_with(Some(503));
    for _ in 0..3 {
        let reply = get(web, "/a/x").await;
        assert_eq!(reply.status, 503);
        sent += reply.body.len();
    }
    backend.fail_with(None);
    let unrouted = get(web, "/nowhere").await;
    assert_eq!(unrouted.status, 404);
    let body = Bytes::from(vec![b'x'; 1000]);
    let echoed = request(web, Method::POST, "/b/echo", &[("host", "x")], body).await;
    assert_eq!(echoed.body.len(), 1000);

    let text = scrape(&gw).await;
    assert_eq!(value(&text, &requests("a", "2xx", "upstream")), Some(7.0), "{text}");
    assert_eq!(value(&text, &requests("a", "5xx", "upstream")), Some(3.0), "{text}");
    assert_eq!(value(&text, &requests("b", "2xx", "upstream")), Some(1.0), "{text}");
    assert_eq!(value(&text, &requests("", "4xx", "gateway")), Some(1.0), "{text}");
    assert_eq!(value(&text, &requests("a", "4xx", "gateway")), None, "{text}");
    let count = r#"wasmgate_request_duration_seconds_count{listener="web",route="a"}"#;
    assert_eq!(value(&text, count), Some(10.0), "{text}");
    let own = r#"wasmgate_request_gateway_duration_seconds_count{listener="web",route="a"}"#;
    assert_eq!(value(&text, own), Some(10.0), "{text}");
    let bytes_out = r#"wasmgate_response_body_bytes_total{listener="web",route="a"}"#;
    assert_eq!(value(&text, bytes_out), Some(sent as f64), "{text}");
    let bytes_in = r#"wasmgate_request_body_bytes_total{listener="web",route="b"}"#;
    assert_eq!(value(&text, bytes_in), Some(1000.0), "{text}");
    assert_eq!(value(&text, r#"wasmgate_response_body_bytes_total{listener="web",route="b"}"#), Some(1000.0), "{text}");

    let target = format!(r#"wasmgate_upstream_requests_total{{upstream="up",target="{}",outcome="ok"}}"#, backend.addr);
    assert_eq!(value(&text, &target), Some(7.0), "{text}");
    let target =
        format!(r#"wasmgate_upstream_requests_total{{upstream="up",target="{}",outcome="http_5xx"}}"#, backend.addr);
    assert_eq!(value(&text, &target), Some(3.0), "{text}");
    assert_eq!(
        value(&text, r#"wasmgate_upstream_response_duration_seconds_count{upstream="up"}"#),
        Some(10.0),
        "{text}"
    );
    // Each test client request opened a connection of its own; each is closed by now.
    assert_eq!(value(&text, r#"wasmgate_connections_total{listener="web"}"#), Some(12.0), "{text}");
    let idle = async {
        for _ in 0..100 {
            let text = scrape(&gw).await;
            if value(&text, r#"wasmgate_connections_open{listener="web"}"#) == Some(0.0)
                && value(&text, r#"wasmgate_requests_in_flight{listener="web"}"#) == Some(0.0)
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    };
    assert!(idle.await, "connections or requests still counted as open: {}", scrape(&gw).await);
    // Every upstream connection is back in its worker's pool (one per worker
    // at most: requests were one at a time), none is carrying a request.
    // `up` went through the gateway's own HTTP/1.1 client, `down` (a request
    // with a body) through hyper's.
    let text = scrape(&gw).await;
    for upstream in ["up", "down"] {
        let series = |state: &str| format!(r#"wasmgate_upstream_connections{{upstream="{upstream}",state="{state}"}}"#);
        assert_eq!(value(&text, &series("active")), Some(0.0), "{text}");
        let idle = value(&text, &series("idle")).unwrap_or_default();
        assert!((1.0..=2.0).contains(&idle), "{upstream}: {idle} idle\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_trap_counts_once() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("faulty", "faulty")]);
    for (on_error, status) in [("fail-closed", 500), ("fail-open", 200)] {
        let plugins = format!(
            r#"{{ name = "faulty", config = {{ mode = "trap", when_header = "x-boom" }}, on_error = "{on_error}" }}"#
        );
        let gw = gateway(&(plugin_config(backend.addr, dir.path(), &plugins) + ADMIN));
        let web = gw.local_addr("web").unwrap();
        for _ in 0..4 {
            assert_eq!(get(web, "/fine").await.status, 200);
        }
        let boom = request(web, Method::GET, "/boom", &[("host", "x"), ("x-boom", "1")], Bytes::new()).await;
        assert_eq!(boom.status, status, "{on_error}");

        let text = scrape(&gw).await;
        let calls = |phase: &str, outcome: &str| {
            let series = format!(
                r#"wasmgate_plugin_calls_total{{route="main",plugin="faulty",phase="{phase}",outcome="{outcome}"}}"#
            );
            value(&text, &series)
        };
        assert_eq!(calls("request", "trap"), Some(1.0), "{on_error}: {text}");
        assert_eq!(calls("request", "continue"), Some(4.0), "{on_error}: {text}");
        let request_calls =
            r#"wasmgate_plugin_call_duration_seconds_count{route="main",plugin="faulty",phase="request"}"#;
        assert_eq!(value(&text, request_calls), Some(5.0), "{on_error}: {text}");
        match on_error {
            "fail-closed" => {
                // The plugin failed closed: its 500 is the plugin's answer, not the upstream's.
                assert_eq!(value(&text, &requests("main", "5xx", "plugin")), Some(1.0), "{text}");
                assert_eq!(calls("response", "continue"), Some(4.0), "{text}");
            }
            _ => {
                assert_eq!(calls("response", "fail_open_skipped"), Some(1.0), "{text}");
                assert_eq!(value(&text, &requests("main", "2xx", "upstream")), Some(5.0), "{text}");
            }
        }
        // One instance served the four requests; the trap retired it.
        assert_eq!(value(&text, r#"wasmgate_plugin_instances_started_total{plugin="faulty"}"#), Some(1.0), "{text}");
        assert_eq!(value(&text, r#"wasmgate_plugin_instances_alive{plugin="faulty"}"#), Some(0.0), "{text}");
        assert_eq!(value(&text, r#"wasmgate_plugin_loads_total{result="ok"}"#), Some(1.0), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_target_changes_its_health_and_breaker_series() {
    let b = Backend::start("b").await;
    let upstream_series = |family: &str, target: std::net::SocketAddr, label: &str| {
        format!(r#"{family}{{upstream="up",target="{target}",{label}}}"#)
    };

    // Breakers: the killed target's connect errors open its breaker (the
    // requests are retried on b).
    let a = Backend::start("a").await;
    let a_addr = a.addr;
    let breaker_only = "retries = 1\n\
         circuit_breaker = { request_volume = 2, error_percent = 50, window = \"10s\", sleep_window = \"60s\" }";
    let gw =
        gateway(&(wasmgate_tests::simple_config("round_robin", &[(a.addr, 1), (b.addr, 1)], breaker_only) + ADMIN));
    let web = gw.local_addr("web").unwrap();
    let breaker =
        |state: &str| upstream_series("wasmgate_upstream_target_breaker", a_addr, &format!(r#"state="{state}""#));
    let text = scrape(&gw).await;
    assert_eq!(value(&text, &breaker("closed")), Some(1.0), "{text}");
    assert_eq!(value(&text, &breaker("open")), Some(0.0), "{text}");
    drop(a);
    refused(a_addr).await;
    for i in 0..6 {
        assert_eq!(get(web, &format!("/{i}")).await.status, 200);
    }
    let text = scrape(&gw).await;
    assert_eq!(value(&text, &breaker("open")), Some(1.0), "{text}");
    assert_eq!(value(&text, &breaker("closed")), Some(0.0), "{text}");
    let opened = upstream_series("wasmgate_upstream_breaker_transitions_total", a_addr, r#"transition="opened""#);
    assert_eq!(value(&text, &opened), Some(1.0), "{text}");
    // The breaker opened at its second failure; after that a was skipped.
    let connect_errors = upstream_series("wasmgate_upstream_requests_total", a_addr, r#"outcome="connect_error""#);
    assert_eq!(value(&text, &connect_errors), Some(2.0), "{text}");
    let b_ok = upstream_series("wasmgate_upstream_requests_total", b.addr, r#"outcome="ok""#);
    assert_eq!(value(&text, &b_ok), Some(6.0), "every request was answered by b: {text}");
    drop(gw);

    // Health checks: the killed target turns unhealthy and leaves the rotation.
    let a = Backend::start("a").await;
    let a_addr = a.addr;
    let checked = "health_check = { kind = \"tcp\", interval = \"100ms\", timeout = \"100ms\", unhealthy_after = 1, healthy_after = 1 }";
    let gw = gateway(&(wasmgate_tests::simple_config("round_robin", &[(a.addr, 1), (b.addr, 1)], checked) + ADMIN));
    let health =
        |state: &str| upstream_series("wasmgate_upstream_target_health", a_addr, &format!(r#"state="{state}""#));
    let rotation = format!(r#"wasmgate_upstream_target_in_rotation{{upstream="up",target="{a_addr}"}}"#);
    let text = scrape(&gw).await;
    assert_eq!(value(&text, &health("healthy")), Some(1.0), "{text}");
    assert_eq!(value(&text, &rotation), Some(1.0), "{text}");
    drop(a);
    let mut text = String::new();
    for _ in 0..250 {
        text = scrape(&gw).await;
        if value(&text, &health("unhealthy")) == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(value(&text, &health("unhealthy")), Some(1.0), "{text}");
    assert_eq!(value(&text, &health("healthy")), Some(0.0), "{text}");
    assert_eq!(value(&text, &rotation), Some(0.0), "{text}");
    let failed = upstream_series("wasmgate_upstream_health_checks_total", a_addr, r#"result="failed""#);
    assert!(value(&text, &failed).is_some_and(|n| n >= 1.0), "{text}");
    let passed = upstream_series("wasmgate_upstream_health_checks_total", b.addr, r#"result="passed""#);
    assert!(value(&text, &passed).is_some_and(|n| n >= 1.0), "{text}");
}

/// Waits until nothing accepts connections on `addr` any more (a dropped
/// backend closes its listener on its own task).
async fn refused(addr: std::net::SocketAddr) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{addr} still accepts connections");
}

/// Counters go on over a reload for what keeps its name; a removed route's
/// series are gone from the next scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_counters_and_drops_removed_series() {
    let backend = Backend::start("a").await;
    let other = Backend::start("b").await;
    let config = two_routes(backend.addr, other.addr);
    let gw = gateway(&config);
    let web = gw.local_addr("web").unwrap();
    for _ in 0..3 {
        assert_eq!(get(web, "/a").await.status, 200);
        assert_eq!(get(web, "/b").await.status, 200);
    }
    let without_b = config.replace(
        "[[route]]\nname = \"b\"\nlistener = \"web\"\npath_prefix = \"/b\"\nstrip_prefix = true\nupstream = \"down\"\n",
        "",
    );
    let reloaded = wasmgate::Config::parse(&without_b, std::path::Path::new("test.toml")).unwrap();
    gw.reload(Some(reloaded)).unwrap();
    assert_eq!(get(web, "/a").await.status, 200);
    assert_eq!(get(web, "/b").await.status, 404);

    let text = scrape(&gw).await;
    assert_eq!(value(&text, &requests("a", "2xx", "upstream")), Some(4.0), "{text}");
    assert!(!text.contains(r#"route="b""#), "{text}");
    assert_eq!(value(&text, &requests("", "4xx", "gateway")), Some(1.0), "{text}");
    assert_eq!(value(&text, r#"wasmgate_reloads_total{result="ok"}"#), Some(1.0), "{text}");
    let broken =
        wasmgate::Config::parse(&without_b.replace("workers = 2", "workers = 1"), std::path::Path::new("t.toml"))
            .unwrap();
    assert!(gw.reload(Some(broken)).is_err());
    let text = scrape(&gw).await;
    assert_eq!(value(&text, r#"wasmgate_reloads_total{result="failed"}"#), Some(1.0), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_scrape() {
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("pass", "pass"), ("faulty", "faulty")]);
    let plugins = r#"{ name = "pass" }, { name = "faulty", config = { mode = "trap", when_header = "x-boom" }, on_error = "fail-open" }"#;
    let config = plugin_config(backend.addr, dir.path(), plugins).replace(
        "targets = [",
        "circuit_breaker = {}\nhealth_check = { kind = \"tcp\", interval = \"1s\" }\ntargets = [",
    ) + ADMIN;
    let gw = gateway(&config);
    let web = gw.local_addr("web").unwrap();
    for _ in 0..5 {
        assert_eq!(get(web, "/").await.status, 200);
    }
    request(web, Method::GET, "/", &[("host", "x"), ("x-boom", "1")], Bytes::new()).await;
    get(web, "/nowhere-but-main-takes-all").await;
    let text = scrape(&gw).await;
    for family in [
        "wasmgate_requests_total",
        "wasmgate_plugin_calls_total",
        "wasmgate_upstream_target_health",
        "wasmgate_build_info",
    ] {
        assert!(text.contains(&format!("# TYPE {family} ")), "{family} missing:\n{text}");
    }
    if let Err(problems) = promtool_check(&text) {
        panic!("{problems}\n--- the scrape:\n{text}");
    }
}

/// An https listener's certificates show when they expire, per server name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_expiry_per_server_name() {
    let backend = Backend::start("b").await;
    let (a, b) = (TestCert::new(&["a.test", "*.b.test"]), TestCert::new(&["a.test", "c.test"]));
    let config = two_routes(backend.addr, backend.addr).replace(
        "[[route]]\nname = \"a\"",
        &format!(
            "[[listener]]\nname = \"secure\"\naddress = \"127.0.0.1:0\"\nprotocol = \"https\"\ncertificates = [ {}, {} ]\n\n[[route]]\nname = \"a\"",
            a.toml(),
            b.toml()
        ),
    );
    let gw = gateway(&config);
    let text = scrape(&gw).await;
    // rcgen's certificates are valid until 4096-01-01T00:00:00Z.
    for name in ["a.test", "*.b.test", "c.test"] {
        let series =
            format!(r#"wasmgate_tls_certificate_expiry_timestamp_seconds{{listener="secure",server_name="{name}"}}"#);
        assert_eq!(value(&text, &series), Some(67_090_118_400.0), "{name}: {text}");
    }
    assert_eq!(text.matches(r#"server_name="a.test""#).count(), 1, "{text}");
}

/// A real Prometheus scrapes the admin listener; its HTTP API then answers
/// with exactly the requests and plugin calls that were made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_exact_counts() {
    const N: usize = 25;
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("pass", "pass")]);
    let gw = gateway(&(plugin_config(backend.addr, dir.path(), r#"{ name = "pass" }"#) + ADMIN));
    let web = gw.local_addr("web").unwrap();
    for i in 0..N {
        assert_eq!(get(web, &format!("/{i}")).await.status, 200);
    }
    let prometheus = Prometheus::start(&[gw.admin_addr().unwrap()]).await;

    let routed = r#"wasmgate_requests_total{job="wasmgate",route="main",status_class="2xx",source="upstream"}"#;
    let calls = r#"sum(wasmgate_plugin_calls_total{job="wasmgate",route="main",plugin="pass",phase="request"})"#;
    let mut seen = (None, None);
    for _ in 0..300 {
        seen = (prometheus.value(routed).await, prometheus.value(calls).await);
        if seen.0.is_some() && seen.1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(seen, (Some(N as f64), Some(N as f64)), "prometheus log:\n{}", prometheus.log());
    assert_eq!(prometheus.value(r#"up{job="wasmgate"}"#).await, Some(1.0));
    let histogram =
        r#"wasmgate_plugin_call_duration_seconds_count{job="wasmgate",route="main",plugin="pass",phase="request"}"#;
    assert_eq!(prometheus.value(histogram).await, Some(N as f64));
}
