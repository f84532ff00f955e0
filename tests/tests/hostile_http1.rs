//! Malformed and smuggling-shaped HTTP/1.1 requests: each gets a 4xx and a closed
//! connection, none reaches the upstream, and the gateway keeps serving.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wasmgate_tests::raw::{read_until_close, send_raw};
use wasmgate_tests::{gateway, get, simple_config, Backend};

const WAIT: Duration = Duration::from_secs(3);

/// (name, request bytes, expected status)
const CASES: &[(&str, &[u8], u16)] = &[
    (
        "content-length with transfer-encoding",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
    ),
    (
        "two different content-lengths",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        400,
    ),
    ("invalid chunk size", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400),
    ("obs-fold", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n", 400),
    ("bare LF", b"GET / HTTP/1.1\nHost: x\n\n", 400),
    ("NUL in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n", 400),
    ("CR in a header value", b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400),
    ("invalid method", b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("invalid target", b"GET foo HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("space in target", b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400),
    ("missing Host", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two Hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("unknown transfer-encoding", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ("chunked not last", b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_are_refused_and_never_forwarded() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    let mut wrong = Vec::new();
    let mut reached = 0;
    for (name, bytes, status) in CASES {
        let reply = send_raw(addr, bytes, WAIT).await;
        if reply.status() != Some(*status) || !reply.closed {
            wrong.push(format!("{name}: status {:?}, closed {}: {:?}", reply.status(), reply.closed, reply.text));
        }
        if backend.hits() != reached {
            reached = backend.hits();
            wrong.push(format!("{name}: reached the upstream"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    assert_eq!(get(addr, "/after").await.seen().path, "/after", "a normal request still works");
}

/// An upgrade request the backend answers like any other (200, no switch).
const UPGRADE: &[u8] = b"GET /first HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Reads one response (head, then a Content-Length or chunked body) without
/// waiting for the connection to close.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text[..end].to_ascii_lowercase();
            let length = head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|n| n.trim().parse::<usize>().ok());
            let done = match length {
                Some(n) => out.len() >= end + 4 + n,
                None => !head.contains("transfer-encoding: chunked") || text[end..].contains("\r\n0\r\n\r\n"),
            };
            if done {
                return text;
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => out.extend_from_slice(&buf[..n]),
            other => panic!("no whole response ({other:?}): {:?}", String::from_utf8_lossy(&out)),
        }
    }
}

async fn connect(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"))
}

/// After an `Upgrade` request that got an ordinary answer, the connection is
/// still HTTP/1.1 and every request on it is read as strictly as the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggling_after_an_upgrade_that_did_not_switch_is_refused() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    let smuggled: &[(&str, &[u8])] = &[
        (
            "content-length with transfer-encoding",
            b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        ("bare LF", b"GET /second HTTP/1.1\nHost: x\n\n"),
    ];
    let mut wrong = Vec::new();
    for (i, (name, second)) in smuggled.iter().enumerate() {
        let mut stream = connect(addr).await;
        stream.write_all(UPGRADE).await.unwrap();
        let first = read_response(&mut stream).await;
        assert!(first.starts_with("HTTP/1.1 200"), "{name}: the upgrade request is answered normally: {first}");
        let _ = stream.write_all(second).await;
        let reply = read_until_close(&mut stream, WAIT).await;
        if reply.status() != Some(400) || !reply.closed {
            wrong.push(format!("{name}: status {:?}, closed {}: {:?}", reply.status(), reply.closed, reply.text));
        }
        if backend.hits() != i + 1 {
            wrong.push(format!("{name}: the second request reached the upstream"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    assert_eq!(get(addr, "/after").await.seen().path, "/after", "a normal request still works");
}

/// A chunk-size line RFC 9112 does not allow fails the request, and nothing after
/// it on the connection is read as a request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_after_an_odd_chunk_size_is_read_as_a_request() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    let lines: &[(&str, &[u8])] = &[
        ("space before CRLF", b"5 \r\n"),
        ("17 hex digits", b"00000000000000005\r\n"),
        ("garbage after the size", b"5x\r\n"),
        ("empty size line", b"\r\n"),
        ("bad extension", b"5;a b\r\n"),
    ];
    let mut wrong = Vec::new();
    for (name, line) in lines {
        let hits = backend.hits();
        let request = [
            &b"POST /first HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            line,
            b"hello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        .concat();
        let reply = send_raw(addr, &request, WAIT).await;
        if reply.status() != Some(400) || !reply.closed || reply.text.matches("HTTP/1.1 ").count() != 1 {
            wrong.push(format!("{name}: status {:?}, closed {}: {:?}", reply.status(), reply.closed, reply.text));
        }
        // The first request's head may have gone upstream before its body failed;
        // the smuggled one never does.
        if backend.hits() > hits + 1 {
            wrong.push(format!("{name}: the smuggled request reached the upstream"));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
    assert_eq!(get(addr, "/after").await.seen().path, "/after", "a normal request still works");
}

/// The header timeout applies to every head on a connection, also after an
/// `Upgrade` request that got an ordinary answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_head_after_an_upgrade_request_is_cut_off_at_the_header_timeout() {
    let backend = Backend::start("b").await;
    let config = simple_config("round_robin", &[(backend.addr, 1)], "").replace(
        "address = \"127.0.0.1:0\"",
        "address = \"127.0.0.1:0\"\nlimits = { header_timeout = \"300ms\", idle_timeout = \"30s\" }",
    );
    let gw = gateway(&config);
    let addr = gw.local_addr("web").unwrap();
    for first in [UPGRADE, b"GET /first HTTP/1.1\r\nHost: x\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n"] {
        let mut stream = connect(addr).await;
        stream.write_all(first).await.unwrap();
        let answer = read_response(&mut stream).await;
        assert!(!answer.starts_with("HTTP/1.1 101"), "{answer}");
        // Then a head that never ends, a byte at a time.
        let started = Instant::now();
        stream.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        let mut cut = false;
        for _ in 0..60 {
            if stream.write_all(b"X").await.is_err() || read_until_close(&mut stream, Duration::from_millis(50)).await.closed {
                cut = true;
                break;
            }
        }
        assert!(cut, "still open after {:?} ({answer})", started.elapsed());
        assert!(started.elapsed() < Duration::from_millis(1500), "closed only after {:?}", started.elapsed());
    }
}
