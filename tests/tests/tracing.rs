//! Trace context with `[tracing]` on: a sampled request continues its
//! caller's trace (same trace id, the gateway's exchange span as the
//! upstream's parent) and its spans — the request, the upstream exchange, one
//! per plugin call — reach a real OTLP/HTTP receiver; an unsampled one passes
//! through untouched and exports nothing; an invalid `traceparent` starts a
//! new trace.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use wasmgate_tests::otlp::{Received, Receiver};
use wasmgate_tests::plugins::{plugin_config, PluginDir};
use wasmgate_tests::{gateway, request, Backend};

const WAIT: Duration = Duration::from_secs(15);

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The one span named `name` among `spans`.
fn named<'a>(spans: &'a [Received], name: &str) -> &'a Received {
    let found: Vec<&Received> = spans.iter().filter(|r| r.span.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span expected among {:?}", spans.iter().map(|r| &r.span.name).collect::<Vec<_>>());
    found[0]
}

fn config(backend: std::net::SocketAddr, dir: &PluginDir, plugins: &str, receiver: &Receiver, ratio: f64) -> String {
    plugin_config(backend, dir.path(), plugins)
        + &format!("\n[tracing]\nendpoint = \"{}\"\nsample_ratio = {ratio}\nservice_name = \"edge\"\n", receiver.endpoint())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_request_continues_its_trace_and_exports_its_spans() {
    let receiver = Receiver::start().await;
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("pass", "pass")]);
    // Ratio 0: only what the caller sampled is recorded.
    let gw = gateway(&config(backend.addr, &dir, r#"{ name = "pass" }"#, &receiver, 0.0));
    let addr = gw.local_addr("web").unwrap();

    // Not sampled by the caller: passed on untouched, nothing recorded.
    let unsampled = "00-11111111111111111111111111111111-2222222222222222-00";
    let reply = request(addr, Method::GET, "/quiet", &[("host", "localhost"), ("traceparent", unsampled)], Bytes::new()).await;
    assert_eq!(reply.seen().headers.get("traceparent").map(String::as_str), Some(unsampled));

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace_id}-{caller_span}-01");
    let tracestate = "congo=t61rcWkgMzE";
    let reply = request(
        addr,
        Method::GET,
        "/traced?x=1",
        &[("host", "localhost"), ("traceparent", &traceparent), ("tracestate", tracestate)],
        Bytes::new(),
    )
    .await;
    let seen = reply.seen();
    // Same trace, a new parent (the gateway's exchange span), sampled; the
    // vendor state goes on as it was.
    let forwarded = seen.headers.get("traceparent").cloned().unwrap_or_default();
    let parts: Vec<&str> = forwarded.split('-').collect();
    assert_eq!(parts.len(), 4, "{forwarded}");
    assert_eq!((parts[0], parts[1], parts[3]), ("00", trace_id, "01"), "{forwarded}");
    assert_ne!(parts[2], caller_span, "the upstream's parent is the gateway's span, not the caller's");
    assert_eq!(seen.headers.get("tracestate").map(String::as_str), Some(tracestate));

    // The request, the exchange and the plugin's two calls.
    let spans = receiver.wait_for(&hex(trace_id), 4, WAIT).await;
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let server = named(&spans, "GET main");
    assert_eq!(server.service, "edge");
    assert_eq!(server.span.kind, SpanKind::Server as i32);
    assert_eq!(to_hex(&server.span.parent_span_id), caller_span);
    assert_eq!(server.attribute("http.response.status_code").as_deref(), Some("200"));
    assert_eq!(server.attribute("http.route").as_deref(), Some("main"));
    assert_eq!(server.attribute("url.path").as_deref(), Some("/traced"));
    let exchange = named(&spans, "upstream up");
    assert_eq!(exchange.span.kind, SpanKind::Client as i32);
    assert_eq!(to_hex(&exchange.span.span_id), parts[2], "the upstream saw the exchange span as its parent");
    assert_eq!(exchange.span.parent_span_id, server.span.span_id);
    assert_eq!(exchange.attribute("server.port"), Some(backend.addr.port().to_string()));
    for phase in ["request", "response"] {
        let call = named(&spans, &format!("plugin pass {phase}"));
        assert_eq!(call.span.kind, SpanKind::Internal as i32);
        assert_eq!(call.span.parent_span_id, server.span.span_id);
        assert_eq!(call.attribute("wasmgate.outcome").as_deref(), Some("continue"));
        assert!(call.span.start_time_unix_nano >= server.span.start_time_unix_nano);
        assert!(call.span.end_time_unix_nano <= server.span.end_time_unix_nano);
    }
    assert!(exchange.span.start_time_unix_nano <= exchange.span.end_time_unix_nano);
    // Exported in order: the unsampled request's trace never came.
    assert!(receiver.spans().iter().all(|r| to_hex(&r.span.trace_id) != "11111111111111111111111111111111"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_traceparent_starts_a_new_trace_and_an_answering_plugin_is_its_only_child() {
    let receiver = Receiver::start().await;
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("pass", "pass"), ("responder", "responder")]);
    let plugins = r#"{ name = "pass" }, { name = "responder", config = { status = 418, body = "teapot" } }"#;
    let gw = gateway(&config(backend.addr, &dir, plugins, &receiver, 1.0));
    let addr = gw.local_addr("web").unwrap();

    // Upper-case hex is invalid: a new trace, and the old tracestate is dropped.
    let invalid = "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01";
    let reply =
        request(addr, Method::GET, "/", &[("host", "localhost"), ("traceparent", invalid), ("tracestate", "a=b")], Bytes::new()).await;
    assert_eq!(reply.status, StatusCode::IM_A_TEAPOT);
    assert_eq!(backend.hits(), 0);

    let deadline = tokio::time::Instant::now() + WAIT;
    let spans = loop {
        let spans = receiver.spans();
        if spans.len() >= 4 || tokio::time::Instant::now() >= deadline {
            break spans;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // The request, pass's request and response calls, responder's request call.
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let server = named(&spans, "GET main");
    assert!(server.span.parent_span_id.is_empty(), "a new trace has no parent");
    assert_ne!(to_hex(&server.span.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(server.attribute("http.response.status_code").as_deref(), Some("418"));
    assert!(spans.iter().all(|r| r.span.trace_id == server.span.trace_id));
    assert!(spans.iter().all(|r| !r.span.name.starts_with("upstream")), "nothing went upstream");
    let answered = named(&spans, "plugin responder request");
    assert_eq!(answered.attribute("wasmgate.outcome").as_deref(), Some("answered"));
    named(&spans, "plugin pass response");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_trace_is_propagated_without_the_old_tracestate() {
    let receiver = Receiver::start().await;
    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("pass", "pass")]);
    let admin = "\n[admin]\naddress = \"127.0.0.1:0\"\n";
    let gw = gateway(&(config(backend.addr, &dir, r#"{ name = "pass" }"#, &receiver, 1.0) + admin));
    let addr = gw.local_addr("web").unwrap();
    let reply = request(addr, Method::GET, "/", &[("host", "localhost"), ("traceparent", "garbage"), ("tracestate", "a=b")], Bytes::new()).await;
    let seen = reply.seen();
    let forwarded = seen.headers.get("traceparent").cloned().unwrap_or_default();
    let parts: Vec<&str> = forwarded.split('-').collect();
    assert!(parts.len() == 4 && parts[0] == "00" && parts[1].len() == 32 && parts[2].len() == 16 && parts[3] == "01", "{forwarded}");
    assert_eq!(seen.headers.get("tracestate"), None);
    let spans = receiver.wait_for(&hex(parts[1]), 4, WAIT).await;
    assert_eq!(spans.len(), 4, "{spans:#?}");

    // The exporter counts what it posted (once the collector has answered).
    let exported = "wasmgate_trace_spans_total{result=\"exported\"} 4";
    let dropped = "wasmgate_trace_spans_total{result=\"dropped\"} 0";
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let scrape = request(gw.admin_addr().unwrap(), Method::GET, "/metrics", &[("host", "admin")], Bytes::new()).await.text();
        if scrape.lines().any(|l| l == exported) {
            assert!(scrape.lines().any(|l| l == dropped), "{scrape}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no `{exported}` in:\n{scrape}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
