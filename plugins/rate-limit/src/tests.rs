use std::time::Duration;

use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::RateLimit;

fn refused(flow: RequestFlow) -> Option<Response> {
    match flow {
        RequestFlow::Continue => None,
        RequestFlow::Respond(r) => Some(r),
    }
}

fn plugin(config: &str) -> Harness<RateLimit> {
    Harness::new(config).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn admits_burst_then_refuses_with_429_and_headers() {
    let h = plugin(r#"{"rate": 100, "burst": 10}"#);
    for _ in 0..10 {
        assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
    }
    let r = refused(h.on_request(&mut Request::new("GET", "/"))).expect("refused");
    assert_eq!(r.status(), 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.header("x-ratelimit-limit"), Some("10"));
    assert_eq!(r.header("x-ratelimit-remaining"), Some("0"));
    assert_eq!(r.header("x-ratelimit-reset"), Some("1"));
}

#[test]
fn refills_at_the_rate_over_simulated_time() {
    let h = plugin(r#"{"rate": 100, "burst": 10}"#);
    let mut admitted = 0;
    // 2,000 requests spread over 3 s of fake time.
    for _ in 0..2000 {
        if refused(h.on_request(&mut Request::new("GET", "/"))).is_none() {
            admitted += 1;
        }
        h.host().advance(Duration::from_micros(1500));
    }
    assert!((295..=315).contains(&admitted), "{admitted}");
}

#[test]
fn keys_are_independent() {
    let h = plugin(r#"{"rate": 1, "burst": 1, "key": "header", "header": "X-Api-Key"}"#);
    let req = |k: &str| Request::new("GET", "/").with_header("x-api-key", k);
    assert!(refused(h.on_request(&mut req("a"))).is_none());
    assert!(refused(h.on_request(&mut req("a"))).is_some());
    assert!(refused(h.on_request(&mut req("b"))).is_none());
}

#[test]
fn consumer_key_and_overrides() {
    let h = plugin(
        r#"{"rate": 1, "burst": 1, "key": "consumer", "overrides": {"gold": {"rate": 5, "burst": 3}}}"#,
    );
    h.host().set_scratch("consumer", "gold");
    for _ in 0..3 {
        assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
    }
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_some());
    h.host().set_scratch("consumer", "plain");
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_some());
}

#[test]
fn admitted_responses_carry_the_rate_headers() {
    let h = plugin(r#"{"rate": 10, "per": "minute", "burst": 5}"#);
    let exchange = h.run(Request::new("GET", "/"), Response::text(200, "ok"));
    assert!(!exchange.answered());
    let head = exchange.response();
    assert_eq!(head.status(), 200);
    assert_eq!(head.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(head.header("x-ratelimit-remaining"), Some("4"));
    assert_eq!(head.header("x-ratelimit-reset"), Some("6"));
}

#[test]
fn bad_configs_name_the_key() {
    for (config, key) in [
        (r#"{"rate": 1, "bursts": 2}"#, "bursts"),
        (r#"{"rate": 0}"#, "`rate`"),
        (r#"{"rate": 1, "key": "header"}"#, "`header`"),
        (r#"{"rate": 1, "key": "cookie"}"#, "`key`"),
        (r#"{"rate": 1, "per": "week"}"#, "`per`"),
        (
            r#"{"rate": 1, "overrides": {"a": {"rate": -1}}}"#,
            "overrides.a.rate",
        ),
    ] {
        let err = Harness::<RateLimit>::new(config).err().unwrap_or_default();
        assert!(err.contains(key), "{config}: {err}");
    }
}

#[test]
fn an_issuer_left_by_jwt_auth_names_an_app_with_its_own_limit() {
    let h = plugin(
        r#"{"rate": 100, "burst": 100, "key": "scratch", "scratch": "jwt.iss", "overrides": {"app-small": {"rate": 1, "burst": 1}}}"#,
    );
    h.host().set_scratch("jwt.iss", "app-small");
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_some());
    h.host().set_scratch("jwt.iss", "app-big");
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
}

#[test]
fn decimal_digits() {
    for n in [0, 7, 10, 4_294_967_295, u64::MAX] {
        assert_eq!(crate::decimal(n).as_ref(), n.to_string().as_bytes());
    }
}

#[test]
fn overrides_apply_to_the_client_ip_key() {
    let h = plugin(r#"{"rate": 100, "burst": 10, "overrides": {"10.0.0.9": {"rate": 1, "per": "minute", "burst": 1}}}"#);
    h.host().set_client_ip(Some("10.0.0.9"));
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
    let r = refused(h.on_request(&mut Request::new("GET", "/"))).expect("the override's burst of 1 is used up");
    assert_eq!(r.header("x-ratelimit-limit"), Some("1"));
    h.host().set_client_ip(Some("10.0.0.10"));
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none(), "other clients keep the main limit");
}

#[test]
fn a_daily_quota_is_spent_then_refused_until_midnight_utc() {
    let h = plugin(r#"{"rate": 3, "per": "day", "key": "consumer"}"#);
    h.host().set_scratch("consumer", "app-x");
    // 2026-12-05 23:00:00 UTC.
    let day = 20_427u64 * 86_400;
    h.host().set_wall_clock(Duration::from_secs(day + 23 * 3600));
    for _ in 0..3 {
        assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
    }
    let r = refused(h.on_request(&mut Request::new("GET", "/"))).expect("quota spent");
    assert_eq!(r.status(), 429);
    assert_eq!(r.header("retry-after"), Some("3600"), "until midnight UTC");
    assert_eq!(r.header("x-ratelimit-limit"), Some("3"));
    // Hours later the same day: still spent (a quota does not refill).
    h.host().advance(Duration::from_secs(1800));
    h.host().set_wall_clock(Duration::from_secs(day + 23 * 3600 + 1800));
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_some());
    // The next day: a new quota.
    h.host().set_wall_clock(Duration::from_secs(day + 86_400 + 5));
    assert!(refused(h.on_request(&mut Request::new("GET", "/"))).is_none());
}

#[test]
fn a_daily_quota_takes_no_burst_and_whole_numbers_only() {
    for bad in [r#"{"rate": 3, "per": "day", "burst": 3}"#, r#"{"rate": 2.5, "per": "day"}"#] {
        let Err(e) = Harness::<RateLimit>::new(bad) else { panic!("{bad} accepted") };
        assert!(e.contains("per = \"day\""), "{e}");
    }
}
