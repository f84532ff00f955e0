use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::UrlRewrite;

fn rewrite(config: &str, target: &str) -> Request {
    let h = Harness::<UrlRewrite>::new(config).unwrap_or_else(|e| panic!("{e}"));
    let mut req = Request::new("GET", target).with_header("host", "in.example");
    assert_eq!(h.on_request(&mut req), RequestFlow::Continue);
    req
}

#[test]
fn the_seed_example_and_first_match_wins() {
    let config = r#"{"rules": [{"match": "^/dir(.*)", "replace": "$1"}, {"match": "^/(.*)", "replace": "/other/$1"}]}"#;
    assert_eq!(rewrite(config, "/dir/a/b?x=1").path(), "/a/b");
    assert_eq!(rewrite(config, "/dir/a/b?x=1").query(), Some("x=1"));
    assert_eq!(rewrite(config, "/dir").path(), "/");
    assert_eq!(rewrite(config, "/z").path(), "/other/z");
}

#[test]
fn named_groups_prefixes_query_and_host() {
    let config = r#"{
        "strip_prefix": "/api/",
        "rules": [{"match": "^/users/(?P<id>[0-9]+)$", "replace": "/v2/people/${id}"}],
        "add_prefix": "/svc",
        "query": {"set": {"via": "gw"}, "remove": ["debug"]},
        "host": "backend.internal"
    }"#;
    let req = rewrite(config, "/api/users/42?debug=1&a=b");
    assert_eq!(req.path(), "/svc/v2/people/42");
    assert_eq!(req.query(), Some("a=b&via=gw"));
    assert_eq!(req.header("host"), Some("backend.internal"));
    // The prefix only strips whole segments.
    assert_eq!(
        rewrite(r#"{"strip_prefix": "/api"}"#, "/apix").path(),
        "/apix"
    );
}

#[test]
fn untouched_requests_stay_unmodified() {
    let req = rewrite(
        r#"{"rules": [{"match": "^/dir(.*)", "replace": "$1"}]}"#,
        "/else",
    );
    assert!(!req.is_modified());
}

#[test]
fn bad_configs_name_the_key() {
    for (config, key) in [
        (
            r#"{"rules": [{"match": "^/(", "replace": ""}]}"#,
            "rules[0].match",
        ),
        (
            r#"{"rules": [{"match": "^/a", "replace": "$2"}]}"#,
            "rules[0].replace",
        ),
        (r#"{"rules": [{"match": "^/a", "replce": ""}]}"#, "rules[0]"),
        (r#"{"add_prefix": "v1"}"#, "add_prefix"),
        (r#"{"add_prefix": "/a#b"}"#, "add_prefix"),
        (
            r#"{"rules": [{"match": "^/u/(?P<id>[0-9]+)", "replace": "/v2/${nope}"}]}"#,
            "group `nope`",
        ),
        (r#"{"rules": [{"match": "^/u/(.*)", "replace": "/z$1a"}]}"#, "write `${1}a`"),
        (r#"{"rules": [{"match": "^/u/(.*)", "replace": "/x?y=$1"}]}"#, "rules[0].replace"),
        (r#"{"host": "a b"}"#, "host"),
    ] {
        let err = Harness::<UrlRewrite>::new(config).err().unwrap_or_default();
        assert!(err.contains(key), "{config}: {err}");
    }
}

#[test]
fn the_anchor_is_the_literal_every_match_starts_with() {
    use crate::anchor;
    assert_eq!(anchor("^/dir(.*)").as_deref(), Some("/dir"));
    assert_eq!(anchor("^/api/v1/").as_deref(), Some("/api/v1/"));
    assert_eq!(anchor("^/ab?c").as_deref(), Some("/a"), "b is optional");
    assert_eq!(anchor("^/ab*").as_deref(), Some("/a"));
    assert_eq!(anchor("^/ab{0,2}").as_deref(), Some("/a"));
    assert_eq!(anchor("^/ab+").as_deref(), Some("/ab"));
    assert_eq!(anchor("^/a|/b"), None, "the ^ covers one branch");
    assert_eq!(anchor("/dir(.*)"), None, "not anchored");
    assert_eq!(anchor("^\\d+"), None);
    assert_eq!(anchor("^(?i)/dir"), None);
    assert_eq!(anchor("^.*"), None);
}

#[test]
fn named_groups_and_dollars_in_replacements() {
    let h = Harness::<UrlRewrite>::new(
        r#"{"rules": [{"match": "^/users/(?P<id>[0-9]+)$", "replace": "/v2/$id/${id}_x/$$"}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut request = Request::new("GET", "/users/42");
    assert_eq!(h.on_request(&mut request), RequestFlow::Continue);
    assert_eq!(request.path(), "/v2/42/42_x/$");
}

#[test]
fn a_prefix_rule_without_a_regex_run_rewrites_as_the_regex_would() {
    let rules = [
        ("^/bench(.*)", "$1"),
        ("^/api/v1(.*)$", "/v2${1}x"),
        ("^/a(.*)", "$0|$1|$$|${0}|$|${1"),
        ("^/a-b_c~d%20(.*)", "/z$1"),
    ];
    let paths = ["/bench/", "/bench", "/benchmark/x", "/api/v1/users", "/api/v1", "/a", "/a/b/c", "/a-b_c~d%20/q", "/other"];
    for (pattern, replace) in rules {
        let regex = regex_lite::Regex::new(pattern).unwrap();
        let anchor = crate::anchor(pattern);
        let rule = crate::Compiled {
            rest_after_anchor: crate::rest_after_anchor(pattern, anchor.as_deref()),
            regex: regex.clone(),
            anchor,
            replace: replace.to_owned(),
        };
        assert!(rule.rest_after_anchor, "{pattern}");
        for path in paths {
            let want = regex.is_match(path).then(|| regex.replace(path, replace).into_owned());
            assert_eq!(rule.apply(path), want, "{pattern} -> {replace} on {path}");
        }
    }
    for pattern in ["^/a.(.*)", "^/a(.+)", "^/a(.*)b", "^/a|/b(.*)", "/a(.*)"] {
        let anchor = crate::anchor(pattern);
        assert!(!crate::rest_after_anchor(pattern, anchor.as_deref()), "{pattern}");
    }
}
