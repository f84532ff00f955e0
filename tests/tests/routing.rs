//! Routing by host and longest path prefix, prefix stripping, and what the
//! upstream sees of the request: forwarded headers, query, host, hop-by-hop.

use bytes::Bytes;
use http::{Method, StatusCode};
use wasmgate_tests::{gateway, get, request, simple_config, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_and_longest_prefix_pick_the_route_and_strip_prefix_rewrites() {
    let (root, api, users, wild) =
        (Backend::start("root").await, Backend::start("api").await, Backend::start("users").await, Backend::start("wild").await);
    let gw = gateway(&format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"
[[route]]
listener = "web"
upstream = "root"
[[route]]
listener = "web"
host = "api.example.com"
path_prefix = "/api"
strip_prefix = true
upstream = "api"
[[route]]
listener = "web"
host = "api.example.com"
path_prefix = "/api/users"
upstream = "users"
[[route]]
listener = "web"
host = "*.example.com"
path_prefix = "/api"
upstream = "wild"
[[upstream]]
name = "root"
targets = [{{ address = "{}" }}]
[[upstream]]
name = "api"
targets = [{{ address = "{}" }}]
[[upstream]]
name = "users"
targets = [{{ address = "{}" }}]
[[upstream]]
name = "wild"
targets = [{{ address = "{}" }}]
[runtime]
workers = 1
"#,
        root.addr, api.addr, users.addr, wild.addr
    ));
    let addr = gw.local_addr("web").unwrap();
    let on = |host: &'static str, path: &'static str| async move {
        request(addr, Method::GET, path, &[("host", host)], Bytes::new()).await.seen()
    };

    let seen = on("api.example.com", "/api/orders/7?x=1&y=2").await;
    assert_eq!((seen.backend.as_str(), seen.path.as_str()), ("api", "/orders/7"));
    assert_eq!(seen.query.as_deref(), Some("x=1&y=2"), "query survives stripping");

    let seen = on("API.example.com:8080", "/api").await;
    assert_eq!((seen.backend.as_str(), seen.path.as_str()), ("api", "/"), "host match ignores case and port");

    let seen = on("api.example.com", "/api/users/42").await;
    assert_eq!((seen.backend.as_str(), seen.path.as_str()), ("users", "/api/users/42"), "longest prefix, not stripped");

    let seen = on("shop.example.com", "/api/x").await;
    assert_eq!(seen.backend, "wild");

    let seen = on("other.test", "/api/x").await;
    assert_eq!((seen.backend.as_str(), seen.path.as_str()), ("root", "/api/x"));

    let seen = on("api.example.com", "/apiary").await;
    assert_eq!(seen.backend, "root", "prefixes match whole segments");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_sees_forwarded_headers_and_no_hop_by_hop() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    let reply = request(
        addr,
        Method::GET,
        "/path?q=1",
        &[
            ("host", "shop.test"),
            ("x-forwarded-for", "203.0.113.9, 198.51.100.2"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "secret"),
            ("keep-alive", "timeout=5"),
            ("x-end-to-end", "kept"),
        ],
        Bytes::new(),
    )
    .await;
    let seen = reply.seen();
    assert_eq!(seen.header("x-forwarded-for"), Some("203.0.113.9, 198.51.100.2, 127.0.0.1"));
    assert_eq!(seen.header("x-real-ip"), Some("127.0.0.1"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-host"), Some("shop.test"));
    assert_eq!(seen.header("host"), Some("shop.test"), "Host passes through by default");
    assert_eq!(seen.header("x-end-to-end"), Some("kept"));
    assert_eq!(seen.header("x-hop"), None, "headers named by Connection are removed");
    assert_eq!(seen.header("keep-alive"), None);
    assert_eq!(seen.query.as_deref(), Some("q=1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_can_be_rewritten_to_the_target_or_a_fixed_value() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], "pass_host = \"target\""));
    let seen = get(gw.local_addr("web").unwrap(), "/").await.seen();
    assert_eq!(seen.header("host"), Some(backend.addr.to_string().as_str()));

    let gw = gateway(&simple_config(
        "round_robin",
        &[(backend.addr, 1)],
        "pass_host = \"rewrite\"\nupstream_host = \"internal.svc\"",
    ));
    let seen = get(gw.local_addr("web").unwrap(), "/").await.seen();
    assert_eq!(seen.header("host"), Some("internal.svc"));
    assert_eq!(seen.header("x-forwarded-host"), Some("localhost"), "the client's host is still forwarded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_clients_are_served() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let stream = tokio::net::TcpStream::connect(gw.local_addr("web").unwrap()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut replies = Vec::new();
    for i in 0..20 {
        let req = http::Request::get(format!("http://h2.test/n/{i}")).body(Empty::<Bytes>::new()).unwrap();
        replies.push(sender.send_request(req));
    }
    for (i, reply) in futures_util::future::join_all(replies).await.into_iter().enumerate() {
        let reply = reply.unwrap();
        assert_eq!(reply.status(), StatusCode::OK);
        assert_eq!(reply.version(), http::Version::HTTP_2);
        let seen = wasmgate_tests::Seen::parse(&reply.into_body().collect().await.unwrap().to_bytes());
        assert_eq!(seen.path, format!("/n/{i}"));
        assert_eq!(seen.header("host"), Some("h2.test"), ":authority becomes Host upstream");
    }
}

/// W3C trace context passes through untouched (the gateway does not trace by
/// default): the backend sees the client's trace id and state as sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_reaches_the_backend_untouched() {
    let backend = Backend::start("b").await;
    let gw = gateway(&simple_config("round_robin", &[(backend.addr, 1)], ""));
    let addr = gw.local_addr("web").unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let tracestate = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    let reply = request(
        addr,
        Method::GET,
        "/traced",
        &[("host", "localhost"), ("traceparent", traceparent), ("tracestate", tracestate)],
        Bytes::new(),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = reply.seen();
    assert_eq!(seen.headers.get("traceparent").map(String::as_str), Some(traceparent));
    assert_eq!(seen.headers.get("tracestate").map(String::as_str), Some(tracestate));
}
