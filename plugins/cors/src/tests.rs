use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::Cors;

const CONFIG: &str = r#"{
    "allow_origins": ["https://app.example.com"],
    "allow_methods": ["GET", "PUT"],
    "allow_headers": ["Authorization", "X-Custom"],
    "expose_headers": ["X-Request-Id"],
    "allow_credentials": true,
    "max_age": 600
}"#;

fn preflight(origin: &str, method: &str, headers: &str) -> Request {
    Request::new("OPTIONS", "/x")
        .with_header("origin", origin)
        .with_header("access-control-request-method", method)
        .with_header("access-control-request-headers", headers)
}

#[test]
fn answers_preflight_itself() {
    let h = Harness::<Cors>::new(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let RequestFlow::Respond(r) = h.on_request(&mut preflight(
        "https://app.example.com",
        "PUT",
        "authorization",
    )) else {
        panic!("not answered");
    };
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(r.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(
        r.header("access-control-allow-headers"),
        Some("authorization, x-custom")
    );
    assert_eq!(r.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(r.header("access-control-max-age"), Some("600"));
    for bad in [
        preflight("https://evil.example", "PUT", ""),
        preflight("https://app.example.com", "DELETE", ""),
        preflight("https://app.example.com", "GET", "x-other"),
    ] {
        let mut bad = bad;
        let RequestFlow::Respond(r) = h.on_request(&mut bad) else {
            panic!("not answered")
        };
        assert_eq!(r.status(), 403);
        assert!(!r.headers().contains("access-control-allow-origin"));
    }
}

#[test]
fn adds_headers_for_allowed_origins_only() {
    let h = Harness::<Cors>::new(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let req = Request::new("GET", "/").with_header("origin", "https://app.example.com");
    let exchange = h.run(req, Response::new(200));
    assert!(!exchange.answered());
    let head = exchange.response();
    assert_eq!(
        head.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(
        head.header("access-control-expose-headers"),
        Some("X-Request-Id")
    );
    assert_eq!(head.header("vary"), Some("Origin"));

    h.host().next_request();
    let req = Request::new("GET", "/").with_header("origin", "https://evil.example");
    let head = h.run(req, Response::new(200)).into_response();
    assert!(!head.headers().contains("access-control-allow-origin"));
}

#[test]
fn wildcard_without_credentials_is_a_star() {
    let h = Harness::<Cors>::new(r#"{"allow_origins": ["*"]}"#).unwrap_or_else(|e| panic!("{e}"));
    let req = Request::new("GET", "/").with_header("origin", "https://any.example");
    let head = h.run(req, Response::new(200)).into_response();
    assert_eq!(head.header("access-control-allow-origin"), Some("*"));
}

#[test]
fn bad_configs_name_the_key() {
    for (config, key) in [
        (
            r#"{"allow_origins": ["app.example.com"]}"#,
            "allow_origins[0]",
        ),
        (r#"{"allow_origins": []}"#, "allow_origins"),
        (r#"{"allow_origins": ["https://a.com/path"]}"#, "allow_origins[0]"),
        (
            r#"{"allow_origins": ["*"], "allow_methods": ["G T"]}"#,
            "allow_methods[0]",
        ),
        (r#"{"allow_origins": ["*"], "max_age": "x"}"#, "max_age"),
        (r#"{"allow_origin": ["*"]}"#, "allow_origin"),
    ] {
        let err = Harness::<Cors>::new(config).err().unwrap_or_default();
        assert!(err.contains(key), "{config}: {err}");
    }
}

#[test]
fn origins_match_without_regard_to_case() {
    let h = Harness::<Cors>::new(r#"{"allow_origins": ["https://App.Example.com"]}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let flow = h.on_request(&mut preflight("https://app.example.com", "GET", ""));
    let RequestFlow::Respond(r) = flow else { panic!("not answered") };
    assert_eq!(r.status(), 204);
}
