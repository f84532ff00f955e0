use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::IpAcl;

fn allowed(h: &Harness<IpAcl>, ip: &str, xff: Option<&str>) -> bool {
    h.host().set_client_ip(Some(ip));
    let mut req = Request::new("GET", "/");
    if let Some(xff) = xff {
        req = req.with_header("x-forwarded-for", xff);
    }
    match h.on_request(&mut req) {
        RequestFlow::Continue => true,
        RequestFlow::Respond(r) => {
            assert_eq!(r.status(), 403);
            false
        }
    }
}

#[test]
fn allow_and_deny_lists_v4_and_v6() {
    let h = Harness::<IpAcl>::new(
        r#"{"allow": ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"], "deny": ["10.9.0.0/16", "2001:db8::bad"]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(allowed(&h, "10.1.2.3", None));
    assert!(!allowed(&h, "10.9.2.3", None));
    assert!(!allowed(&h, "192.168.0.1", None));
    assert!(allowed(&h, "2001:db8::1", None));
    assert!(!allowed(&h, "2001:db8::bad", None));
    assert!(allowed(&h, "::ffff:10.0.0.1", None));
    assert!(allowed(&h, "127.0.0.1", None));
}

#[test]
fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let h =
        Harness::<IpAcl>::new(r#"{"deny": ["203.0.113.7"], "trusted_proxies": ["10.0.0.0/8"]}"#)
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(!allowed(&h, "10.0.0.1", Some("203.0.113.7")));
    assert!(!allowed(&h, "10.0.0.1", Some("203.0.113.7, 10.0.0.5")));
    // A client that spoofs the header ahead of its real address gains nothing.
    assert!(!allowed(&h, "10.0.0.1", Some("1.1.1.1, 203.0.113.7")));
    assert!(allowed(&h, "10.0.0.1", Some("203.0.113.7, 1.1.1.1")));
    // From an untrusted peer the header is ignored.
    assert!(allowed(&h, "198.51.100.1", Some("1.1.1.1")));
    assert!(!allowed(&h, "203.0.113.7", Some("1.1.1.1")));
}

#[test]
fn bad_entries_are_refused_at_load() {
    let err = Harness::<IpAcl>::new(r#"{"allow": ["10.0.0.0/8", "10.0.0.300"]}"#)
        .err()
        .unwrap_or_default();
    assert!(err.contains("allow[1]"), "{err}");
    let err = Harness::<IpAcl>::new(r#"{"alow": []}"#)
        .err()
        .unwrap_or_default();
    assert!(err.contains("alow"), "{err}");
}

#[test]
fn ipv4_mapped_entries_match_ipv4_clients() {
    let h = Harness::<IpAcl>::new(r#"{"deny": ["::ffff:10.9.0.0/112", "::ffff:10.8.0.1"]}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!allowed(&h, "10.9.1.1", None));
    assert!(!allowed(&h, "::ffff:10.9.1.1", None));
    assert!(!allowed(&h, "10.8.0.1", None));
    assert!(allowed(&h, "10.7.0.1", None));
    let err = Harness::<IpAcl>::new(r#"{"forwarded_header": ""}"#).err().unwrap_or_default();
    assert!(err.contains("forwarded_header"), "{err}");
}
