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

fn head(path: &str, headers: Vec<Vec<u8>>) -> RequestHead {
    RequestHead {
        method: "GET".into(),
        path: path.into(),
        query: Some("y=2".into()),
        headers: headers.concat(),
    }
}

#[test]
fn request_head_applies_and_keeps_framing_and_authority() {
    let mut p = parts();
    let new = head(
        "/c",
        vec![header("X-New", b"v"), header("content-length", b"99")],
    );
    apply_request_head(&mut p, new, LIMITS).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(p.method, Method::GET);
    assert_eq!(p.uri.to_string(), "http://example.com/c?y=2");
    assert_eq!(
        p.headers.get("x-new").map(|v| v.as_bytes()),
        Some(&b"v"[..])
    );
    assert_eq!(
        p.headers.get("content-length").map(|v| v.as_bytes()),
        Some(&b"3"[..])
    );
    assert!(p.headers.get("x-old").is_none());
}

#[test]
fn bad_outputs_are_refused_and_change_nothing() {
    let cases: Vec<(RequestHead, &str)> = vec![
        (head("no-slash", vec![]), "does not start with `/`"),
        (head("/a b", vec![]), "contains a space"),
        (head("/a\0", vec![]), "control character"),
        (
            head("/", vec![header("bad name", b"v")]),
            "not a valid token",
        ),
        (head("/", vec![header("x", b"a\r\nb")]), "control character"),
        (head("/", vec![header("x", b"a\0b")]), "control character"),
        (head("/", vec![b"no-colon\n".to_vec()]), "has no `:`"),
        (head("/", vec![b"x:1".to_vec()]), "does not end with a newline"),
        (head("/", vec![b"x:1\n\n".to_vec()]), "has no `:`"),
        (
            head("/", vec![header("x", &[b'a'; 300])]),
            "larger than 256",
        ),
        (
            RequestHead {
                method: "G E T".into(),
                ..head("/", vec![])
            },
            "method",
        ),
    ];
    for (bad, expected) in cases {
        let mut p = parts();
        let before = p.uri.clone();
        let err = apply_request_head(&mut p, bad, LIMITS)
            .err()
            .unwrap_or_default();
        assert!(
            err.contains(expected),
            "{err:?} should mention {expected:?}"
        );
        assert_eq!(p.uri, before);
        assert_eq!(p.method, Method::POST);
    }
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
