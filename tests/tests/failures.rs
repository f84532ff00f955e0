//! What the client gets when something goes wrong: clear statuses, short reasons,
//! and one retry on another target when a connect fails.

use std::time::Duration;

use wasmgate_tests::{closed_port, gateway, get, simple_config, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_is_404_naming_the_reason() {
    let backend = Backend::start("b").await;
    let gw = gateway(&format!(
        "[[listener]]\nname = \"web\"\naddress = \"127.0.0.1:0\"\n[[route]]\nlistener = \"web\"\npath_prefix = \"/api\"\nupstream = \"up\"\n[[upstream]]\nname = \"up\"\ntargets = [{{ address = \"{}\" }}]\n",
        backend.addr
    ));
    let reply = get(gw.local_addr("web").unwrap(), "/web").await;
    assert_eq!(reply.status, 404);
    assert!(reply.text().contains("no route"), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_upstream_is_502_naming_the_target() {
    let dead = closed_port();
    let gw = gateway(&simple_config("round_robin", &[(dead, 1)], ""));
    let reply = get(gw.local_addr("web").unwrap(), "/").await;
    assert_eq!(reply.status, 502);
    assert!(reply.text().contains(&dead.to_string()), "{}", reply.text());
    assert!(reply.text().contains("cannot connect"), "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_upstream_is_504_after_the_response_timeout() {
    let backend = Backend::start("slow").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], "timeouts = { response = \"300ms\" }"));
    let started = std::time::Instant::now();
    let reply = get(gw.local_addr("web").unwrap(), "/hold").await;
    assert_eq!(reply.status, 504);
    assert!(reply.text().contains("no response within"), "{}", reply.text());
    assert!(started.elapsed() >= Duration::from_millis(300));
    backend.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_failure_is_retried_on_another_target() {
    let alive = Backend::start("alive").await;
    let gw = gateway(&simple_config("round_robin", &[(closed_port(), 1), (alive.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    for _ in 0..20 {
        let seen = get(addr, "/").await.seen();
        assert_eq!(seen.backend, "alive");
    }
    assert_eq!(alive.hits(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_error_statuses_pass_through_untouched() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let reply = get(gw.local_addr("web").unwrap(), "/status/503").await;
    assert_eq!(reply.status, 503);
    assert_eq!(wasmgate_tests::Seen::parse(&reply.body).backend, "b");
}
