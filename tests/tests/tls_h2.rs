//! TLS termination and HTTP/2: certificates chosen by SNI, ALPN h2 and
//! http/1.1, h2c with prior knowledge, 100 concurrent streams on one
//! connection, h2 and HTTPS/1.1 towards upstreams, and the handshake timeout.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::AsyncReadExt;
use wasmgate_tests::tls::{client_config, connect, TestCert};
use wasmgate_tests::{gateway, Backend, Seen};

/// An https listener `secure` with `certs` and a plain listener `web`, both
/// routing `/` to `backend` over `upstream_protocol`.
fn config(certs: &[&TestCert], backend: SocketAddr, upstream_extra: &str) -> String {
    let certs: Vec<String> = certs.iter().map(|c| c.toml()).collect();
    format!(
        r#"
[[listener]]
name = "secure"
address = "127.0.0.1:0"
protocol = "https"
certificates = [ {} ]
limits = {{ header_timeout = "500ms" }}

[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
listener = "secure"
upstream = "up"

[[route]]
listener = "web"
upstream = "up"

[[upstream]]
name = "up"
targets = [{{ address = "{backend}" }}]
{upstream_extra}

[runtime]
workers = 2

[log]
access = false
"#,
        certs.join(", ")
    )
}

type H2Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

async fn h2_over_tls(addr: SocketAddr, name: &str, trusted: &[&TestCert]) -> H2Sender {
    let tls = connect(addr, name, client_config(trusted, &[b"h2"])).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]), "ALPN chose h2");
    let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    sender
}

async fn get(sender: &mut H2Sender, uri: String) -> (http::Version, Seen) {
    let response = sender.send_request(http::Request::get(uri).body(Empty::new()).unwrap()).await.unwrap();
    assert_eq!(response.status(), 200);
    let version = response.version();
    (version, Seen::parse(&response.into_body().collect().await.unwrap().to_bytes()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_picks_the_certificate_and_alpn_h2_serves_http2() {
    let backend = Backend::start("b").await;
    let (a, b) = (TestCert::new(&["a.test", "127.0.0.1"]), TestCert::new(&["b.test", "*.b.test"]));
    let gw = gateway(&config(&[&a, &b], backend.addr, ""));
    let secure = gw.local_addr("secure").unwrap();

    // An IP address as the name: the client sends no SNI and gets the first certificate.
    for (name, expected) in [("a.test", &a), ("b.test", &b), ("x.b.test", &b), ("127.0.0.1", &a)] {
        let tls = connect(secure, name, client_config(&[&a, &b], &[b"h2"])).await.get_ref().1.peer_certificates().map(|c| c[0].clone());
        assert_eq!(tls.as_ref(), Some(&expected.der), "certificate for SNI {name}");
    }

    let mut sender = h2_over_tls(secure, "b.test", &[&b]).await;
    let (version, seen) = get(&mut sender, "https://b.test/over/tls".into()).await;
    assert_eq!(version, http::Version::HTTP_2);
    assert_eq!(seen.path, "/over/tls");
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
    assert_eq!(seen.header("host"), Some("b.test"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http1_over_tls_still_works() {
    let backend = Backend::start("b").await;
    let cert = TestCert::new(&["localhost"]);
    let gw = gateway(&config(&[&cert], backend.addr, ""));
    let tls = connect(gw.local_addr("secure").unwrap(), "localhost", client_config(&[&cert], &[b"http/1.1"])).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("/one").header("host", "localhost").body(Empty::<Bytes>::new()).unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_11);
    let seen = Seen::parse(&response.into_body().collect().await.unwrap().to_bytes());
    assert_eq!(seen.header("x-forwarded-proto"), Some("https"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_concurrent_streams_over_tls_and_h2c_to_an_h2c_upstream() {
    let backend = Backend::start("b").await;
    let cert = TestCert::new(&["localhost"]);
    let gw = gateway(&config(&[&cert], backend.addr, "protocol = \"h2c\""));

    let tls = h2_over_tls(gw.local_addr("secure").unwrap(), "localhost", &[&cert]).await;
    let tcp = tokio::net::TcpStream::connect(gw.local_addr("web").unwrap()).await.unwrap();
    let (h2c, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);

    for (label, sender) in [("tls", tls), ("h2c", h2c)] {
        let calls = (0..100).map(|i| {
            let mut sender = sender.clone();
            async move { get(&mut sender, format!("http://localhost/stream/{i}")).await }
        });
        let results = futures_util::future::join_all(calls).await;
        for (i, (version, seen)) in results.into_iter().enumerate() {
            assert_eq!(version, http::Version::HTTP_2, "{label}");
            assert_eq!(seen.path, format!("/stream/{i}"), "{label}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstreams_can_be_reached_over_tls_with_h2_or_http1() {
    // The TLS upstream is a second gateway terminating TLS in front of the backend.
    let backend = Backend::start("b").await;
    let cert = TestCert::new(&["inner.test"]);
    let inner = gateway(&config(&[&cert], backend.addr, ""));
    let inner_addr = inner.local_addr("secure").unwrap();
    for protocol in ["h2", "http1"] {
        let extra = format!(
            "protocol = \"{protocol}\"\ntls = {{ ca_file = \"{}\", server_name = \"inner.test\" }}",
            cert.cert_path().display()
        );
        let outer = gateway(&config(&[&cert], inner_addr, &extra));
        let reply = wasmgate_tests::get(outer.local_addr("web").unwrap(), "/via/tls").await;
        let seen = reply.seen();
        assert_eq!(seen.path, "/via/tls", "{protocol}");
        assert_eq!(seen.header("x-forwarded-proto"), Some("https"), "{protocol}: the inner gateway saw TLS");
    }
    // A CA that does not sign the upstream's certificate: the handshake fails, 502.
    let other = TestCert::new(&["inner.test"]);
    let extra = format!("protocol = \"h2\"\ntls = {{ ca_file = \"{}\", server_name = \"inner.test\" }}", other.cert_path().display());
    let outer = gateway(&config(&[&cert], inner_addr, &extra));
    assert_eq!(wasmgate_tests::get(outer.local_addr("web").unwrap(), "/").await.status, 502);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_is_dropped_after_the_header_timeout() {
    let backend = Backend::start("b").await;
    let cert = TestCert::new(&["localhost"]);
    let gw = gateway(&config(&[&cert], backend.addr, ""));
    let mut tcp = tokio::net::TcpStream::connect(gw.local_addr("secure").unwrap()).await.unwrap();
    let started = std::time::Instant::now();
    let mut buf = [0u8; 8];
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await.expect("handshake never timed out");
    assert!(matches!(read, Ok(0) | Err(_)));
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_read_again_on_reload() {
    let backend = Backend::start("b").await;
    let (old, new) = (TestCert::new(&["localhost"]), TestCert::new(&["localhost"]));
    // The config names files in its own directory; renewing them is copying over them.
    let dir = old.cert_path().parent().unwrap().to_owned();
    let file = dir.join("wasmgate.toml");
    std::fs::write(&file, config(&[&old], backend.addr, "")).unwrap();
    let config = wasmgate::Config::load(&file).unwrap();
    let gw = wasmgate::Gateway::start(&config).unwrap();
    let secure = gw.local_addr("secure").unwrap();
    let trust = || client_config(&[&old, &new], &[b"h2"]);
    let served = |tls: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>| tls.get_ref().1.peer_certificates().map(|c| c[0].clone());

    assert_eq!(served(&connect(secure, "localhost", trust()).await).as_ref(), Some(&old.der));
    std::fs::copy(&new.cert, &old.cert).unwrap();
    std::fs::copy(&new.key, &old.key).unwrap();
    gw.reload(None).unwrap_or_else(|e| panic!("reload: {e}"));
    assert_eq!(served(&connect(secure, "localhost", trust()).await).as_ref(), Some(&new.der), "the renewed certificate is served");
}

/// A HEAD over HTTP/2 gets its headers and no content, even from an upstream
/// that (like hyper's HTTP/2 server) sends a body with its HEAD answer, and
/// even when the gateway answers itself: DATA on a HEAD stream is a protocol
/// error for the client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_over_http2_gets_no_content() {
    let backend = Backend::start("b").await;
    let cert = TestCert::new(&["localhost"]);
    let gw = gateway(&config(&[&cert], backend.addr, "protocol = \"h2c\""));
    let tcp = tokio::net::TcpStream::connect(gw.local_addr("web").unwrap()).await.unwrap();
    let (mut h2c, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);

    // The backend answers HEAD with a body over h2c.
    let direct = tokio::net::TcpStream::connect(backend.addr).await.unwrap();
    let (mut to_backend, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(direct)).await.unwrap();
    tokio::spawn(conn);
    let head = || http::Request::head("http://localhost/h").body(Empty::<Bytes>::new()).unwrap();
    let sent_anyway = match to_backend.send_request(head()).await {
        Ok(reply) => reply.into_body().collect().await.is_err(),
        Err(_) => true,
    };
    assert!(sent_anyway, "the backend no longer sends a body with HEAD over h2: this test proves nothing");

    for attempt in 0..2 {
        let reply = h2c.send_request(head()).await.unwrap_or_else(|e| panic!("HEAD {attempt}: {e}"));
        assert_eq!(reply.status(), 200);
        assert!(reply.headers().contains_key("content-length"), "HEAD keeps the length a GET would get");
        let body = reply.into_body().collect().await.unwrap_or_else(|e| panic!("HEAD {attempt}: {e}")).to_bytes();
        assert!(body.is_empty());
    }
}
