//! `limits.body_timeout`: clients that send a request head and then stall the
//! body get `408` and a closed connection, and meanwhile they hold no upstream
//! capacity: a chunked body that never started never reaches the upstream.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use wasmgate_tests::raw::{read_until_close, RawReply};
use wasmgate_tests::{gateway, get, request, Backend};

const BODY_TIMEOUT: Duration = Duration::from_secs(1);
/// Stalled connections that never send a chunk: more than the upstream's 20 slots.
const CHUNKED: usize = 25;
/// Stalled connections that sent 10 of 100 promised bytes.
const PARTIAL: usize = 5;

/// `/` goes to `main` (at most 20 requests in flight); `/partial` to `partial`, so
/// that what reaches `main` can be counted exactly.
fn config(main: SocketAddr, partial: SocketAddr) -> String {
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"
limits = {{ body_timeout = "1s" }}

[[route]]
name = "main"
listener = "web"
upstream = "main"

[[route]]
name = "partial"
listener = "web"
path_prefix = "/partial"
upstream = "partial"

[[upstream]]
name = "main"
targets = [ {{ address = "{main}" }} ]
max_concurrent_requests = 20

[[upstream]]
name = "partial"
targets = [ {{ address = "{partial}" }} ]
max_concurrent_requests = 20

[runtime]
workers = 2

[log]
access = false
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stalled_bodies_get_408_in_time_and_hold_no_upstream_slot() {
    let main = Backend::start("main").await;
    let partial = Backend::start("partial").await;
    let gw = gateway(&config(main.addr, partial.addr));
    let addr = gw.local_addr("web").unwrap();
    let mut served = 0;
    assert_eq!(get(addr, "/warm-up").await.status, 200);
    served += 1;

    // The stalls: each connection's head (and 10 bytes), then nothing.
    let stalls_began = Instant::now();
    let mut stalls = Vec::new();
    for i in 0..CHUNKED {
        let head = format!("POST /chunked/{i} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        stalls.push(("chunked", stall(addr, head.as_bytes()).await));
    }
    for i in 0..PARTIAL {
        let head = format!("POST /partial/{i} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789");
        stalls.push(("content-length", stall(addr, head.as_bytes()).await));
    }
    let watchers: Vec<_> = stalls
        .into_iter()
        .map(|(kind, (mut stream, began))| {
            tokio::spawn(async move {
                let reply = read_until_close(&mut stream, BODY_TIMEOUT * 5).await;
                (kind, reply, began.elapsed())
            })
        })
        .collect();

    // Meanwhile others are served: GETs and a POST with its whole body, at once.
    let mut others = Vec::new();
    for i in 0..15 {
        others
            .push(tokio::spawn(async move { (format!("GET /during/{i}"), get(addr, &format!("/during/{i}")).await) }));
    }
    for i in 0..3 {
        others.push(tokio::spawn(async move {
            let reply = request(addr, Method::POST, "/echo", &[("host", "x")], Bytes::from(format!("body {i}"))).await;
            (format!("POST /echo {i}"), reply)
        }));
    }
    for other in others {
        let (what, reply) = other.await.unwrap();
        assert_eq!(reply.status, 200, "{what} during the stalls: {}", reply.text());
        served += 1;
    }
    assert!(
        stalls_began.elapsed() < BODY_TIMEOUT.mul_f64(0.8),
        "the stalls and the other requests took {:?}: the others did not all run while the stalls held",
        stalls_began.elapsed()
    );

    let mut wrong = Vec::new();
    let (mut first, mut last) = (Duration::MAX, Duration::ZERO);
    for watcher in watchers {
        let (kind, reply, after): (&str, RawReply, Duration) = watcher.await.unwrap();
        (first, last) = (first.min(after), last.max(after));
        let in_time = after > BODY_TIMEOUT.mul_f64(0.8) && after <= Duration::from_secs(3);
        if reply.status() != Some(408) || !reply.closed || !in_time {
            wrong.push(format!(
                "{kind}: status {:?}, closed {}, after {after:?}: {:?}",
                reply.status(),
                reply.closed,
                reply.text
            ));
        }
    }
    println!("stalled connections answered and closed {first:?} to {last:?} after their stall began");
    assert!(wrong.is_empty(), "{} of {} stalls:\n{}", wrong.len(), CHUNKED + PARTIAL, wrong.join("\n"));

    assert_eq!(main.hits(), served, "a chunked request whose body never started reached the upstream");
    println!("the partial-body upstream saw {} of {PARTIAL} started bodies", partial.hits());
    assert_eq!(get(addr, "/after").await.status, 200);
}

/// Opens a connection and sends `bytes`; the connection and when the stall began.
async fn stall(addr: SocketAddr, bytes: &[u8]) -> (TcpStream, Instant) {
    let mut stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.write_all(bytes).await.unwrap_or_else(|e| panic!("write: {e}"));
    (stream, Instant::now())
}
