use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::HeadersPlugin;

#[test]
fn request_and_response_changes_with_variables() {
    let h = Harness::<HeadersPlugin>::new(
        r#"{
        "request": {
            "set": {"X-Client": "${client_ip}", "x-route": "route=${route}", "x-price": "$$5"},
            "add": {"x-multi": "two"},
            "remove": ["x-secret"],
            "rename": {"x-old": "x-new"}
        },
        "response": {"set": {"x-req": "${request_id}", "x-who": "${consumer}"}, "remove": ["server"]}
    }"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    h.host().set_client_ip(Some("10.1.2.3"));
    let mut req = Request::new("GET", "/")
        .with_header("x-secret", "s")
        .with_header("x-old", "v")
        .with_header("x-multi", "one")
        .with_header("x-request-id", "rid-1");
    assert_eq!(h.on_request(&mut req), RequestFlow::Continue);
    assert_eq!(req.header("x-client"), Some("10.1.2.3"));
    assert_eq!(req.header("x-route"), Some("route=test-route"));
    assert_eq!(req.header("x-price"), Some("$5"));
    assert_eq!(req.headers().get_all("x-multi").count(), 2);
    assert_eq!(req.header("x-secret"), None);
    assert_eq!(req.header("x-old"), None);
    assert_eq!(req.header("x-new"), Some("v"));

    h.host().set_scratch("request_id", "rid-2");
    h.host().set_scratch("consumer", "alice");
    let mut head = ResponseHead::new(200).with_header("server", "x");
    h.on_response(&mut head);
    assert_eq!(head.header("x-req"), Some("rid-2"));
    assert_eq!(head.header("x-who"), Some("alice"));
    assert_eq!(head.header("server"), None);
}

#[test]
fn bad_configs_name_the_key() {
    for (config, key) in [
        (r#"{"request": {"set": {"x-a": "${nope}"}}}"#, "request.set.x-a"),
        (
            r#"{"request": {"set": {"bad name": "1"}}}"#,
            "request.set.bad name",
        ),
        (
            r#"{"response": {"remove": ["content-length"]}}"#,
            "response.remove[0]",
        ),
        (r#"{"response": {"sett": {}}}"#, "response.sett"),
        (
            r#"{"request": {"add": {"x-a": "${client_ip"}}}"#,
            "request.add.x-a",
        ),
        (r#"{"request": {"set": {"x-a": "a\nb${route}"}}}"#, "request.set.x-a"),
        (r#"{"response": {"set": {"x-a": "a\u0001b"}}}"#, "response.set.x-a"),
    ] {
        let err = Harness::<HeadersPlugin>::new(config)
            .err()
            .unwrap_or_default();
        assert!(err.contains(key), "{config}: {err}");
    }
}

#[test]
fn the_response_gets_the_clients_request_id_without_the_request_id_plugin() {
    let h = Harness::<HeadersPlugin>::new(r#"{"response": {"set": {"x-request-id": "${request_id}"}}}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut req = Request::new("GET", "/").with_header("x-request-id", "client-rid-1");
    assert_eq!(h.on_request(&mut req), RequestFlow::Continue);
    let mut head = ResponseHead::new(200);
    h.on_response(&mut head);
    assert_eq!(head.header("x-request-id"), Some("client-rid-1"));
}
