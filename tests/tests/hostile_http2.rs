//! HTTP/2 abuse: a rapid-reset burst (CVE-2023-44487) gets the connection closed
//! with GOAWAY, memory stays bounded, and the gateway keeps serving.

use std::time::{Duration, Instant};

use wasmgate_tests::{gateway, get, simple_config, Backend};

/// Resident memory of this process (gateway included: it runs in-process), in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_closes_the_connection_and_keeps_memory_bounded() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    let before = rss_kib();

    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(connection);
    let started = Instant::now();
    let mut sent = 0;
    for i in 0..20_000 {
        let request = http::Request::get(format!("http://x/hold/{i}")).body(()).unwrap();
        let ready = match tokio::time::timeout(Duration::from_secs(2), client.clone().ready()).await {
            Ok(Ok(ready)) => ready,
            _ => break,
        };
        client = ready;
        match client.send_request(request, false) {
            Ok((_, mut stream)) => stream.send_reset(h2::Reason::CANCEL),
            Err(_) => break,
        }
        sent += 1;
        if started.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), connection).await;
    let outcome = match ended {
        Ok(Ok(Err(e))) => e.reason().map(|r| format!("{r:?}")).unwrap_or_else(|| e.to_string()),
        Ok(Ok(Ok(()))) => "closed".to_owned(),
        Ok(Err(e)) => panic!("connection task: {e}"),
        Err(_) => panic!("the connection survived a rapid-reset burst of {sent} streams"),
    };
    assert!(sent < 20_000, "all {sent} resets were accepted ({outcome})");
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
    println!("rapid reset: connection closed after {sent} streams ({outcome}); RSS +{grown} KiB");

    for _ in 0..20 {
        backend.release();
    }
    assert_eq!(get(addr, "/after").await.seen().path, "/after");
}

/// One raw HTTP/2 frame.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Floods `bytes` at the gateway without reading, then reads; the connection
/// must end (GOAWAY and close) within the bound, and the gateway stay healthy.
async fn flood(addr: std::net::SocketAddr, bytes: Vec<u8>) -> wasmgate_tests::raw::RawReply {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let writer = async {
        let _ = stream.write_all(&bytes).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(10), writer).await;
    wasmgate_tests::raw::read_until_close(&mut stream, Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continuation_settings_and_ping_floods_are_bounded() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    let before = rss_kib();

    // CONTINUATION flood: a header block that never ends (CVE-2024-27316 family).
    let mut bytes = PREFACE.to_vec();
    bytes.extend(frame(4, 0, 0, &[]));
    // HEADERS without END_HEADERS: ":method GET" as an indexed field (0x82).
    bytes.extend(frame(1, 0x1, 1, &[0x82]));
    let junk: Vec<u8> = std::iter::repeat_n([0x40u8, 0x01, b'x', 0x01, b'y'], 3000).flatten().collect();
    for _ in 0..400 {
        bytes.extend(frame(9, 0, 1, &junk));
    }
    let reply = flood(addr, bytes).await;
    assert!(reply.closed, "a CONTINUATION flood did not close the connection");

    // SETTINGS and PING floods: many frames that each ask for an answer.
    let mut bytes = PREFACE.to_vec();
    for i in 0..100_000u32 {
        if i % 2 == 0 {
            bytes.extend(frame(4, 0, 0, &[0, 3, 0, 0, 0, 100]));
        } else {
            bytes.extend(frame(6, 0, 0, &u64::from(i).to_be_bytes()));
        }
    }
    let reply = flood(addr, bytes).await;
    assert!(reply.closed, "a SETTINGS/PING flood did not close the connection");

    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 64 * 1024, "memory grew by {grown} KiB");
    assert_eq!(get(addr, "/after").await.seen().path, "/after");
}
