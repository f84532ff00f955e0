use std::path::Path;

use super::*;

const EXAMPLE: &str = r#"
[[listener]]
name = "web"
address = "127.0.0.1:8080"
protocol = "http"

[[route]]
listener = "web"
host = "api.example.com"
path_prefix = "/api"
strip_prefix = true
upstream = "api"

[[upstream]]
name = "api"
balance = "weighted_round_robin"
targets = [ { address = "127.0.0.1:2003", weight = 4 }, { address = "127.0.0.1:2004", weight = 2 } ]
timeouts = { connect = "1s", response = "30s" }
"#;

#[test]
fn the_documented_example_parses() {
    let config = Config::parse(EXAMPLE, Path::new("x.toml")).unwrap();
    assert_eq!(config.listeners[0].address.port(), 8080);
    assert_eq!(config.routes[0].host, Some(HostPattern::Exact("api.example.com".into())));
    assert!(config.routes[0].strip_prefix);
    let up = &config.upstreams[0];
    assert_eq!(up.balance, BalanceConfig::WeightedRoundRobin);
    assert_eq!(up.targets[1].weight, 2);
    assert_eq!(up.timeouts.connect, Duration::from_secs(1));
    assert_eq!(up.timeouts.response, Duration::from_secs(30));
    assert_eq!(up.retries, 1);
}

#[test]
fn errors_name_file_line_and_key() {
    let text = EXAMPLE.replace("weight = 2", "weight = \"two\"");
    let err = Config::parse(&text, Path::new("gw.toml")).unwrap_err();
    assert_eq!(err.key, "upstream[0].targets[1].weight");
    assert_eq!(err.line, Some(17));
    assert!(err.to_string().starts_with("gw.toml:17: upstream[0].targets[1].weight: "), "{err}");
}

#[test]
fn wildcard_hosts_match_subdomains_only() {
    let p = HostPattern::Suffix(".example.com".into());
    assert!(p.matches("a.example.com"));
    assert!(p.matches("A.B.Example.COM"));
    assert!(!p.matches("example.com"));
    assert!(!p.matches("badexample.com"));
}

#[test]
fn discovery_health_breaker_fallback_and_admin_parse() {
    let text = r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
listener = "web"
upstream = "api"
fallback = { status = 200, headers = { "content-type" = "application/json" }, body = '{"degraded":true}' }

[[upstream]]
name = "api"
discovery = { zookeeper = { hosts = ["127.0.0.1:2181"], path = "/real_server", session_timeout = "3s", on_empty = "unavailable" } }
health_check = { kind = "http", path = "/healthz", interval = "1s", timeout = "500ms", unhealthy_after = 3 }
circuit_breaker = { error_percent = 40, request_volume = 10, sleep_window = "2s" }
max_concurrent_requests = 64

[admin]
address = "127.0.0.1:9901"
"#;
    let config = Config::parse(text, Path::new("x.toml")).unwrap();
    let up = &config.upstreams[0];
    assert!(up.targets.is_empty(), "targets are optional with discovery");
    let Some(DiscoveryConfig::ZooKeeper(zk)) = &up.discovery else { panic!("no discovery") };
    assert_eq!(zk.session_timeout, Duration::from_secs(3));
    assert_eq!(zk.on_empty, OnEmpty::Unavailable);
    let health = up.health_check.as_ref().unwrap();
    assert_eq!(health.kind, HealthCheckKind::Http { path: "/healthz".parse().unwrap() });
    assert_eq!((health.unhealthy_after, health.healthy_after), (3, 2));
    let breaker = up.circuit_breaker.unwrap();
    assert_eq!((breaker.error_percent, breaker.request_volume, breaker.window), (40, 10, Duration::from_secs(10)));
    assert_eq!(up.max_concurrent_requests, Some(64));
    let fallback = config.routes[0].fallback.as_ref().unwrap();
    assert_eq!(fallback.status, 200);
    assert_eq!(fallback.headers["content-type"], "application/json");
    assert_eq!(config.admin.as_ref().unwrap().address.port(), 9901);
}
