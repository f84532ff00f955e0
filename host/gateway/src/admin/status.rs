//! The admin API's reads: routes, upstreams, plugins and the config, as JSON.
//! Nothing here changes anything.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::config::{Config, DiscoveryConfig, HostPattern, ListenerProtocol, PluginOnError, PluginState, RouteConfig};
use crate::reload::{Refusal, Running};
use crate::state::State;
use crate::upstream::Upstream;

/// What replaces a plugin's `config` in `GET /status/config`.
pub const REDACTED: &str = "<redacted>";

/// `GET /status/routes`: per listener, its routes in config order.
pub fn routes(config: &Config, bound: &[(String, SocketAddr)]) -> Value {
    let listeners: Vec<Value> = config
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let address = bound.iter().find(|(name, _)| *name == l.name).map_or(l.address, |(_, a)| *a);
            let (protocol, upstream) = match &l.protocol {
                ListenerProtocol::Http => ("http", None),
                ListenerProtocol::Https(_) => ("https", None),
                ListenerProtocol::Tcp(tcp) => ("tcp", config.upstreams.get(tcp.upstream).map(|u| u.name.as_str())),
            };
            let routes: Vec<Value> = config.routes.iter().filter(|r| r.listener == i).map(|r| route(config, r)).collect();
            json!({
                "name": l.name,
                "address": address.to_string(),
                "protocol": protocol,
                "upstream": upstream,
                "routes": routes,
            })
        })
        .collect();
    json!({ "listeners": listeners })
}

fn route(config: &Config, route: &RouteConfig) -> Value {
    let host = route.host.as_ref().map(|h| match h {
        HostPattern::Exact(host) => host.clone(),
        HostPattern::Suffix(suffix) => format!("*{suffix}"),
    });
    json!({
        "name": route.name,
        "host": host,
        "path_prefix": route.path_prefix,
        "strip_prefix": route.strip_prefix,
        "upstream": config.upstreams.get(route.upstream).map(|u| u.name.as_str()),
        "plugins": route.plugins.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        "upgrades": route.upgrades,
        "fallback": route.fallback.is_some(),
    })
}

/// `GET /status/upstreams`: every upstream's discovery, targets, health, rotation and breakers.
pub fn upstreams(state: &State) -> Value {
    json!({ "upstreams": state.upstreams.iter().map(|u| upstream(u)).collect::<Vec<_>>() })
}

fn upstream(upstream: &Upstream) -> Value {
    let (source, targets) = upstream.status();
    let discovery = upstream.config.discovery.as_ref().map(|d| match d {
        DiscoveryConfig::ZooKeeper(zk) => json!({
            "kind": "zookeeper",
            "hosts": zk.hosts,
            "path": zk.path,
            "connected": source.as_ref().map(|s| s.connected),
            "since_unix_ms": source.as_ref().and_then(|s| unix_ms(s.since)),
            "error": source.as_ref().and_then(|s| s.error.clone()),
        }),
    });
    let targets: Vec<Value> = targets
        .iter()
        .map(|t| {
            json!({
                "address": t.address.to_string(),
                "weight": t.weight,
                "in_rotation": t.in_rotation,
                "drained": t.drained,
                "health": t.health.as_str(),
                "breaker": t.breaker.map(|(state, requests, failures)| json!({
                    "state": state.as_str(),
                    "requests": requests,
                    "failures": failures,
                })),
            })
        })
        .collect();
    json!({
        "name": upstream.name(),
        "discovery": discovery,
        "health_check": upstream.config.health_check.is_some(),
        "max_concurrent_requests": upstream.config.max_concurrent_requests,
        "in_flight": upstream.config.max_concurrent_requests.map(|_| upstream.in_flight()),
        "available": targets.iter().filter(|t| t["in_rotation"] == true).count(),
        "targets": targets,
    })
}

/// `GET /status/plugins`: every plugin routes name with its version and the
/// routes that run it, what the last refused reload could not load, and the
/// files of the folder no route names (`ignored`, not loaded, with why).
pub fn plugins(running: &Running, refused: Option<&Refusal>) -> Value {
    let config = &running.config;
    let failures = refused.map(|r| r.plugin_failures.as_slice()).unwrap_or_default();
    let used_by = |name: &str| -> Vec<Value> {
        config
            .routes
            .iter()
            .flat_map(|r| r.plugins.iter().filter(|p| p.name == name).map(move |p| (r, p)))
            .map(|(r, p)| {
                let (state, on_state_error) = match p.state {
                    PluginState::Local => ("local", None),
                    PluginState::Global { fail_closed: true } => ("global", Some("fail-closed")),
                    PluginState::Global { fail_closed: false } => ("global", Some("fail-open")),
                };
                json!({
                    "route": r.name,
                    "on_error": match p.on_error {
                        PluginOnError::FailClosed => "fail-closed",
                        PluginOnError::FailOpen => "fail-open",
                    },
                    "state": state,
                    "on_state_error": on_state_error,
                })
            })
            .collect()
    };
    let load_error = |name: &str| failures.iter().find(|(n, _)| n == name).map(|(_, e)| e.as_str());
    let mut plugins: Vec<Value> = running
        .plugins
        .iter()
        .map(|p| {
            json!({
                "name": p.name,
                "version": p.version,
                "sha256": p.sha256,
                "routes": used_by(&p.name),
                "load_error": load_error(&p.name),
            })
        })
        .collect();
    // A file the last reload could not load and no earlier version of which runs.
    for (name, error) in failures.iter().filter(|(n, _)| !running.plugins.iter().any(|p| p.name == *n)) {
        plugins.push(json!({
            "name": name,
            "version": null,
            "sha256": null,
            "routes": used_by(name),
            "load_error": error,
        }));
    }
    let ignored: Vec<Value> = running
        .ignored
        .iter()
        .map(|p| json!({ "name": p.name, "file": p.file.display().to_string(), "reason": p.reason }))
        .collect();
    // `[state]`: whether the Redis that `state = "global"` entries share answers.
    let state_backend = running.global_state.as_ref().map(|g| {
        json!({
            "up": g.is_up(),
            "fleet_size": g.settings().fleet_size,
            "leased_keys": g.leased_keys(),
        })
    });
    json!({
        "dir": config.plugins.as_ref().map(|p| p.dir.display().to_string()),
        "plugins": plugins,
        "ignored": ignored,
        "state_backend": state_backend,
    })
}

/// `GET /status/config`: the config as written, with every plugin's `config`
/// replaced by `"<redacted>"` unless `[admin] show_plugin_config = true`. The
/// admin token is not in it (only where it is read from), nor is any file's
/// content (TLS keys are named by path).
pub fn config(running: &Running, refused: Option<&Refusal>) -> Value {
    let config = &running.config;
    let show = config.admin.as_ref().is_some_and(|a| a.show_plugin_config);
    let mut written = config.as_written.value().clone();
    if !show {
        redact_plugin_configs(&mut written);
    }
    json!({
        "source": config.source.as_ref().map(|p| p.display().to_string()),
        "hash": running.hash,
        "applied_unix_ms": unix_ms(running.since),
        "plugin_configs": if show { "shown" } else { "redacted" },
        "last_refused_reload": refused.map(|r| json!({
            "at_unix_ms": unix_ms(r.at),
            "error": r.message,
        })),
        "config": written,
    })
}

/// Replaces `route[*].plugins[*].config` (the only place plugin configs live).
pub fn redact_plugin_configs(written: &mut Value) {
    let Some(routes) = written.get_mut("route").and_then(Value::as_array_mut) else { return };
    for route in routes {
        let Some(plugins) = route.get_mut("plugins").and_then(Value::as_array_mut) else { continue };
        for plugin in plugins {
            if let Some(config) = plugin.get_mut("config") {
                *config = Value::String(REDACTED.to_owned());
            }
        }
    }
}

pub fn unix_ms(time: SystemTime) -> Option<u64> {
    time.duration_since(UNIX_EPOCH).ok().map(|d| d.as_millis() as u64)
}
