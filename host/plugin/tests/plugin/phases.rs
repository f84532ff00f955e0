//! Phase order, modification, answering and body rewriting.

use bytes::Bytes;
use wasmgate_plugin::{OnError, RequestOutcome, ResponseOutcome};

use super::support::{ctx, header, request, response, shared};

const CLOSED: OnError = OnError::FailClosed;

#[test]
fn header_adder_changes_what_upstream_and_client_see() {
    let chain = shared().chain(&[(
        "header-adder",
        r#"{"request": {"x-added": "1"}, "response": {"x-back": "2"}}"#,
        CLOSED,
    )]);
    let mut req = request("GET", "/a?b=c");
    let mut cx = ctx();
    let ran = match chain.on_request(&mut req, &mut cx) {
        RequestOutcome::Continue { ran } => ran,
        other => panic!("expected continue, got {other:?}"),
    };
    assert_eq!(ran, 1);
    assert_eq!(header(&req.headers, "x-added"), Some("1"));
    assert_eq!(header(&req.headers, "user-agent"), Some("test"));
    assert_eq!(req.uri, "/a?b=c");

    let mut resp = response(200);
    assert!(matches!(
        chain.on_response(ran, &mut resp, &mut cx),
        ResponseOutcome::Continue
    ));
    assert_eq!(header(&resp.headers, "x-back"), Some("2"));
    assert_eq!(header(&resp.headers, "content-length"), Some("5"));
}

#[test]
fn request_phase_in_order_response_phase_in_reverse() {
    let chain = shared().chain(&[
        ("recorder", r#"{"name": "a"}"#, CLOSED),
        ("recorder", r#"{"name": "b"}"#, CLOSED),
        ("recorder", r#"{"name": "c"}"#, CLOSED),
    ]);
    let mut req = request("GET", "/");
    let mut cx = ctx();
    let RequestOutcome::Continue { ran } = chain.on_request(&mut req, &mut cx) else {
        panic!("expected continue");
    };
    assert_eq!(header(&req.headers, "x-phases"), Some("req:a,req:b,req:c"));
    let mut resp = response(200);
    chain.on_response(ran, &mut resp, &mut cx);
    assert_eq!(
        header(&resp.headers, "x-phases"),
        Some("req:a,req:b,req:c,resp:c,resp:b,resp:a")
    );
    assert_eq!(
        cx.scratch.get("phases"),
        Some("req:a,req:b,req:c,resp:c,resp:b,resp:a")
    );
}

#[test]
fn an_answering_plugin_stops_the_chain_and_earlier_plugins_see_its_answer() {
    let chain = shared().chain(&[
        ("recorder", r#"{"name": "a"}"#, CLOSED),
        (
            "responder",
            r#"{"status": 403, "body": "no entry", "headers": {"x-why": "test"}}"#,
            CLOSED,
        ),
        ("recorder", r#"{"name": "c"}"#, CLOSED),
    ]);
    let mut req = request("GET", "/");
    let mut cx = ctx();
    let (ran, answer) = match chain.on_request(&mut req, &mut cx) {
        RequestOutcome::Respond { ran, response } => (ran, response),
        other => panic!("expected an answer, got {other:?}"),
    };
    assert_eq!(ran, 1);
    assert_eq!(answer.status(), 403);
    assert_eq!(answer.body(), &Bytes::from_static(b"no entry"));
    assert_eq!(header(answer.headers(), "content-length"), Some("8"));
    assert_eq!(header(answer.headers(), "x-why"), Some("test"));
    assert_eq!(cx.scratch.get("phases"), Some("req:a"));

    let (mut parts, _body) = answer.into_parts();
    chain.on_response(ran, &mut parts, &mut cx);
    assert_eq!(header(&parts.headers, "x-phases"), Some("req:a,resp:a"));
}

#[test]
fn body_rewrite_runs_after_the_response_phase_and_fixes_length() {
    let chain = shared().chain(&[("body-rewriter", "{}", CLOSED)]);
    let mut cx = ctx();
    let mut resp = response(200);
    resp.headers.insert(
        "transfer-encoding",
        http::HeaderValue::from_static("chunked"),
    );
    let plan = match chain.on_response(1, &mut resp, &mut cx) {
        ResponseOutcome::RewriteBody(plan) => plan,
        other => panic!("expected a rewrite, got {other:?}"),
    };
    assert_eq!(header(&resp.headers, "x-rewritten"), Some("yes"));
    let body = chain.rewrite_body(
        &plan,
        &mut resp,
        Bytes::from_static(b"hello world"),
        &mut cx,
    );
    assert_eq!(&body[..], b"HELLO WORLD");
    assert_eq!(header(&resp.headers, "content-length"), Some("11"));
    assert!(resp.headers.get("transfer-encoding").is_none());
}

#[test]
fn a_body_over_the_cap_fails_closed_rewriters() {
    let chain = shared().chain(&[("body-rewriter", "{}", CLOSED)]);
    let mut cx = ctx();
    let mut resp = response(200);
    let ResponseOutcome::RewriteBody(plan) = chain.on_response(1, &mut resp, &mut cx) else {
        panic!("expected a rewrite");
    };
    let body = chain.body_over_limit(&plan, &mut resp, &mut cx);
    assert_eq!(resp.status, 500);
    assert!(body.is_some());
}

#[test]
fn the_template_plugin_works() {
    let chain = shared().chain(&[("hello-plugin", r#"{"greeting": "hi"}"#, CLOSED)]);
    let mut cx = ctx();
    match chain.on_request(&mut request("GET", "/hello"), &mut cx) {
        RequestOutcome::Respond { response, .. } => {
            assert_eq!(response.status(), 200);
            assert_eq!(&response.body()[..], b"hi");
        }
        other => panic!("expected an answer, got {other:?}"),
    }
    let mut req = request("GET", "/api");
    assert!(matches!(
        chain.on_request(&mut req, &mut cx),
        RequestOutcome::Continue { ran: 1 }
    ));
    assert_eq!(header(&req.headers, "x-greeting"), Some("hi"));
}
