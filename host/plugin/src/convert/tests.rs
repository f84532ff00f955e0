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
    lines
        .iter()
        .flat_map(|l| l.iter().copied().chain([b'\n']))
        .collect()
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
    let values: Vec<_> = p
        .headers
        .get_all("x-new")
        .iter()
        .map(|v| v.as_bytes())
        .collect();
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

/// The `n`th little-endian u32 of a packed head's length table.
fn length_at(head: &[u8], n: usize) -> u32 {
    let bytes: [u8; 4] = head[n * 4..n * 4 + 4].try_into().unwrap_or_default();
    u32::from_le_bytes(bytes)
}

#[test]
fn a_request_head_is_a_length_table_then_its_fields() {
    let mut buf = b"old bytes".to_vec();
    request_head(&mut buf, &parts(), b"route:r\n");
    let lengths: Vec<u32> = (0..5).map(|n| length_at(&buf, n)).collect();
    let headers = "content-length:3\nx-old:1\n";
    assert_eq!(lengths, [4, 4, 3, 8, headers.len() as u32]);
    assert_eq!(
        &buf[20..],
        [&b"POST/a/bx=1route:r\n"[..], headers.as_bytes()].concat()
    );

    let (no_query, ()) = http::Request::get("/")
        .body(())
        .map(http::Request::into_parts)
        .unwrap_or_else(|e| panic!("{e}"));
    request_head(&mut buf, &no_query, b"");
    assert_eq!(
        length_at(&buf, 2),
        u32::MAX,
        "no query is not an empty query"
    );
    assert_eq!(&buf[20..], b"GET/");
}

#[test]
fn a_response_head_carries_context_then_headers() {
    let (mut parts, ()) = http::Response::new(()).into_parts();
    parts.headers.insert("x-a", HeaderValue::from_static("1"));
    let mut buf = Vec::new();
    response_head(&mut buf, &parts, b"route:r\n");
    assert_eq!((length_at(&buf, 0), length_at(&buf, 1)), (8, 6));
    assert_eq!(&buf[8..], b"route:r\nx-a:1\n");
}

#[test]
fn client_ips_are_written_as_display_writes_them() {
    for ip in [
        "0.0.0.0",
        "10.0.100.255",
        "192.168.1.9",
        "::1",
        "2001:db8::7",
    ] {
        let parsed: IpAddr = ip.parse().unwrap_or_else(|e| panic!("{ip}: {e}"));
        let mut out = Vec::new();
        push_ip(&mut out, parsed);
        assert_eq!(out, ip.as_bytes());
    }
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
        (
            [b"=x:".as_slice(), &[b'a'; 300], b"\n"].concat(),
            "larger than 256",
        ),
        (edits(&[b"=:method:G E T"]), "method"),
        // One bad line refuses the good ones before it.
        (
            edits(&[b"=:path:/ok", b"+x-ok:1", b"=bad name:v"]),
            "not a valid token",
        ),
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
    let parsed = parse_edits(
        &edits(&[b"=:status:404", b"=x-a:1", b"-content-length"]),
        Pseudo::Response,
        LIMITS,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    apply_response_edits(&mut p, parsed);
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(p.headers.get("x-a").map(|v| v.as_bytes()), Some(&b"1"[..]));
    assert!(
        p.headers.get("content-length").is_some(),
        "framing stays the host's"
    );
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

#[test]
fn header_names_sent_again_are_the_same_names() {
    for _ in 0..3 {
        for n in 0..40 {
            let name = format!("x-custom-{n}");
            let parsed = header_name(name.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(parsed.as_str(), name);
        }
        let upper = header_name(b"X-Mixed").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(upper.as_str(), "x-mixed");
        assert!(header_name(b"bad name").is_err());
        assert!(header_name(b"").is_err());
    }
}

#[test]
fn edits_are_counted_line_by_line_up_to_the_cap() {
    let limits = Limits { max_body: 0, max_head: 1 << 20 };
    let lines = |n: usize| b"-x-a\n".repeat(n);
    let parsed = parse_edits(&lines(MAX_HEADER_LINES), Pseudo::Request, limits).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(parsed.len(), MAX_HEADER_LINES);
    let err = parse_edits(&lines(MAX_HEADER_LINES + 1), Pseudo::Request, limits).err().unwrap_or_default();
    assert!(err.contains("more than 1000 lines of edits"), "{err}");
    // Framing lines count too, though they are dropped.
    let mut framing = b"-content-length\n".repeat(MAX_HEADER_LINES);
    framing.extend_from_slice(b"-x-a\n");
    assert!(parse_edits(&framing, Pseudo::Request, limits).is_err());
    assert_eq!(parse_edits(b"", Pseudo::Request, limits).map(|p| p.len()), Ok(0));
    assert_eq!(parse_edits(b"\n", Pseudo::Request, limits).err().as_deref(), Some("empty edit line"));
}
