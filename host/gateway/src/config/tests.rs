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

#[test]
fn the_config_hash_ignores_layout_and_follows_values() {
    let hash = |text: &str| config_hash(&Config::parse(text, Path::new("x.toml")).unwrap());
    let base = hash(EXAMPLE);
    assert_eq!(base.len(), 16);
    assert_eq!(hash(&format!("# a comment\n{EXAMPLE}\n\n")), base, "comments and blank lines");
    assert_eq!(hash(&EXAMPLE.replace("strip_prefix = true\nupstream = \"api\"", "upstream = \"api\"\nstrip_prefix = true")), base, "key order");
    assert_ne!(hash(&EXAMPLE.replace("weight = 2", "weight = 3")), base);
    assert_ne!(hash(&EXAMPLE.replace("path_prefix = \"/api\"", "path_prefix = \"/api\"\nplugins = []")), base);
    let written = Config::parse(EXAMPLE, Path::new("x.toml")).unwrap().as_written;
    assert_eq!(format!("{written:?}"), format!("Written({base})"), "the text is not in logs");
}

#[test]
fn an_admin_address_off_loopback_needs_a_token() {
    let with_admin = |admin: &str| Config::parse(&format!("{EXAMPLE}\n[admin]\n{admin}\n"), Path::new("x.toml"));
    let err = with_admin("address = \"0.0.0.0:9901\"").unwrap_err();
    assert_eq!(err.key, "admin.address");
    assert!(err.reason.contains("not a loopback address"), "{err}");
    assert!(with_admin("address = \"[::1]:9901\"").unwrap().admin.unwrap().token.is_none());

    let dir = tempfile_dir();
    std::fs::write(dir.join("token"), "0123456789abcdef0123\n").unwrap();
    let file = format!("address = \"0.0.0.0:9901\"\ntoken_file = \"{}\"", dir.join("token").display());
    let admin = with_admin(&file).unwrap().admin.unwrap();
    assert!(admin.token.unwrap().matches(b"0123456789abcdef0123"));
    assert!(!admin.show_plugin_config);

    std::fs::write(dir.join("token"), "short\n").unwrap();
    let err = with_admin(&file).unwrap_err();
    assert_eq!(err.key, "admin.token_file");
    assert!(err.reason.contains("at least 16") && !err.reason.contains("short\""), "{err}");

    let err = with_admin("address = \"127.0.0.1:0\"\ntoken_env = \"WASMGATE_TEST_NO_SUCH_VARIABLE\"").unwrap_err();
    assert_eq!((err.key.as_str(), err.reason.contains("is not set")), ("admin.token_env", true), "{err}");
    let err = with_admin("address = \"127.0.0.1:0\"\ntoken_env = \"X\"\ntoken_file = \"y\"").unwrap_err();
    assert!(err.reason.contains("not both"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("wasmgate-config-test-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_route_is_named_by_its_name_or_else_by_its_place_in_every_message() {
    let config = Config::parse(EXAMPLE, Path::new("gw.toml")).unwrap();
    assert_eq!((config.routes[0].name.as_str(), config.routes[0].label.as_str()), ("route[0]", "route[0]"));
    let named = EXAMPLE.replace("[[route]]\n", "[[route]]\nname = \"api\"\n");
    let config = Config::parse(&named, Path::new("gw.toml")).unwrap();
    assert_eq!((config.routes[0].name.as_str(), config.routes[0].label.as_str()), ("api", r#"route "api""#));

    let unknown_listener = named.replace("listener = \"web\"\nhost", "listener = \"www\"\nhost");
    let err = Config::parse(&unknown_listener, Path::new("gw.toml")).unwrap_err().to_string();
    assert_eq!(err, r#"gw.toml: route "api" listener: unknown listener `www`"#);
    let unknown_key = named.replace("strip_prefix = true", "strip = true");
    let err = Config::parse(&unknown_key, Path::new("gw.toml")).unwrap_err().to_string();
    assert!(err.starts_with(r#"gw.toml:12: route "api" strip: unknown field `strip`"#), "{err}");
}

#[test]
fn a_problem_found_later_in_a_routes_plugin_config_points_at_its_line() {
    let text = EXAMPLE.replace("[[route]]\n", "[[route]]\nname = \"api\"\n")
        + "\n[plugins]\ndir = \"plugins\"\n"
        + "\n[[route.plugins]]\nname = \"retry\"\nconfig = { retry_after_s = \"two minutes\" }\n";
    let config = Config::parse(&text, Path::new("wasmgate.toml")).unwrap();
    let err = config.route_error(0, "plugins[0].config.retry_after_s", r#"expected an integer, found "two minutes""#);
    assert_eq!(
        err.to_string(),
        r#"wasmgate.toml:26: route "api" plugins[0].config.retry_after_s: expected an integer, found "two minutes""#
    );
    assert_eq!(config.plugins.map(|p| p.used.into_iter().collect::<Vec<_>>()), Some(vec!["retry".to_owned()]));
}

#[test]
fn a_fleet_cache_next_to_a_config_given_by_a_relative_path_is_absolute() {
    // The fetched config's plugin folder lives in the cache; a relative cache
    // path would be resolved again against the config's folder (`work/work/…`).
    let text = EXAMPLE.to_owned() + "\n[cluster]\nzookeeper = { hosts = [\"127.0.0.1:2181\"], path = \"/wasmgate\" }\n";
    let config = Config::parse(&text, Path::new("work/gw1.toml")).unwrap();
    let cache = config.cluster.map(|c| c.cache_dir).unwrap();
    assert!(cache.is_absolute(), "{}", cache.display());
    assert!(cache.ends_with("work/gw1.fleet"), "{}", cache.display());
}
