//! Whatever a plugin returns is checked; a violation is that plugin's error.

use bytes::Bytes;
use wasmgate_plugin::{OnError, RequestOutcome, ResponseOutcome};

use super::support::{ctx, header, request, response, shared};

#[test]
fn invalid_request_output_fails_per_policy_and_changes_nothing() {
    let modes = [
        "bad-header-name",
        "crlf-value",
        "nul-value",
        "status-0",
        "status-1000",
        "status-100",
        "path-no-slash",
        "path-space",
        "bad-method",
        "huge-body",
    ];
    for mode in modes {
        let config = format!(r#"{{"mode": "{mode}"}}"#);
        let closed = shared().chain(&[("misbehaver", &config, OnError::FailClosed)]);
        let mut cx = ctx();
        match closed.on_request(&mut request("GET", "/x"), &mut cx) {
            RequestOutcome::Respond { response, .. } => {
                assert_eq!(response.status(), 500, "{mode}");
            }
            other => panic!("{mode}: expected a 500, got {other:?}"),
        }

        let open = shared().chain(&[("misbehaver", &config, OnError::FailOpen)]);
        let mut req = request("GET", "/x");
        let before = req.headers.clone();
        assert!(
            matches!(
                open.on_request(&mut req, &mut cx),
                RequestOutcome::Continue { ran: 1 }
            ),
            "{mode}"
        );
        assert_eq!(req.uri, "/x", "{mode}");
        assert_eq!(req.method, http::Method::GET, "{mode}");
        assert_eq!(req.headers, before, "{mode}");
        // Skipped for the request means its response phase too.
        let mut resp = response(200);
        open.on_response(1, &mut resp, &mut cx);
        assert!(!resp.headers.contains_key("x-misbehaver-response"), "{mode}");
        let mut fresh = ctx();
        let mut resp = response(200);
        open.on_response(1, &mut resp, &mut fresh);
        assert!(resp.headers.contains_key("x-misbehaver-response"), "{mode}: the check above proves nothing");
    }
}

#[test]
fn invalid_response_output_fails_per_policy() {
    for mode in ["response-bad-header", "response-status-1000"] {
        let config = format!(r#"{{"mode": "{mode}"}}"#);
        let closed = shared().chain(&[("misbehaver", &config, OnError::FailClosed)]);
        let mut cx = ctx();
        let mut resp = response(200);
        assert!(
            matches!(
                closed.on_response(1, &mut resp, &mut cx),
                ResponseOutcome::Replace(_)
            ),
            "{mode}"
        );
        assert_eq!(resp.status, 500, "{mode}");

        let open = shared().chain(&[("misbehaver", &config, OnError::FailOpen)]);
        let mut resp = response(200);
        assert!(
            matches!(
                open.on_response(1, &mut resp, &mut cx),
                ResponseOutcome::Continue
            ),
            "{mode}"
        );
        assert_eq!(resp.status, 200, "{mode}");
        assert_eq!(header(&resp.headers, "content-length"), Some("5"), "{mode}");
    }
}

#[test]
fn a_rewritten_body_over_the_cap_is_refused() {
    let chain = shared().chain(&[(
        "misbehaver",
        r#"{"mode": "body-too-big"}"#,
        OnError::FailOpen,
    )]);
    let mut cx = ctx();
    let mut resp = response(200);
    let ResponseOutcome::RewriteBody(plan) = chain.on_response(1, &mut resp, &mut cx) else {
        panic!("expected a rewrite");
    };
    let body = chain.rewrite_body(&plan, &mut resp, Bytes::from_static(b"small"), &mut cx);
    assert_eq!(&body[..], b"small");
}
