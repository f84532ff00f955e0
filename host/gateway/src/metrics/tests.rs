use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::config::Config;
use crate::state::State;

const CONFIG: &str = r#"
[[listener]]
name = "public"
address = "127.0.0.1:0"

[[upstream]]
name = "api"
targets = [{ address = "127.0.0.1:9" }]
circuit_breaker = {}

[[upstream]]
name = "old"
targets = [{ address = "127.0.0.1:10" }]

[[route]]
name = "users"
listener = "public"
path_prefix = "/users"
upstream = "api"

[[route]]
name = "legacy"
listener = "public"
path_prefix = "/legacy"
upstream = "old"
"#;

fn state(text: &str, previous: Option<&State>) -> State {
    let config = Config::parse(text, Path::new("x.toml")).unwrap();
    State::build(&config, None, previous).unwrap()
}

fn route<'a>(state: &'a State, name: &str) -> &'a Arc<RouteMetrics> {
    state.routes().find(|(_, r)| &*r.name == name).and_then(|(_, r)| r.metrics.as_ref()).unwrap()
}

#[test]
fn accept_picks_openmetrics_only_when_preferred() {
    let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    assert!(wants_openmetrics(prometheus));
    assert!(wants_openmetrics("application/openmetrics-text"));
    assert!(!wants_openmetrics("text/plain"));
    assert!(!wants_openmetrics("*/*"));
    assert!(!wants_openmetrics("application/openmetrics-text;q=0"));
    assert!(!wants_openmetrics("text/plain, application/openmetrics-text;q=0.5"));
}

#[test]
fn text_format_by_default_openmetrics_on_request() {
    let state = state(CONFIG, None);
    route(&state, "users").request(200, Source::Upstream, 1_000_000, 400_000);
    let (content_type, text) = exposition(&state, None);
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!text.contains("# EOF"), "{text}");
    assert!(text.contains("# TYPE wasmgate_requests_total counter\n"), "{text}");
    assert!(
        text.contains(
            r#"wasmgate_requests_total{listener="public",route="users",status_class="2xx",source="upstream"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmgate_request_duration_seconds_bucket{listener="public",route="users",le="0.001"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmgate_request_gateway_duration_seconds_sum{listener="public",route="users"} 0.0006"#),
        "{text}"
    );
    assert!(text.contains(r#"wasmgate_build_info{version=""#), "{text}");

    let (content_type, text) = exposition(&state, Some("application/openmetrics-text; version=1.0.0"));
    assert_eq!(content_type, OPENMETRICS);
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(text.contains("# TYPE wasmgate_requests counter\n"), "{text}");
}

#[test]
fn a_reload_keeps_the_counters_of_what_keeps_its_name() {
    let first = state(CONFIG, None);
    route(&first, "users").request(200, Source::Upstream, 1_000, 0);
    let api = first.upstream("api").unwrap().clone();
    api.metrics().unwrap().unsent(Outcome::BreakerOpen);

    // `api` changes (so it is rebuilt), `legacy` and `old` go.
    let changed = CONFIG.replace("circuit_breaker = {}", "circuit_breaker = {}\nretries = 2");
    let changed = &changed[..changed.find("[[route]]\nname = \"legacy\"").unwrap()];
    let changed = changed.replace("[[upstream]]\nname = \"old\"\ntargets = [{ address = \"127.0.0.1:10\" }]\n", "");
    let second = state(&changed, Some(&first));
    assert!(Arc::ptr_eq(route(&first, "users"), route(&second, "users")));
    let rebuilt = second.upstream("api").unwrap();
    assert!(!Arc::ptr_eq(rebuilt, &api));
    assert!(Arc::ptr_eq(rebuilt.metrics().unwrap(), api.metrics().unwrap()));
    assert!(Arc::ptr_eq(&first.metrics, &second.metrics));

    let (_, text) = exposition(&second, None);
    assert!(text.contains(r#"route="users",status_class="2xx",source="upstream"} 1"#), "{text}");
    assert!(
        text.contains(r#"wasmgate_upstream_requests_total{upstream="api",target="",outcome="breaker_open"} 1"#),
        "{text}"
    );
    assert!(!text.contains("legacy"), "{text}");
    assert!(!text.contains(r#"upstream="old""#), "{text}");
}

#[test]
fn off_means_no_blocks_on_the_request_path() {
    let state = state(&format!("{CONFIG}\n[metrics]\nenabled = false\n"), None);
    assert!(state.routes().all(|(_, r)| r.metrics.is_none()));
    assert!(state.upstreams.iter().all(|u| u.metrics().is_none()));
    assert!(state.listener_metrics(0).is_none());
    let (_, text) = exposition(&state, None);
    assert!(!text.contains("wasmgate_requests_total"), "{text}");
    assert!(text.contains("wasmgate_reloads_total"), "{text}");
}

#[test]
fn target_series_follow_the_targets() {
    let state = state(CONFIG, None);
    let (_, text) = exposition(&state, None);
    assert!(
        text.contains(r#"wasmgate_upstream_target_breaker{upstream="api",target="127.0.0.1:9",state="closed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"wasmgate_upstream_target_health{upstream="api",target="127.0.0.1:9",state="unchecked"} 1"#),
        "{text}"
    );
    assert!(text.contains(r#"wasmgate_upstream_target_in_rotation{upstream="api",target="127.0.0.1:9"} 1"#), "{text}");
}

#[test]
fn discovered_targets_come_and_go_with_their_series() {
    let text = CONFIG.replace(
        "[[upstream]]\nname = \"old\"\ntargets = [{ address = \"127.0.0.1:10\" }]",
        "[[upstream]]\nname = \"old\"\ndiscovery = { zookeeper = { hosts = [\"127.0.0.1:1\"], path = \"/x\" } }",
    );
    let state = state(&text, None);
    let old = state.upstream("old").unwrap();
    let target = |port: u16| crate::config::TargetConfig {
        address: ([127, 0, 0, 1], port).into(),
        authority: format!("127.0.0.1:{port}"),
        weight: 1,
    };
    old.set_discovered(vec![target(20), target(21)]);
    old.targets().targets[0].state.metrics.as_ref().unwrap().sent(Outcome::Ok);
    let (_, text) = exposition(&state, None);
    assert!(text.contains(r#"wasmgate_discovery_updates_total{upstream="old"} 1"#), "{text}");
    assert!(text.contains(r#"wasmgate_discovery_last_update_timestamp_seconds{upstream="old"} "#), "{text}");
    assert!(text.contains(r#"wasmgate_discovery_connected{upstream="old"} 0"#), "{text}");
    assert!(text.contains(r#"wasmgate_upstream_requests_total{upstream="old",target="127.0.0.1:20",outcome="ok"} 1"#), "{text}");
    assert!(text.contains(r#"wasmgate_upstream_target_in_rotation{upstream="old",target="127.0.0.1:21"} 1"#), "{text}");

    old.set_discovered(vec![target(21)]);
    // Back again before any scrape: a fresh series all the same.
    old.set_discovered(vec![target(20), target(21)]);
    let (_, text) = exposition(&state, None);
    assert!(!text.contains(r#"target="127.0.0.1:20",outcome="ok""#), "{text}");
    assert!(text.contains(r#"wasmgate_upstream_target_in_rotation{upstream="old",target="127.0.0.1:20"} 1"#), "{text}");
}
