//! Malformed and smuggling-shaped HTTP/1.1 requests: each gets a 4xx and a closed
//! connection, none reaches the upstream, and the gateway keeps serving.

use std::time::Duration;

use wasmgate_tests::raw::send_raw;
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
