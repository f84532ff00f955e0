//! Front-door limits: slow heads, huge heads, huge bodies, idle connections, too
//! many connections, and upstreams that misbehave. Each case checks the status or
//! the close, that the upstream saw nothing it should not have, and that the next
//! normal request is served.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use tokio::io::AsyncWriteExt;
use wasmgate_tests::raw::{read_until_close, send_raw};
use wasmgate_tests::{gateway, get, request, simple_config, Backend};

fn config_with_limits(backend: &Backend, limits: &str) -> String {
    simple_config("round_robin", &[(backend.addr, 1)], "timeouts = { response = \"500ms\" }")
        .replace("address = \"127.0.0.1:0\"", &format!("address = \"127.0.0.1:0\"\nlimits = {{ {limits} }}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_request_head_is_cut_off_at_the_header_timeout() {
    let backend = Backend::start("b").await;
    let gw = gateway(&config_with_limits(&backend, "header_timeout = \"300ms\", idle_timeout = \"30s\""));
    let addr = gw.local_addr("web").unwrap();

    // Slowloris: a head that never ends, one byte at a time.
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut cut = false;
    for _ in 0..40 {
        if stream.write_all(b"X").await.is_err() {
            cut = true;
            break;
        }
        let reply = read_until_close(&mut stream, Duration::from_millis(50)).await;
        if reply.closed {
            cut = true;
            break;
        }
    }
    assert!(cut, "still open after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_millis(1500), "closed only after {:?}", started.elapsed());

    // A client that connects and says nothing gets the same treatment.
    let silent = send_raw(addr, b"", Duration::from_secs(2)).await;
    assert!(silent.closed, "a silent connection was kept");

    assert_eq!(backend.hits(), 0);
    assert_eq!(get(addr, "/ok").await.seen().path, "/ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_but_a_slow_upstream_is_not_idle() {
    let backend = Backend::start("b").await;
    let gw = gateway(&config_with_limits(&backend, "idle_timeout = \"300ms\", header_timeout = \"5s\"").replace("500ms", "5s"));
    let addr = gw.local_addr("web").unwrap();

    // A request, then silence: the connection is closed after the idle timeout.
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let started = Instant::now();
    let reply = read_until_close(&mut stream, Duration::from_secs(3)).await;
    assert!(reply.text.starts_with("HTTP/1.1 200"), "{}", reply.text);
    assert!(reply.closed, "idle connection kept open");
    assert!(started.elapsed() >= Duration::from_millis(250), "closed too early: {:?}", started.elapsed());

    // A request waiting on a slow upstream is in flight, not idle.
    let held = tokio::spawn(get(addr, "/hold"));
    backend.wait_hits(2).await;
    tokio::time::sleep(Duration::from_millis(600)).await; // well past idle_timeout: the point of the test
    backend.release();
    assert_eq!(held.await.unwrap().status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_head_gets_431_and_is_not_forwarded() {
    let backend = Backend::start("b").await;
    let gw = gateway(&config_with_limits(&backend, "max_header_bytes = 8192"));
    let addr = gw.local_addr("web").unwrap();
    let head = format!("GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(16 * 1024));
    let reply = send_raw(addr, head.as_bytes(), Duration::from_secs(3)).await;
    assert_eq!(reply.status(), Some(431), "{}", reply.text);
    assert!(reply.closed);
    assert_eq!(backend.hits(), 0);
    assert_eq!(get(addr, "/ok").await.seen().path, "/ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_413_declared_or_streamed() {
    let backend = Backend::start("b").await;
    let gw = gateway(&config_with_limits(&backend, "max_body_bytes = 1000"));
    let addr = gw.local_addr("web").unwrap();

    // Declared up front: refused before any upstream is contacted.
    let head = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n";
    let reply = send_raw(addr, head.as_bytes(), Duration::from_secs(3)).await;
    assert_eq!(reply.status(), Some(413), "{}", reply.text);
    assert!(reply.closed);
    assert_eq!(backend.hits(), 0);

    // Chunked, counted while streaming: refused once the count passes the limit.
    let mut chunked = String::from("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..4 {
        chunked += &format!("{:x}\r\n{}\r\n", 400, "z".repeat(400));
    }
    chunked += "0\r\n\r\n";
    let reply = send_raw(addr, chunked.as_bytes(), Duration::from_secs(3)).await;
    assert_eq!(reply.status(), Some(413), "{}", reply.text);

    // Within the limit: fine.
    let ok = request(addr, Method::POST, "/echo", &[("host", "x")], Bytes::from(vec![b'k'; 1000])).await;
    assert_eq!((ok.status.as_u16(), ok.body.len()), (200, 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_max_connections_new_clients_wait_their_turn() {
    let backend = Backend::start("b").await;
    let gw = gateway(&config_with_limits(&backend, "max_connections = 2").replace("workers = 2", "workers = 1"));
    let addr = gw.local_addr("web").unwrap();

    let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
    for stream in [&mut first, &mut second] {
        stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    }
    // The third connects (kernel backlog) but is not served while two are open.
    let third = tokio::spawn(get(addr, "/third"));
    let waited = tokio::time::timeout(Duration::from_millis(500), async { backend.wait_hits(3).await }).await;
    assert!(waited.is_err(), "a third connection was served past max_connections = 2");
    drop(first);
    let reply = tokio::time::timeout(Duration::from_secs(5), third).await.expect("never served").unwrap();
    assert_eq!(reply.seen().path, "/third");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_upstream_head_is_502_and_a_stalled_upstream_504() {
    let backend = Backend::start("b").await;
    let gw = gateway(&config_with_limits(&backend, ""));
    let addr = gw.local_addr("web").unwrap();
    let reply = get(addr, "/big-header/100000").await;
    assert_eq!(reply.status, 502, "{}", reply.text());
    let reply = get(addr, "/hold").await;
    assert_eq!(reply.status, 504, "{}", reply.text());
    backend.release();
    // Neither broken connection is reused: the next request is clean.
    assert_eq!(get(addr, "/after").await.seen().path, "/after");
    assert_eq!(get(addr, "/big-header/100").await.status, 200);
}
