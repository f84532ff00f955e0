//! TCP listeners: a real Redis behind the gateway, a 10 MiB echo, half-close,
//! a failed dial, PROXY protocol headers and the idle timeout.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wasmgate_tests::echo::Echo;
use wasmgate_tests::redis::{Redis, Resp};
use wasmgate_tests::{closed_port, gateway};

/// One tcp listener `front` piping to one target, plus extra listener keys.
fn tcp_config(target: SocketAddr, listener_extra: &str) -> String {
    format!(
        r#"
[[listener]]
name = "front"
address = "127.0.0.1:0"
protocol = "tcp"
upstream = "back"
{listener_extra}

[[upstream]]
name = "back"
balance = "consistent_hash"
hash_key = "client_ip"
targets = [{{ address = "{target}" }}]
timeouts = {{ connect = "1s" }}

[runtime]
workers = 2

[log]
access = false
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_commands_and_benchmark_pass_through() {
    let redis = Redis::start().await;
    let gw = gateway(&tcp_config(redis.addr, ""));
    let front = gw.local_addr("front").unwrap();

    let mut client = Resp::connect(front).await.unwrap();
    assert_eq!(client.command(&["PING"]).await.unwrap(), "+PONG");
    assert_eq!(client.command(&["SET", "greeting", "hello through wasmgate"]).await.unwrap(), "+OK");
    assert_eq!(client.command(&["GET", "greeting"]).await.unwrap(), "$hello through wasmgate");
    assert_eq!(client.command(&["GET", "missing"]).await.unwrap(), "$nil");

    let port = front.port().to_string();
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new("redis-benchmark")
            .args(["-h", "127.0.0.1", "-p", &port, "-n", "20000", "-c", "20", "-q", "-t", "ping,set,get"])
            .output()
    });
    let output = tokio::time::timeout(Duration::from_secs(120), run).await.expect("redis-benchmark took over 2 min");
    let output = output.unwrap().expect("cannot run redis-benchmark (Debian's redis-tools)");
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "redis-benchmark failed:\n{text}");
    assert!(!text.to_lowercase().contains("error"), "redis-benchmark reported errors:\n{text}");
    // PING runs twice (inline and bulk), then SET and GET.
    assert_eq!(text.matches("requests per second").count(), 4, "one result per test expected:\n{text}");
    println!("{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_round_trip_intact() {
    let echo = Echo::start().await;
    let gw = gateway(&tcp_config(echo.addr, ""));
    let stream = TcpStream::connect(gw.local_addr("front").unwrap()).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let data: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        write.write_all(&sent).await.unwrap();
        write.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(data.len());
    tokio::time::timeout(Duration::from_secs(60), read.read_to_end(&mut back)).await.expect("echo too slow").unwrap();
    writer.await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echoed bytes differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_reaches_the_target_and_the_answer_still_flows_back() {
    let echo = Echo::start_then_say("done").await;
    let gw = gateway(&tcp_config(echo.addr, ""));
    let mut stream = TcpStream::connect(gw.local_addr("front").unwrap()).await.unwrap();
    stream.write_all(&[7u8; 1000]).await.unwrap();
    stream.shutdown().await.unwrap(); // FIN: our half is closed, theirs is open
    let mut reply = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut reply)).await.expect("no reply").unwrap();
    assert_eq!(reply, "done after 1000 bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_dial_closes_the_client() {
    let gw = gateway(&tcp_config(closed_port(), ""));
    let mut stream = TcpStream::connect(gw.local_addr("front").unwrap()).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("client left open");
    assert!(matches!(read, Ok(0) | Err(_)), "expected a close, got {read:?}");
    // The gateway is still fine.
    let mut again = TcpStream::connect(gw.local_addr("front").unwrap()).await.unwrap();
    let read = tokio::time::timeout(Duration::from_secs(10), again.read(&mut buf)).await.expect("client left open");
    assert!(matches!(read, Ok(0) | Err(_)));
}

/// Accepts one connection and returns the first `n` bytes it receives.
async fn first_bytes(listener: TcpListener, n: usize) -> Vec<u8> {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut buf = vec![0; n];
    stream.read_exact(&mut buf).await.unwrap();
    buf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxy_protocol_v1_and_v2_name_the_real_client() {
    for version in ["v1", "v2"] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let target = listener.local_addr().unwrap();
        let gw = gateway(&tcp_config(target, &format!("proxy_protocol = \"{version}\"")));
        let front = gw.local_addr("front").unwrap();
        let mut client = TcpStream::connect(front).await.unwrap();
        let me = client.local_addr().unwrap();
        let expected_v1 = format!("PROXY TCP4 127.0.0.1 127.0.0.1 {} {}\r\n", me.port(), front.port());
        let len = if version == "v1" { expected_v1.len() } else { 28 };
        let reader = tokio::spawn(first_bytes(listener, len + 5));
        client.write_all(b"hello").await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), reader).await.expect("nothing arrived").unwrap();
        if version == "v1" {
            assert_eq!(String::from_utf8_lossy(&got[..len]), expected_v1);
        } else {
            assert_eq!(&got[..12], b"\r\n\r\n\0\r\nQUIT\n");
            assert_eq!(&got[12..16], &[0x21, 0x11, 0, 12]);
            assert_eq!(&got[16..24], &[127, 0, 0, 1, 127, 0, 0, 1]);
            assert_eq!(u16::from_be_bytes([got[24], got[25]]), me.port());
            assert_eq!(u16::from_be_bytes([got[26], got[27]]), front.port());
        }
        assert_eq!(&got[len..], b"hello", "the client's bytes follow the header");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed() {
    let echo = Echo::start().await;
    let gw = gateway(&tcp_config(echo.addr, "limits = { idle_timeout = \"300ms\" }"));
    let mut stream = TcpStream::connect(gw.local_addr("front").unwrap()).await.unwrap();
    stream.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    stream.read_exact(&mut buf).await.unwrap();
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.expect("idle connection kept open");
    assert!(matches!(read, Ok(0) | Err(_)));
    assert!(started.elapsed() >= Duration::from_millis(250), "closed too early: {:?}", started.elapsed());
}
