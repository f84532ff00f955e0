use std::io::{Read, Write};

use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::ResponseRewrite;

fn harness(config: &str) -> Harness<ResponseRewrite> {
    Harness::new(config).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn status_headers_and_a_json_envelope() {
    let h = harness(
        r#"{"status": 203, "headers": {"set": {"x-a": "1"}, "add": {"x-b": "2"}, "remove": ["server"]},
            "body": {"regex": [{"match": "secret-[0-9]+", "replace": "***"}], "template": "{\"data\": ${body}}",
                     "content_types": ["application/json"]}}"#,
    );
    let mut head = ResponseHead::new(200)
        .with_header("server", "s")
        .with_header("content-type", "application/json")
        .with_header("content-length", "30");
    assert_eq!(h.on_response(&mut head), ResponseFlow::RewriteBody);
    assert_eq!(head.status(), 203);
    assert_eq!(head.header("x-a"), Some("1"));
    assert_eq!(head.header("x-b"), Some("2"));
    assert_eq!(head.header("server"), None);
    let body = h.on_response_body(br#"{"k": "secret-42", "j": "secret-7"}"#.to_vec());
    assert_eq!(
        String::from_utf8_lossy(&body),
        r#"{"data": {"k": "***", "j": "***"}}"#
    );

    let mut html = ResponseHead::new(200)
        .with_header("content-type", "text/html")
        .with_header("content-length", "3");
    assert_eq!(h.on_response(&mut html), ResponseFlow::Continue);
}

#[test]
fn gzip_bodies_are_decoded_and_encoded_again() {
    let h = harness(r#"{"body": {"template": "prefix:${body}"}}"#);
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder
        .write_all(b"hello")
        .unwrap_or_else(|e| panic!("{e}"));
    let gz = encoder.finish().unwrap_or_else(|e| panic!("{e}"));
    let mut head = ResponseHead::new(200)
        .with_header("content-encoding", "gzip")
        .with_header("content-length", &gz.len().to_string());
    assert_eq!(h.on_response(&mut head), ResponseFlow::RewriteBody);
    let out = h.on_response_body(gz);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&out[..])
        .read_to_string(&mut text)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(text, "prefix:hello");
}

#[test]
fn streams_are_left_alone_unless_configured() {
    let h = harness(r#"{"body": {"template": "x${body}"}}"#);
    let mut sse = ResponseHead::new(200).with_header("content-type", "text/event-stream");
    assert_eq!(h.on_response(&mut sse), ResponseFlow::Continue);
    let mut chunked = ResponseHead::new(200).with_header("content-type", "text/plain");
    assert_eq!(h.on_response(&mut chunked), ResponseFlow::Continue);
    let h = harness(r#"{"body": {"template": "x${body}"}, "rewrite_streaming": true}"#);
    let mut chunked = ResponseHead::new(200).with_header("content-type", "text/plain");
    assert_eq!(h.on_response(&mut chunked), ResponseFlow::RewriteBody);
}

#[test]
fn past_the_cap_fails_clearly_or_passes() {
    let h = harness(r#"{"body": {"template": "x${body}"}, "max_body_bytes": 10}"#);
    let mut big = ResponseHead::new(200).with_header("content-length", "11");
    match h.on_response(&mut big) {
        ResponseFlow::Replace(r) => assert_eq!(r.status(), 502),
        other => panic!("{other:?}"),
    }
    let h =
        harness(r#"{"body": {"template": "x${body}"}, "max_body_bytes": 10, "too_large": "pass"}"#);
    let mut big = ResponseHead::new(200).with_header("content-length", "11");
    assert_eq!(h.on_response(&mut big), ResponseFlow::Continue);
}

#[test]
fn bad_configs_name_the_key() {
    for (config, key) in [
        (
            r#"{"body": {"regex": [{"match": "(", "replace": ""}]}}"#,
            "body.regex[0].match",
        ),
        (
            r#"{"body": {"template": "no placeholder"}}"#,
            "body.template",
        ),
        (r#"{"status": 99}"#, "status"),
        (
            r#"{"headers": {"set": {"content-length": "1"}}}"#,
            "headers.set.content-length",
        ),
        (r#"{"too_large": "explode"}"#, "too_large"),
        (r#"{"bdy": {}}"#, "bdy"),
    ] {
        let err = Harness::<ResponseRewrite>::new(config)
            .err()
            .unwrap_or_default();
        assert!(err.contains(key), "{config}: {err}");
    }
}

#[test]
fn every_body_placeholder_of_a_template_is_filled() {
    let h = harness(r#"{"body": {"template": "${body}|${body}"}}"#);
    let mut head = ResponseHead::new(200).with_header("content-length", "2");
    assert_eq!(h.on_response(&mut head), ResponseFlow::RewriteBody);
    assert_eq!(h.on_response_body(b"ab".to_vec()), b"ab|ab".to_vec());
}
