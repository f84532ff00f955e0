use std::time::Duration;

use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::RequestId;

#[test]
fn sets_an_id_when_absent_echoes_it_and_traces() {
    let h = Harness::<RequestId>::new("{}").unwrap_or_else(|e| panic!("{e}"));
    let mut req = Request::new("GET", "/a");
    h.on_request(&mut req);
    let id = req
        .header("x-request-id")
        .map(str::to_owned)
        .unwrap_or_default();
    assert_eq!(id.len(), 32, "{id}");
    h.host().advance(Duration::from_millis(5));
    let mut head = ResponseHead::new(204);
    h.on_response(&mut head);
    assert_eq!(head.header("x-request-id"), Some(id.as_str()));
    let logs = h.host().logs();
    assert!(
        logs[0].1.starts_with(&format!(
            "trace-in id={id} route=test-route client=127.0.0.1 GET /a"
        )),
        "{logs:?}"
    );
    assert_eq!(
        logs[1].1,
        format!("trace-out id={id} status=204 took=5.000ms")
    );

    h.host().next_request();
    let mut other = Request::new("GET", "/a");
    h.on_request(&mut other);
    assert_ne!(
        other.header("x-request-id"),
        Some(id.as_str()),
        "ids are unique"
    );
}

#[test]
fn keeps_a_sane_incoming_id_and_replaces_junk() {
    let h = Harness::<RequestId>::new(r#"{"trace": false}"#).unwrap_or_else(|e| panic!("{e}"));
    let mut req = Request::new("GET", "/").with_header("x-request-id", "abc-123");
    h.on_request(&mut req);
    assert_eq!(req.header("x-request-id"), Some("abc-123"));
    assert!(!req.is_modified());
    let mut junk = Request::new("GET", "/").with_header("x-request-id", "has space");
    h.on_request(&mut junk);
    assert_eq!(junk.header("x-request-id").map(str::len), Some(32));
    assert!(h.host().logs().is_empty());
}

#[test]
fn bad_configs_name_the_key() {
    let err = Harness::<RequestId>::new(r#"{"headr": "x"}"#)
        .err()
        .unwrap_or_default();
    assert!(err.contains("headr"), "{err}");
    let err = Harness::<RequestId>::new(r#"{"header": "x y"}"#)
        .err()
        .unwrap_or_default();
    assert!(err.contains("`header`"), "{err}");
    let err = Harness::<RequestId>::new(r#"{"header": "Content-Length"}"#)
        .err()
        .unwrap_or_default();
    assert!(err.contains("managed by the gateway"), "{err}");
}
