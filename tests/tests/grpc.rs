//! gRPC through the gateway: a tonic echo service behind an h2c upstream, called
//! over h2c and over TLS, in all four modes; metadata both ways; statuses and
//! trailers intact; the gateway's own failures reported as gRPC statuses.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tonic::{Code, Request};
use wasmgate_tests::grpc::{EchoBackend, EchoClient, Msg};
use wasmgate_tests::tls::{client_config, TestCert};
use wasmgate_tests::{closed_port, gateway, Backend};

fn config(cert: &TestCert, target: SocketAddr, upstream_extra: &str) -> String {
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[listener]]
name = "secure"
address = "127.0.0.1:0"
protocol = "https"
certificates = [ {} ]

[[route]]
listener = "web"
upstream = "echo"

[[route]]
listener = "secure"
upstream = "echo"

[[upstream]]
name = "echo"
protocol = "h2c"
targets = [{{ address = "{target}" }}]
{upstream_extra}

[runtime]
workers = 2

[log]
access = false
"#,
        cert.toml()
    )
}

/// A tonic client speaking h2 over TLS (ALPN h2) to `addr`.
async fn tls_client(addr: SocketAddr, cert: &TestCert) -> EchoClient {
    let config = client_config(&[cert], &[b"h2"]);
    let connector = TlsConnector { addr, config };
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(connector)
        .await
        .unwrap_or_else(|e| panic!("connect over TLS: {e}"));
    EchoClient::new(channel)
}

#[derive(Clone)]
struct TlsConnector {
    addr: SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
}

impl tonic::codegen::Service<http::Uri> for TlsConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;
    type Error = std::io::Error;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let (addr, config) = (self.addr, self.config.clone());
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = rustls::pki_types::ServerName::try_from("localhost").map_err(std::io::Error::other)?;
            let tls = tokio_rustls::TlsConnector::from(config).connect(name, tcp).await?;
            Ok(TokioIo::new(tls))
        })
    }
}

async fn all_four_modes(client: &mut EchoClient, label: &str) {
    // Unary, with metadata both ways.
    let mut request = Request::new(Msg::new("hello", 1));
    request.metadata_mut().insert("x-trace", "trace-42".parse().unwrap());
    let response = client.unary(request).await.unwrap_or_else(|s| panic!("{label}: unary: {s:?}"));
    assert_eq!(response.metadata().get("x-trace-echo").map(|v| v.to_str().unwrap()), Some("trace-42"), "{label}");
    assert_eq!(response.into_inner(), Msg::new("hello", 1), "{label}");

    // A status with its message reaches the client.
    let status = client.unary(Request::new(Msg::new("not-found", 0))).await.expect_err("NOT_FOUND expected");
    assert_eq!(status.code(), Code::NotFound, "{label}: {status:?}");
    assert_eq!(status.message(), "no such thing: not-found", "{label}");

    // Server streaming: 50 in order; then a status that travels in trailers.
    let mut stream = client.server_stream(Msg::new("", 50)).await.unwrap().into_inner();
    for i in 0..50 {
        assert_eq!(stream.message().await.unwrap(), Some(Msg::new(format!("item {i}"), i)), "{label}");
    }
    assert_eq!(stream.message().await.unwrap(), None, "{label}");
    let mut stream = client.server_stream(Msg::new("fail-after", 3)).await.unwrap().into_inner();
    for i in 0..3 {
        assert_eq!(stream.message().await.unwrap().map(|m| m.seq), Some(i), "{label}");
    }
    let status = stream.message().await.expect_err("the trailers' status");
    assert_eq!((status.code(), status.message()), (Code::NotFound, "gone after the items"), "{label}");

    // Client streaming.
    let messages: Vec<Msg> = (0..100).map(|i| Msg::new(i.to_string(), i)).collect();
    let reply = client.client_stream(messages).await.unwrap().into_inner();
    assert_eq!(reply.seq, 100, "{label}");
    assert!(reply.text.starts_with("0,1,2,") && reply.text.ends_with(",99"), "{label}");

    // Bidirectional: 500 messages, sent as the replies come back, stay in order.
    let (tx, rx) = tokio::sync::mpsc::channel::<Msg>(8);
    let outgoing = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|m| (m, rx)) });
    tx.send(Msg::new("m0", 0)).await.unwrap();
    let mut replies = client.bidi(outgoing).await.unwrap().into_inner();
    for i in 0..500u32 {
        let reply = tokio::time::timeout(Duration::from_secs(10), replies.message()).await.expect("bidi stalled");
        assert_eq!(reply.unwrap(), Some(Msg::new(format!("m{i}"), i)), "{label}");
        if i + 1 < 500 {
            tx.send(Msg::new(format!("m{}", i + 1), i + 1)).await.unwrap();
        }
    }
    drop(tx);
    assert_eq!(replies.message().await.unwrap(), None, "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_four_modes_over_h2c_and_tls() {
    let echo = EchoBackend::start().await;
    let cert = TestCert::new(&["localhost"]);
    let gw = gateway(&config(&cert, echo.addr, ""));
    let mut h2c = EchoClient::h2c(gw.local_addr("web").unwrap()).await;
    all_four_modes(&mut h2c, "h2c").await;
    let mut tls = tls_client(gw.local_addr("secure").unwrap(), &cert).await;
    all_four_modes(&mut tls, "tls").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_calls_share_connections() {
    let echo = EchoBackend::start().await;
    let cert = TestCert::new(&["localhost"]);
    let gw = gateway(&config(&cert, echo.addr, ""));
    let client = EchoClient::h2c(gw.local_addr("web").unwrap()).await;
    let calls = (0..100u32).map(|i| {
        let mut client = client.clone();
        async move { client.unary(Request::new(Msg::new("c", i))).await.map(|r| r.into_inner().seq) }
    });
    let results: Vec<u32> = futures_util::future::join_all(calls).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(results, (0..100).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_failures_are_grpc_statuses() {
    let cert = TestCert::new(&["localhost"]);
    // The target is down: UNAVAILABLE, not a bare 502.
    let gw = gateway(&config(&cert, closed_port(), ""));
    let mut client = EchoClient::h2c(gw.local_addr("web").unwrap()).await;
    let status = client.unary(Request::new(Msg::new("x", 0))).await.expect_err("unavailable");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");

    // No target to offer at all (every target held out by health checks): UNAVAILABLE.
    let gw = gateway(&config(
        &cert,
        closed_port(),
        "health_check = { kind = \"tcp\", interval = \"100ms\", timeout = \"50ms\", unhealthy_after = 1 }",
    ));
    assert!(wasmgate_tests::wait_until(Duration::from_secs(10), || wasmgate_tests::rotation(&gw, "echo").is_empty()).await.is_some());
    let mut client = EchoClient::h2c(gw.local_addr("web").unwrap()).await;
    let status = client.unary(Request::new(Msg::new("x", 0))).await.expect_err("unavailable");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_timeout_is_respected_with_deadline_exceeded() {
    // An h2c upstream that never answers `/hold`: the call's 200 ms deadline ends it.
    let backend = Backend::start("slow").await;
    let cert = TestCert::new(&["localhost"]);
    let gw = gateway(&config(&cert, backend.addr, ""));
    let tcp = tokio::net::TcpStream::connect(gw.local_addr("web").unwrap()).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let request = http::Request::post("http://localhost/hold")
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", "200m")
        .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .unwrap();
    let started = std::time::Instant::now();
    let response = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request)).await.expect("no answer").unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "4", "DEADLINE_EXCEEDED");
    assert!(elapsed >= Duration::from_millis(180) && elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let _ = response.into_body().collect().await;
    backend.release();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_call_gets_resource_exhausted() {
    let echo = EchoBackend::start().await;
    let cert = TestCert::new(&["localhost"]);
    let dir = wasmgate_tests::plugins::PluginDir::with(&[("rate-limit", "rate-limit")]);
    // Two calls per minute for the whole route.
    let limit = r#"plugins = [ { name = "rate-limit", config = { rate = 2, per = "minute", burst = 2, key = "route" } } ]"#;
    let text = config(&cert, echo.addr, "").replace("upstream = \"echo\"\n", &format!("upstream = \"echo\"\n{limit}\n"))
        + &format!("\n[plugins]\ndir = \"{}\"\n", dir.path().display());
    let gw = gateway(&text);
    let mut client = EchoClient::h2c(gw.local_addr("web").unwrap()).await;
    for seq in 0..2 {
        let reply = client.unary(Request::new(Msg::new("within the limit", seq))).await.expect("admitted");
        assert_eq!(reply.get_ref().seq, seq);
    }
    let status = client.unary(Request::new(Msg::new("one too many", 2))).await.expect_err("refused");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("rate limit"), "{status:?}");
    assert!(status.metadata().get("retry-after").is_some(), "the plugin's headers travel as metadata: {status:?}");
    // The connection is still good for the next call (refused again: same bucket).
    let again = client.unary(Request::new(Msg::new("still limited", 3))).await.expect_err("refused");
    assert_eq!(again.code(), Code::ResourceExhausted);
}
