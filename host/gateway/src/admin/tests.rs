use std::path::Path;

use http::{header, HeaderMap, HeaderValue};
use serde_json::json;

use super::status::{redact_plugin_configs, REDACTED};
use super::*;
use crate::config::{AdminToken, Config};

#[test]
fn paths_name_endpoints_and_segments_are_percent_decoded() {
    assert_eq!(Endpoint::of("/"), Some(Endpoint::Index));
    assert_eq!(Endpoint::of("/status/upstreams"), Some(Endpoint::Upstreams));
    assert_eq!(Endpoint::of("/status/upstreams/"), None);
    assert_eq!(Endpoint::of("/status"), Some(Endpoint::List));
    assert_eq!(Endpoint::of("/events"), Some(Endpoint::Events));
    assert_eq!(Endpoint::of("/status/"), None);
    assert_eq!(
        Endpoint::of("/upstreams/api/targets/127.0.0.1:2003/drain"),
        Some(Endpoint::Drain { upstream: "api".into(), target: "127.0.0.1:2003".into(), drained: true })
    );
    assert_eq!(
        Endpoint::of("/upstreams/my%20api/targets/%5B::1%5D:80/undrain"),
        Some(Endpoint::Drain { upstream: "my api".into(), target: "[::1]:80".into(), drained: false })
    );
    assert_eq!(Endpoint::of("/upstreams/api/targets/x/restart"), None);
    assert_eq!(Endpoint::of("/upstreams/a%zz/targets/x/drain"), None, "a bad escape names nothing");
    assert_eq!(Endpoint::of("/upstreams/a%+1/targets/x/drain"), None, "`+` is not a hex digit");
    assert_eq!(Endpoint::of("/upstreams/%ff/targets/x/drain"), None, "not UTF-8");
}

#[test]
fn each_endpoint_allows_its_methods_only() {
    assert_eq!(Endpoint::Reload.allowed(), [Method::POST]);
    assert_eq!(Endpoint::Config.allowed(), [Method::GET]);
    assert_eq!(allow(Endpoint::LogLevel.allowed()), "GET, PUT, DELETE");
}

fn with_authorization(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
    }
    headers
}

#[test]
fn only_the_right_bearer_token_passes() {
    let token = AdminToken::new("0123456789abcdef-secret\n").unwrap();
    let ok = |values: &[&str]| auth::authorized(&token, &with_authorization(values));
    assert!(ok(&["Bearer 0123456789abcdef-secret"]));
    assert!(ok(&["bearer  0123456789abcdef-secret "]), "the scheme is case-insensitive");
    assert!(!ok(&[]));
    assert!(!ok(&["Bearer 0123456789abcdef-secreT"]));
    assert!(!ok(&["Bearer 0123456789abcdef-secre"]));
    assert!(!ok(&["Basic 0123456789abcdef-secret"]));
    assert!(!ok(&["Bearer"]));
    assert!(!ok(&["Bearer0123456789abcdef-secret"]));
    assert!(!ok(&["Bearer 0123456789abcdef-secret", "Bearer 0123456789abcdef-secret"]), "two headers");

    let refused = auth::unauthorized();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers().len(), 1);
    assert_eq!(refused.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

#[test]
fn tokens_must_be_long_visible_ascii_and_never_show() {
    assert!(AdminToken::new("short").unwrap_err().contains("at least 16"));
    assert!(AdminToken::new("  \n").unwrap_err().contains("empty"));
    assert!(AdminToken::new("with a space in the middle").unwrap_err().contains("visible ASCII"));
    let token = AdminToken::new("0123456789abcdef").unwrap();
    assert!(!format!("{token:?}").contains("0123"));
}

#[test]
fn plugin_configs_are_redacted_and_nothing_else() {
    let mut written = json!({
        "route": [
            { "name": "a", "plugins": [ { "name": "jwt-auth", "config": { "secret": "s3cret" } }, { "name": "cors" } ] },
            { "name": "b" },
        ],
        "admin": { "address": "127.0.0.1:9901", "token_file": "token" },
    });
    redact_plugin_configs(&mut written);
    assert_eq!(written["route"][0]["plugins"][0]["config"], REDACTED);
    assert!(written["route"][0]["plugins"][1].get("config").is_none(), "no config is added");
    assert_eq!(written["admin"]["token_file"], "token");
    assert!(!written.to_string().contains("s3cret"));
}

#[test]
fn the_routes_page_names_listeners_routes_and_plugins() {
    let text = r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
name = "api"
listener = "web"
host = "*.example.com"
path_prefix = "/api"
strip_prefix = true
upstream = "up"
upgrades = []

[[upstream]]
name = "up"
targets = [ { address = "127.0.0.1:2003" } ]
"#;
    let config = Config::parse(text, Path::new("x.toml")).unwrap();
    let bound: SocketAddr = "127.0.0.1:4321".parse().unwrap();
    let page = status::routes(&config, &[("web".into(), bound)]);
    assert_eq!(
        page,
        json!({ "listeners": [ {
            "name": "web", "address": "127.0.0.1:4321", "protocol": "http", "upstream": null,
            "routes": [ {
                "name": "api", "host": "*.example.com", "path_prefix": "/api", "strip_prefix": true,
                "upstream": "up", "plugins": [], "upgrades": [], "fallback": false,
            } ],
        } ] })
    );
}

#[test]
fn the_plugins_page_lists_files_no_route_names_as_ignored_with_why() {
    let text = r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
listener = "web"
upstream = "up"

[[upstream]]
name = "up"
targets = [ { address = "127.0.0.1:2003" } ]

[plugins]
dir = "plugins"
"#;
    let config = Config::parse(text, Path::new("x.toml")).unwrap();
    let ignored = crate::plugins::IgnoredPlugin {
        name: "notes".into(),
        file: "plugins/notes.wasm".into(),
        reason: crate::plugins::UNUSED,
    };
    let running = crate::reload::Running {
        config,
        hash: String::new(),
        plugins: Vec::new(),
        ignored: vec![ignored],
        since: std::time::SystemTime::now(),
        global_state: None,
    };
    let page = status::plugins(&running, None);
    assert_eq!(page["plugins"], json!([]));
    assert_eq!(
        page["ignored"],
        json!([{ "name": "notes", "file": "plugins/notes.wasm", "reason": "no route names it" }])
    );
}
