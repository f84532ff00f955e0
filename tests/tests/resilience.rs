//! Active health checks, circuit breakers, the concurrency limit and the fallback
//! response, through the real gateway with in-process backends.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use wasmgate_tests::{closed_port, gateway, get, request, rotation, simple_config, wait_until, Backend};

fn with_admin(config: String) -> String {
    config + "\n[admin]\naddress = \"127.0.0.1:0\"\n"
}

async fn status(gw: &wasmgate::Gateway) -> serde_json::Value {
    let reply = get(gw.admin_addr().unwrap(), "/status/upstreams").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    serde_json::from_slice(&reply.body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_target_leaves_within_interval_times_unhealthy_after_and_returns() {
    let a = Backend::start("A").await;
    let b = Backend::start("B").await;
    let (a_addr, b_addr) = (a.addr, b.addr);
    let interval = Duration::from_millis(200);
    let gw = gateway(&with_admin(simple_config(
        "round_robin",
        &[(a_addr, 1), (b_addr, 1)],
        r#"health_check = { kind = "tcp", interval = "200ms", timeout = "100ms", unhealthy_after = 2, healthy_after = 2 }"#,
    )));
    let web = gw.local_addr("web").unwrap();
    assert_eq!(rotation(&gw, "up").len(), 2, "static targets start in rotation");

    drop(a);
    let bound = interval * 2 + Duration::from_secs(1);
    let left = wait_until(bound + Duration::from_secs(1), || rotation(&gw, "up") == vec![b_addr]).await;
    assert!(left.is_some_and(|t| t <= bound), "left after {left:?}, bound {bound:?}");
    for _ in 0..10 {
        assert_eq!(get(web, "/").await.seen().backend, "B");
    }
    let target = status(&gw).await["upstreams"][0]["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["address"] == a_addr.to_string())
        .cloned()
        .unwrap();
    assert_eq!(target["health"], "unhealthy", "{target}");
    assert_eq!(target["in_rotation"], false, "{target}");

    let a = Backend::start_on("A", a_addr).await;
    let back = wait_until(bound + Duration::from_secs(1), || rotation(&gw, "up").len() == 2).await;
    assert!(back.is_some_and(|t| t <= bound), "returned after {back:?}, bound {bound:?}");
    let before = a.hits();
    for _ in 0..10 {
        get(web, "/").await;
    }
    assert!(a.hits() >= before + 4, "A takes traffic again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_check_wants_a_2xx_or_3xx_from_its_path() {
    let a = Backend::start("A").await;
    let b = Backend::start("B").await;
    let gw = gateway(&simple_config(
        "round_robin",
        &[(a.addr, 1), (b.addr, 1)],
        r#"health_check = { kind = "http", path = "/healthz", interval = "100ms", timeout = "100ms", unhealthy_after = 1, healthy_after = 1 }"#,
    ));
    a.fail_with(Some(503));
    assert!(wait_until(Duration::from_secs(3), || rotation(&gw, "up") == vec![b.addr]).await.is_some());
    a.fail_with(None);
    assert!(wait_until(Duration::from_secs(3), || rotation(&gw, "up").len() == 2).await.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_opens_on_errors_shifts_traffic_and_closes_after_probes() {
    let a = Backend::start("A").await;
    let b = Backend::start("B").await;
    let gw = gateway(&with_admin(simple_config(
        "round_robin",
        &[(a.addr, 1), (b.addr, 1)],
        r#"circuit_breaker = { request_volume = 4, error_percent = 50, window = "10s", sleep_window = "1s", half_open_requests = 1 }"#,
    )));
    let web = gw.local_addr("web").unwrap();

    a.fail_with(Some(500));
    let mut errors = 0;
    for _ in 0..12 {
        if get(web, "/").await.status == 500 {
            errors += 1;
        }
    }
    assert_eq!(errors, 4, "A answers 500 until its breaker has seen request_volume requests");
    let hits_a = a.hits();
    for _ in 0..20 {
        assert_eq!(get(web, "/").await.seen().backend, "B", "traffic shifted to B");
    }
    assert_eq!(a.hits(), hits_a, "nothing reaches A while its breaker is open");
    let breaker = status(&gw).await["upstreams"][0]["targets"][0]["breaker"].clone();
    assert_eq!(breaker["state"], "open", "{breaker}");

    // A recovers; after the sleep window one probe goes through and closes it.
    a.fail_with(None);
    let started = Instant::now();
    let mut recovered = false;
    while started.elapsed() < Duration::from_secs(3) {
        if get(web, "/").await.seen().backend == "A" {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(recovered, "a half-open probe reached A");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..10 {
        seen.insert(get(web, "/").await.seen().backend);
    }
    assert_eq!(seen.len(), 2, "both targets share the traffic again: {seen:?}");
    assert_eq!(status(&gw).await["upstreams"][0]["targets"][0]["breaker"]["state"], "closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_probe_reopens_the_breaker() {
    let a = Backend::start("A").await;
    let gw = gateway(&simple_config(
        "round_robin",
        &[(a.addr, 1)],
        r#"circuit_breaker = { request_volume = 2, error_percent = 50, sleep_window = "200ms" }"#,
    ));
    let web = gw.local_addr("web").unwrap();
    a.fail_with(Some(502));
    assert_eq!(get(web, "/").await.status, 502);
    assert_eq!(get(web, "/").await.status, 502);
    assert_eq!(get(web, "/").await.status, 503, "open: no target left");
    let hits = a.hits();
    let started = Instant::now();
    let probe = loop {
        let reply = get(web, "/").await;
        if reply.status != 503 {
            break reply;
        }
        assert!(started.elapsed() < Duration::from_secs(3), "no half-open probe went through");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(probe.status, 502, "the half-open probe reached A and failed");
    assert_eq!(a.hits(), hits + 1, "exactly one probe");
    assert_eq!(get(web, "/").await.status, 503, "reopened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_answers_when_every_target_is_down() {
    let dead = closed_port();
    let config = simple_config(
        "round_robin",
        &[(dead, 1)],
        r#"health_check = { kind = "tcp", interval = "100ms", timeout = "100ms", unhealthy_after = 1 }"#,
    )
    .replace(
        "upstream = \"up\"\n",
        "upstream = \"up\"\nfallback = { status = 200, headers = { \"content-type\" = \"application/json\", \"x-degraded\" = \"1\" }, body = '{\"items\":[]}' }\n",
    );
    let gw = gateway(&config);
    let web = gw.local_addr("web").unwrap();
    assert!(wait_until(Duration::from_secs(3), || rotation(&gw, "up").is_empty()).await.is_some());

    let reply = get(web, "/anything").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/json");
    assert_eq!(reply.headers["x-degraded"], "1");
    assert_eq!(reply.text(), r#"{"items":[]}"#);

    // gRPC clients get UNAVAILABLE in their own terms, not the HTML-ish fallback.
    let grpc = request(web, Method::POST, "/pkg.Service/Call", &[("host", "x"), ("content-type", "application/grpc")], Bytes::new()).await;
    assert_eq!(grpc.status, 200);
    assert_eq!(grpc.headers["grpc-status"], "14");
    assert!(grpc.headers["grpc-message"].to_str().unwrap().contains("no available target"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fallback_no_target_is_503() {
    let dead = closed_port();
    let gw = gateway(&simple_config(
        "round_robin",
        &[(dead, 1)],
        r#"health_check = { kind = "tcp", interval = "100ms", timeout = "100ms", unhealthy_after = 1 }"#,
    ));
    assert!(wait_until(Duration::from_secs(3), || rotation(&gw, "up").is_empty()).await.is_some());
    let reply = get(gw.local_addr("web").unwrap(), "/").await;
    assert_eq!(reply.status, 503);
    assert!(reply.text().contains("has no available target"), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_turns_away_the_request_over_it() {
    let a = Backend::start("A").await;
    let gw = gateway(&simple_config("round_robin", &[(a.addr, 1)], "max_concurrent_requests = 1"));
    let web = gw.local_addr("web").unwrap();
    let held = tokio::spawn(async move { get(web, "/hold").await.status });
    a.wait_hits(1).await;
    let over = get(web, "/").await;
    assert_eq!(over.status, 503);
    assert!(over.text().contains("concurrency limit"), "{}", over.text());
    a.release();
    assert_eq!(held.await.unwrap(), 200);
    assert_eq!(get(web, "/").await.status, 200, "the slot was given back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_added_changed_and_removed_by_a_reload_apply_live() {
    let a = Backend::start("A").await;
    let dead = closed_port();
    let targets = [(a.addr, 1), (dead, 1)];
    let config = |checks: &str| {
        let text = simple_config("round_robin", &targets, checks);
        wasmgate::Config::parse(&text, std::path::Path::new("live.toml")).unwrap()
    };
    let gw = gateway(&simple_config("round_robin", &targets, ""));
    assert_eq!(rotation(&gw, "up").len(), 2, "no checks: both in rotation");

    // Checks added: the dead target leaves without a restart.
    let tcp = r#"health_check = { kind = "tcp", interval = "100ms", timeout = "100ms", unhealthy_after = 1 }"#;
    gw.reload(Some(config(tcp))).unwrap();
    let left = wait_until(Duration::from_secs(5), || rotation(&gw, "up") == vec![a.addr]).await;
    assert!(left.is_some(), "the dead target must leave once checks run: {:?}", rotation(&gw, "up"));

    // Checks changed: the new checker takes over, and what the old one found
    // stays meanwhile (the dead target does not come back in between).
    let http = r#"health_check = { kind = "http", path = "/healthz", interval = "100ms", timeout = "100ms", unhealthy_after = 1 }"#;
    gw.reload(Some(config(http))).unwrap();
    assert_eq!(rotation(&gw, "up"), vec![a.addr], "health carried over the reload");
    let probes = a.hits();
    let probed = wait_until(Duration::from_secs(5), || a.hits() > probes).await;
    assert!(probed.is_some(), "the new http checker probes A");
    assert_eq!(rotation(&gw, "up"), vec![a.addr]);

    // Checks removed: every target is in rotation again.
    gw.reload(Some(config(""))).unwrap();
    assert_eq!(rotation(&gw, "up").len(), 2, "without checks nothing holds a target out");
    // The reload told the control plane, which stops the old checker at once;
    // a probe already on its way may still land. Then, for 5 intervals, none.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let hits = a.hits();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.hits(), hits, "the old checkers stopped");
}
