//! A trap, a deadline or the memory cap costs one request, per policy; the
//! next request is served by a fresh instance.

use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmgate_plugin::{ConfiguredPlugin, OnError, PluginError, RequestOutcome, ResponseOutcome};

use super::support::{ctx, header, request, response, shared};

fn boom() -> http::request::Parts {
    let mut req = request("GET", "/");
    req.headers
        .insert("x-boom", http::HeaderValue::from_static("1"));
    req
}

/// A faulty request fails per policy, then a normal one goes through.
fn costs_one_request(mode: &str) {
    let config = format!(r#"{{"mode": "{mode}", "when_header": "x-boom"}}"#);
    let closed = shared().chain(&[("faulty", &config, OnError::FailClosed)]);
    let open = shared().chain(&[
        ("faulty", &config, OnError::FailOpen),
        (
            "header-adder",
            r#"{"request": {"x-after": "1"}}"#,
            OnError::FailClosed,
        ),
    ]);
    let mut cx = ctx();

    let started = Instant::now();
    match closed.on_request(&mut boom(), &mut cx) {
        RequestOutcome::Respond { ran, response } => {
            assert_eq!(ran, 0);
            assert_eq!(response.status(), 500);
        }
        other => panic!("{mode}: expected a 500, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{mode}: took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        closed.on_request(&mut request("GET", "/"), &mut cx),
        RequestOutcome::Continue { ran: 1 }
    ));

    let mut req = boom();
    assert!(matches!(
        open.on_request(&mut req, &mut cx),
        RequestOutcome::Continue { ran: 2 }
    ));
    assert_eq!(
        header(&req.headers, "x-after"),
        Some("1"),
        "{mode}: fail-open skips only the plugin"
    );
    assert!(matches!(
        open.on_request(&mut request("GET", "/"), &mut cx),
        RequestOutcome::Continue { ran: 2 }
    ));
}

#[test]
fn a_panic_costs_one_request() {
    costs_one_request("panic");
}

/// What a subscriber wrote, for tests that check log lines.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_panic_is_logged_once_with_its_message_and_location() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let chain = shared().chain(&[("faulty", r#"{"mode": "panic"}"#, OnError::FailClosed)]);
    tracing::subscriber::with_default(subscriber, || {
        let outcome = chain.on_request(&mut request("GET", "/"), &mut ctx());
        assert!(matches!(outcome, RequestOutcome::Respond { .. }), "{outcome:?}");
    });
    let text = String::from_utf8_lossy(&captured.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("panics on purpose")).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(lines[0].contains("plugin failed; answering 500"), "{text}");
    let reason = lines[0].split("reason=").nth(1).unwrap_or_default();
    assert!(reason.starts_with("trapped: panicked at "), "{text}");
    assert!(reason.contains("src/lib.rs:") && reason.contains(": faulty plugin panics on purpose"), "{text}");
}

#[test]
fn an_abort_costs_one_request() {
    costs_one_request("trap");
}

#[test]
fn an_endless_loop_hits_the_deadline() {
    costs_one_request("loop");
}

#[test]
fn unbounded_allocation_hits_the_memory_cap() {
    costs_one_request("alloc");
}

fn start_error(config: &str) -> String {
    match shared()
        .plugin("faulty")
        .configure(config, OnError::FailClosed)
    {
        Err(err @ PluginError::Start { .. }) => err.to_string(),
        Err(other) => panic!("expected a start error, got {other}"),
        Ok(_) => panic!("expected {config} to fail"),
    }
}

#[test]
fn failures_are_named() {
    let panic = start_error(r#"{"mode": "panic", "phase": "init"}"#);
    assert!(panic.contains("panics on purpose"), "{panic}");
    assert!(panic.contains("faulty"), "{panic}");
    let deadline = start_error(r#"{"mode": "loop", "phase": "init"}"#);
    assert!(deadline.contains("deadline"), "{deadline}");
    let memory = start_error(r#"{"mode": "alloc", "phase": "init"}"#);
    assert!(memory.contains("memory cap"), "{memory}");
}

#[test]
fn a_trap_in_the_response_phase_turns_into_a_500_for_outer_plugins_too() {
    let chain = shared().chain(&[
        ("recorder", r#"{"name": "outer"}"#, OnError::FailClosed),
        (
            "faulty",
            r#"{"mode": "panic", "phase": "response"}"#,
            OnError::FailClosed,
        ),
    ]);
    let mut cx = ctx();
    let RequestOutcome::Continue { ran } = chain.on_request(&mut request("GET", "/"), &mut cx)
    else {
        panic!("expected continue");
    };
    let mut resp = response(200);
    match chain.on_response(ran, &mut resp, &mut cx) {
        ResponseOutcome::Replace(body) => assert_eq!(&body[..], b"plugin failed\n"),
        other => panic!("expected a replaced response, got {other:?}"),
    }
    assert_eq!(resp.status, 500);
    assert_eq!(
        header(&resp.headers, "x-phases"),
        Some("req:outer,resp:outer")
    );
}

#[test]
fn a_trap_in_a_body_rewrite_fails_per_policy() {
    let config = r#"{"mode": "panic", "phase": "body"}"#;
    for (on_error, status, body) in [
        (OnError::FailClosed, 500, &b"plugin failed\n"[..]),
        (OnError::FailOpen, 200, &b"hello"[..]),
    ] {
        let chain = shared().chain(&[("faulty", config, on_error)]);
        let mut cx = ctx();
        let mut resp = response(200);
        let ResponseOutcome::RewriteBody(plan) = chain.on_response(1, &mut resp, &mut cx) else {
            panic!("expected a rewrite");
        };
        let out = chain.rewrite_body(&plan, &mut resp, Bytes::from_static(b"hello"), &mut cx);
        assert_eq!(resp.status, status);
        assert_eq!(&out[..], body);
    }
}

#[test]
fn a_trapped_instance_is_never_reused() {
    let plugin: std::sync::Arc<ConfiguredPlugin> = shared().configure(
        "faulty",
        r#"{"mode": "panic", "when_header": "x-boom"}"#,
        OnError::FailClosed,
    );
    let chain = wasmgate_plugin::Chain::new(vec![plugin.clone()]);
    let mut cx = ctx();
    assert_eq!(plugin.stats().started, 1);
    assert_eq!(plugin.stats().warm, 1);
    chain.on_request(&mut boom(), &mut cx);
    assert_eq!(plugin.stats().warm, 0, "the trapped instance was dropped");
    chain.on_request(&mut request("GET", "/"), &mut cx);
    assert_eq!(plugin.stats().started, 2);
    assert_eq!(plugin.stats().warm, 1);
}
