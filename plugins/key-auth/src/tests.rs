use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::KeyAuth;

const CONFIG: &str = r#"{
    "keys": [
        {"consumer": "alice", "key": "secret-a"},
        {"consumer": "bob", "sha256": "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"}
    ],
    "query": "apikey"
}"#;

fn status(flow: &RequestFlow) -> u16 {
    match flow {
        RequestFlow::Continue => 0,
        RequestFlow::Respond(r) => r.status(),
    }
}

#[test]
fn a_known_key_passes_the_consumer_on_and_is_hidden() {
    let h = Harness::<KeyAuth>::new(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let mut req = Request::new("GET", "/").with_header("X-Api-Key", "secret-a");
    assert_eq!(status(&h.on_request(&mut req)), 0);
    assert_eq!(req.header("x-consumer-id"), Some("alice"));
    assert_eq!(req.header("x-api-key"), None);
    assert_eq!(
        h.host().scratch().get("consumer").map(String::as_str),
        Some("alice")
    );
}

#[test]
fn keys_by_hash_and_in_the_query() {
    // sha256("secret") = 2bb80d53...
    let h = Harness::<KeyAuth>::new(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let mut req = Request::new("GET", "/x?apikey=secret&a=1");
    assert_eq!(status(&h.on_request(&mut req)), 0);
    assert_eq!(req.header("x-consumer-id"), Some("bob"));
    assert_eq!(req.query(), Some("a=1"));
}

#[test]
fn missing_or_wrong_keys_get_401() {
    let h = Harness::<KeyAuth>::new(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    for mut req in [
        Request::new("GET", "/"),
        Request::new("GET", "/").with_header("x-api-key", "nope"),
    ] {
        match h.on_request(&mut req) {
            RequestFlow::Respond(r) => {
                assert_eq!(r.status(), 401);
                assert!(r.headers().contains("www-authenticate"));
            }
            RequestFlow::Continue => panic!("let through"),
        }
    }
}

#[test]
fn bad_configs_name_the_key() {
    for (config, key) in [
        (r#"{"keys": [{"consumer": "a"}]}"#, "keys[0]"),
        (
            r#"{"keys": [{"consumer": "a", "sha256": "zz"}]}"#,
            "keys[0].sha256",
        ),
        (r#"{"keys": [], "heder": "x"}"#, "heder"),
        (r#"{"keys": []}"#, "keys"),
        (r#"{"keys": [{"consumer": "a", "key": "k"}], "consumer_header": "bad name"}"#, "consumer_header"),
        (r#"{"keys": [{"consumer": "a", "key": "k"}], "header": ""}"#, "header"),
        (
            r#"{"keys": [{"consumer": "a", "sha256": "+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f+f"}]}"#,
            "keys[0].sha256",
        ),
        (
            r#"{"keys": [{"consumer": "a", "key": "k"}, {"consumer": "b", "key": "k"}]}"#,
            "keys[1]",
        ),
    ] {
        let err = Harness::<KeyAuth>::new(config).err().unwrap_or_default();
        assert!(err.contains(key), "{config}: {err}");
    }
}
