//! Graceful shutdown: new connections are refused, in-flight requests finish.

use wasmgate_tests::{gateway, get, simple_config, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_in_flight_requests() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();

    let in_flight = tokio::spawn(get(addr, "/hold"));
    backend.wait_hits(1).await;

    gw.shutdown();
    gw.listeners_closed().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "still accepting after shutdown");

    backend.release();
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "the in-flight request was cut: {}", reply.text());
    gw.stop().await;
}
