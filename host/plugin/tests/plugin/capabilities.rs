//! The imports a plugin can reach: context, counters, buckets, kv, clock,
//! scratch. Each test has its own runtime: shared state is per runtime.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use wasmgate_plugin::{Chain, OnError, PluginRuntime, RequestContext, RequestOutcome};

use super::support::{header, load, request, response, settings};

fn cap_probe(config: &str) -> Chain {
    let runtime = PluginRuntime::new(settings()).unwrap_or_else(|e| panic!("{e}"));
    let plugin = load(&runtime, "cap-probe")
        .configure(config, OnError::FailClosed)
        .unwrap_or_else(|e| panic!("{e}"));
    Chain::new(vec![plugin])
}

fn context() -> RequestContext {
    RequestContext {
        client_ip: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
        upstream: Some(Arc::from("backend")),
        ..RequestContext::new("r1", "l1")
    }
}

#[test]
fn a_plugin_sees_the_request_context_and_shared_state() {
    let chain = cap_probe("{}");
    let mut cx = context();
    let mut first = request("GET", "/first");
    let RequestOutcome::Continue { ran } = chain.on_request(&mut first, &mut cx) else {
        panic!("expected continue");
    };
    let h = &first.headers;
    assert_eq!(header(h, "x-route"), Some("r1"));
    assert_eq!(header(h, "x-listener"), Some("l1"));
    assert_eq!(header(h, "x-client-ip"), Some("192.0.2.7"));
    assert_eq!(header(h, "x-upstream"), Some("backend"));
    assert_eq!(header(h, "x-hits"), Some("1"));
    assert_eq!(header(h, "x-last-path"), Some(""));
    assert_eq!(header(h, "x-mono-ok"), Some("true"));
    let wall: u64 = header(h, "x-wall-secs")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    assert!(wall > 1_700_000_000, "{wall}");
    assert_eq!(cx.scratch.get("seen-by"), Some("cap-probe"));

    let mut resp = response(200);
    chain.on_response(ran, &mut resp, &mut cx);
    assert_eq!(header(&resp.headers, "x-scratch"), Some("cap-probe"));

    let mut second = request("GET", "/second");
    chain.on_request(&mut second, &mut context());
    assert_eq!(header(&second.headers, "x-hits"), Some("2"));
    assert_eq!(header(&second.headers, "x-last-path"), Some("/first"));
}

#[test]
fn token_buckets_refuse_past_the_burst() {
    let chain = cap_probe(r#"{"rate": 0.001, "burst": 2}"#);
    for _ in 0..2 {
        assert!(matches!(
            chain.on_request(&mut request("GET", "/"), &mut context()),
            RequestOutcome::Continue { .. }
        ));
    }
    match chain.on_request(&mut request("GET", "/"), &mut context()) {
        RequestOutcome::Respond { response, .. } => {
            assert_eq!(response.status(), 429);
            let retry: u64 = header(response.headers(), "retry-after-ms")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            assert!(retry > 100_000, "{retry}");
        }
        other => panic!("expected 429, got {other:?}"),
    }
}
