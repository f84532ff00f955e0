use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::upstream::Upstream;

fn router(routes: &[(&str, Option<&str>, &str)]) -> Router {
    let mut text = String::from("[[listener]]\nname = \"l\"\naddress = \"127.0.0.1:0\"\n");
    for (name, host, prefix) in routes {
        text += &format!("[[route]]\nname = \"{name}\"\nlistener = \"l\"\npath_prefix = \"{prefix}\"\nupstream = \"u\"\n");
        if let Some(h) = host {
            text += &format!("host = \"{h}\"\n");
        }
    }
    text += "[[upstream]]\nname = \"u\"\ntargets = [{ address = \"127.0.0.1:1\" }]\n";
    let config = Config::parse(&text, Path::new("t.toml")).unwrap();
    let upstream = Arc::new(Upstream::new(config.upstreams[0].clone()));
    Router::new(config.routes.iter().map(|r| route_from_config(r, upstream.clone(), Default::default())).collect())
}

fn found<'a>(r: &'a Router, host: Option<&str>, path: &str) -> Option<&'a str> {
    r.find(host, path).map(|route| &*route.name)
}

#[test]
fn longest_prefix_wins_on_segment_boundaries() {
    let r = router(&[("root", None, "/"), ("api", None, "/api"), ("users", None, "/api/users")]);
    assert_eq!(found(&r, None, "/api/users/7"), Some("users"));
    assert_eq!(found(&r, None, "/api/usersx"), Some("api"));
    assert_eq!(found(&r, None, "/api"), Some("api"));
    assert_eq!(found(&r, None, "/apiary"), Some("root"));
    // Path parameters end a segment (Tomcat's reading), spelt raw or encoded.
    assert_eq!(found(&r, None, "/api;v=1/users"), Some("api"));
    assert_eq!(found(&r, None, "/api%3Bx"), Some("api"));
    assert_eq!(found(&r, None, "/"), Some("root"));
}

#[test]
fn exact_host_beats_wildcard_beats_any() {
    let r = router(&[
        ("any", None, "/"),
        ("wild", Some("*.example.com"), "/"),
        ("exact", Some("api.example.com"), "/"),
        ("other", Some("other.test"), "/x"),
    ]);
    assert_eq!(found(&r, Some("api.example.com"), "/"), Some("exact"));
    assert_eq!(found(&r, Some("www.example.com"), "/"), Some("wild"));
    assert_eq!(found(&r, Some("example.org"), "/"), Some("any"));
    assert_eq!(found(&r, None, "/"), Some("any"));
    assert_eq!(found(&r, Some("other.test"), "/y"), Some("any"));
}

#[test]
fn no_route_when_nothing_matches() {
    let r = router(&[("api", Some("api.example.com"), "/api")]);
    assert_eq!(found(&r, Some("api.example.com"), "/web"), None);
    assert_eq!(found(&r, Some("x.example.com"), "/api"), None);
}

#[test]
fn strip_keeps_a_leading_slash() {
    assert_eq!(strip("/api", "/api/users"), "/users");
    assert_eq!(strip("/api", "/api"), "/");
    assert_eq!(strip("/api/", "/api/users"), "/users");
    assert_eq!(strip("/", "/users"), "/users");
}
