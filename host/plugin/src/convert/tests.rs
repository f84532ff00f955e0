use super::*;

const LIMITS: Limits = Limits {
    max_body: 16,
    max_head: 256,
};

/// One `header-block` line.
fn header(name: &str, value: &[u8]) -> Vec<u8> {
    [name.as_bytes(), b":", value, b"\n"].concat()
}

fn parts() -> request::Parts {
    let (parts, ()) = http::Request::builder()
        .method("POST")
        .uri("http://example.com/a/b?x=1")
        .header("content-length", "3")
        .header("x-old", "1")
        .body(())
        .map(http::Request::into_parts)
        .unwrap_or_else(|e| panic!("test request: {e}"));
    parts
}

fn edits(lines: &[&[u8]]) -> Vec<u8> {
    lines.iter().flat_map(|l| l.iter().copied().chain([b'\n'])).collect()
}

#[test]
fn request_edits_apply_in_order_and_keep_framing_and_authority() {
    let mut p = parts();
    let new = edits(&[
        b"=:method:GET",
        b"=:path:/c?y=2",
        b"+x-new:v",
        b"+x-new:w",
        b"=content-length:99",
        b"-x-old",
        b"-transfer-encoding",
    ]);
    apply_request_edits(&mut p, &new, LIMITS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.method, Method::GET);
    assert_eq!(p.uri.to_string(), "http://example.com/c?y=2");
    let values: Vec<_> = p.headers.get_all("x-new").iter().map(|v| v.as_bytes()).collect();
    assert_eq!(values, vec![&b"v"[..], &b"w"[..]]);
    assert_eq!(
        p.headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"3"[..])
    );
    assert!(p.headers.get("x-old").is_none());
}

#[test]
fn the_context_block_names_each_value() {
    let ctx = RequestContext {
        client_ip: "10.0.0.1".parse().ok(),
        upstream: Some("api".into()),
        ..RequestContext::new("r", "l")
    };
    assert_eq!(
        String::from_utf8_lossy(&context_lines(&ctx)),
        "client-ip:10.0.0.1\nroute:r\nlistener:l\nupstream:api\n"
    );
}

#[test]
fn bad_edits_are_refused_and_change_nothing() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (edits(&[b"=:path:no-slash"]), "does not start with `/`"),
        (edits(&[b"=:path:/a b"]), "contains a space"),
        (edits(&[b"=:path:/a\0"]), "control character"),
        (edits(&[b"=:status:404"]), "cannot be changed here"),
        (edits(&[b"+:path:/b"]), "can only be set"),
        (edits(&[b"=bad name:v"]), "not a valid token"),
        (edits(&[b"=x:a\rb"]), "control character"),
        (edits(&[b"+x:a\0b"]), "control character"),
        (edits(&[b"=no-colon"]), "has no `:`"),
        (edits(&[b"x:1"]), "not `=`, `+` or `-`"),
        (b"=x:1".to_vec(), "do not end with a newline"),
        (edits(&[b"=x:1", b""]), "empty edit line"),
        ([b"=x:".as_slice(), &[b'a'; 300], b"\n"].concat(), "larger than 256"),
        (edits(&[b"=:method:G E T"]), "method"),
        // One bad line refuses the good ones before it.
        (edits(&[b"=:path:/ok", b"+x-ok:1", b"=bad name:v"]), "not a valid token"),
    ];
    for (bad, expected) in cases {
        let mut p = parts();
        let before = format!("{p:?}");
        let err = apply_request_edits(&mut p, &bad, LIMITS)
            .err()
            .unwrap_or_default();
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
        assert_eq!(format!("{p:?}"), before);
    }
}

#[test]
fn response_edits_set_status_and_headers() {
    let (mut p, ()) = http::Response::builder()
        .status(200)
        .header("content-length", "2")
        .body(())
        .map(http::Response::into_parts)
        .unwrap_or_else(|e| panic!("test response: {e}"));
    let parsed = parse_edits(&edits(&[b"=:status:404", b"=x-a:1", b"-content-length"]), Pseudo::Response, LIMITS)
        .unwrap_or_else(|e| panic!("{e}"));
    apply_response_edits(&mut p, parsed);
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(p.headers.get("x-a").map(|v| v.as_bytes()), Some(&b"1"[..]));
    assert!(p.headers.get("content-length").is_some(), "framing stays the host's");
    assert!(parse_edits(&edits(&[b"=:status:99"]), Pseudo::Response, LIMITS).is_err());
    assert!(parse_edits(&edits(&[b"=:path:/"]), Pseudo::Response, LIMITS).is_err());
}

#[test]
fn statuses() {
    assert!(status(0, None).is_err());
    assert!(status(100, None).is_err());
    assert!(status(1000, None).is_err());
    assert!(status(600, None).is_err());
    assert_eq!(status(204, None), Ok(StatusCode::NO_CONTENT));
    // An unchanged interim status passes (a plugin that only edits headers).
    assert_eq!(
        status(101, Some(StatusCode::SWITCHING_PROTOCOLS)),
        Ok(StatusCode::SWITCHING_PROTOCOLS)
    );
}

#[test]
fn complete_response_sets_length_and_caps_body() {
    let ok = complete_response(
        Response {
            status: 403,
            headers: header("transfer-encoding", b"chunked"),
            body: b"no".to_vec(),
        },
        LIMITS,
    );
    let (status, headers, body) = ok.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"2"[..])
    );
    assert!(headers.get("transfer-encoding").is_none());
    assert_eq!(&body[..], b"no");
    let big = complete_response(
        Response {
            status: 200,
            headers: vec![],
            body: vec![0; 17],
        },
        LIMITS,
    );
    assert!(big.is_err());
}
