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
