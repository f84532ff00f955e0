//! The admin listener is bounded like a listener: slow heads and idle connections
//! are closed, and a flood of idle admin connections neither takes more than
//! `max_connections` of the process's descriptors nor keeps the listeners from
//! serving.

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wasmgate_tests::raw::{read_until_close, send_raw};
use wasmgate_tests::{gateway, get, simple_config, Backend};

fn config(backend: &Backend, admin_limits: &str) -> String {
    simple_config("round_robin", &[(backend.addr, 1)], "")
        + &format!("\n[admin]\naddress = \"127.0.0.1:0\"\nlimits = {{ {admin_limits} }}\n")
}

const STATUS: &[u8] = b"GET /status/upstreams HTTP/1.1\r\nHost: admin\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_admin_connection_is_closed_after_the_idle_timeout() {
    let backend = Backend::start("b").await;
    let gw = gateway(&config(&backend, "idle_timeout = \"300ms\", header_timeout = \"5s\""));
    let admin = gw.admin_addr().unwrap();

    let mut stream = TcpStream::connect(admin).await.unwrap();
    stream.write_all(STATUS).await.unwrap();
    let started = Instant::now();
    let reply = read_until_close(&mut stream, Duration::from_secs(3)).await;
    assert_eq!(reply.status(), Some(200), "{}", reply.text);
    assert!(reply.closed, "an idle admin connection was kept");
    assert!(started.elapsed() >= Duration::from_millis(250), "closed too early: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_admin_head_is_cut_off_at_the_header_timeout() {
    let backend = Backend::start("b").await;
    let gw = gateway(&config(&backend, "header_timeout = \"300ms\", idle_timeout = \"30s\""));
    let admin = gw.admin_addr().unwrap();

    // A head that never ends.
    let started = Instant::now();
    let reply = send_raw(admin, b"GET /status/upstreams HTTP/1.1\r\nHost: admin\r\n", Duration::from_secs(3)).await;
    assert!(reply.closed && reply.text.is_empty(), "{reply:?}");
    assert!(started.elapsed() < Duration::from_millis(1500), "closed only after {:?}", started.elapsed());

    // A client that connects and says nothing gets the same.
    let started = Instant::now();
    let silent = send_raw(admin, b"", Duration::from_secs(3)).await;
    assert!(silent.closed, "a silent admin connection was kept");
    assert!(started.elapsed() < Duration::from_millis(1500), "closed only after {:?}", started.elapsed());

    // A whole head is still answered.
    assert_eq!(get(admin, "/status/upstreams").await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_idle_admin_connections_is_capped_and_the_listener_keeps_serving() {
    const CAP: usize = 4;
    let backend = Backend::start("b").await;
    let gw = gateway(&config(&backend, &format!("max_connections = {CAP}, header_timeout = \"5s\", idle_timeout = \"30s\"")));
    let (admin, web) = (gw.admin_addr().unwrap(), gw.local_addr("web").unwrap());

    let mut idle = Vec::new();
    for _ in 0..CAP + 50 {
        idle.push(TcpStream::connect(admin).await.unwrap());
    }
    assert_eq!(get(web, "/during").await.seen().path, "/during", "the listener serves during the flood");

    // At the cap: one more admin client waits in the backlog, unanswered.
    let mut waiting = TcpStream::connect(admin).await.unwrap();
    waiting.write_all(STATUS).await.unwrap();
    let reply = read_until_close(&mut waiting, Duration::from_millis(500)).await;
    assert!(reply.text.is_empty() && !reply.closed, "accepted past the cap: {reply:?}");

    // Once the flood is gone, the admin listener answers again (the waiting
    // client first, from the backlog).
    drop(idle);
    let reply = read_until_close(&mut waiting, Duration::from_secs(3)).await;
    assert_eq!(reply.status(), Some(200), "{reply:?}");
    assert_eq!(get(admin, "/status/upstreams").await.status, 200);
}
