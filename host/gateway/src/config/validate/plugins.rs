//! `[plugins]` and route plugin lists.

use std::path::Path;
use std::time::Duration;

use super::super::plugins::{PluginOnError, PluginRef, PluginState, PluginsConfig, StateConfig};
use super::super::raw::plugins::{RawPluginRef, RawPlugins, RawState};
use super::{invalid, Invalid};

pub fn plugins(raw: &RawPlugins, base: &Path) -> Result<PluginsConfig, Invalid> {
    let deadline = raw.call_deadline.unwrap_or(Duration::from_millis(20));
    // Deadlines are kept by a 5 ms epoch tick: a call is stopped between one
    // tick before its deadline and the deadline, so less than two ticks would
    // let a fast call be stopped at once.
    if deadline < Duration::from_millis(10) || deadline > Duration::from_secs(10) {
        return Err(invalid("plugins.call_deadline", "must be between 10ms and 10s"));
    }
    let memory_mb = raw.memory_limit_mb.unwrap_or(32);
    if !(1..=4096).contains(&memory_mb) {
        return Err(invalid("plugins.memory_limit_mb", "must be between 1 and 4096"));
    }
    let pool_size = raw.pool_size.unwrap_or(4);
    if !(1..=1024).contains(&pool_size) {
        return Err(invalid("plugins.pool_size", "must be between 1 and 1024"));
    }
    let max_uses = raw.max_uses.unwrap_or(10_000);
    if max_uses == 0 {
        return Err(invalid("plugins.max_uses", "must be at least 1"));
    }
    let max_body = raw.max_body_bytes.unwrap_or(1 << 20);
    if max_body > 64 << 20 {
        return Err(invalid("plugins.max_body_bytes", "must be at most 67108864"));
    }
    let max_instances = raw.max_instances.unwrap_or(1000);
    if max_instances == 0 {
        return Err(invalid("plugins.max_instances", "must be at least 1"));
    }
    Ok(PluginsConfig {
        dir: base.join(&raw.dir),
        call_deadline: deadline,
        memory_limit: memory_mb << 20,
        pool_size,
        max_uses,
        max_body,
        max_instances,
        cache_dir: raw.cache_dir.as_ref().map(|d| base.join(d)),
        watch: raw.watch.unwrap_or(true),
        // Filled in once the routes are known.
        used: Default::default(),
        state: None,
    })
}

/// `[state]`.
pub fn state(raw: &RawState) -> Result<StateConfig, Invalid> {
    if raw.redis.starts_with("rediss://") {
        return Err(invalid("state.redis", "TLS to Redis (rediss://) is not built in: use redis:// on a trusted network, or a local TLS tunnel"));
    }
    let scheme_ok = ["redis://", "redis+unix://", "unix://"].iter().any(|s| raw.redis.starts_with(s));
    if !scheme_ok || redis_url_problem(&raw.redis) {
        return Err(invalid("state.redis", format!("`{}` is not a Redis URL (redis://host:port)", raw.redis)));
    }
    let fleet_size = raw.fleet_size.unwrap_or(1);
    if !(1..=1000).contains(&fleet_size) {
        return Err(invalid("state.fleet_size", "must be between 1 and 1000"));
    }
    let sync_interval = raw.sync_interval.unwrap_or(Duration::from_millis(50));
    if sync_interval < Duration::from_millis(5) || sync_interval > Duration::from_secs(10) {
        return Err(invalid("state.sync_interval", "must be between 5ms and 10s"));
    }
    let timeout = raw.timeout.unwrap_or(Duration::from_millis(250));
    if timeout < Duration::from_millis(10) || timeout > Duration::from_secs(10) {
        return Err(invalid("state.timeout", "must be between 10ms and 10s"));
    }
    let key_prefix = raw.key_prefix.clone().unwrap_or_else(|| "wasmgate".to_owned());
    if key_prefix.is_empty() || key_prefix.len() > 64 || !key_prefix.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid("state.key_prefix", "must be 1 to 64 printable ASCII characters"));
    }
    Ok(StateConfig { redis: raw.redis.clone(), fleet_size, sync_interval, timeout, key_prefix })
}

/// Whether a `redis://` URL has no host or a port that is not a number.
fn redis_url_problem(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("redis://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    if host_port.is_empty() {
        return true;
    }
    match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') && host.contains(':') => port.parse::<u16>().is_err(),
        Some((host, port)) => host.is_empty() || port.parse::<u16>().is_err(),
        None => false,
    }
}

/// Every `state = "global"` entry needs `[state]`.
pub fn check_state(routes: &[super::super::RouteConfig], have_state: bool) -> Result<(), Invalid> {
    if have_state {
        return Ok(());
    }
    for route in routes {
        if let Some(at) = route.plugins.iter().position(|p| p.state != PluginState::Local) {
            return Err(invalid(
                super::super::route_key(&route.label, &format!("plugins[{at}].state")),
                "`global` needs a [state] table with `redis = \"redis://host:port\"`",
            ));
        }
    }
    Ok(())
}

pub fn plugin_refs(raw: &[RawPluginRef], key: &str, have_runtime: bool) -> Result<Vec<PluginRef>, Invalid> {
    if !raw.is_empty() && !have_runtime {
        return Err(invalid(key, "routes with plugins need a [plugins] table with `dir`"));
    }
    raw.iter()
        .enumerate()
        .map(|(i, p)| {
            let k = |field: &str| format!("{key}[{i}].{field}");
            let name_ok = !p.name.is_empty()
                && p.name.len() <= 64
                && p.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !name_ok {
                return Err(invalid(k("name"), format!("`{}` is not a plugin name (letters, digits, - and _)", p.name)));
            }
            let config_json = match &p.config {
                None => "{}".to_owned(),
                Some(value) => serde_json::to_string(value)
                    .map_err(|e| invalid(k("config"), format!("cannot be passed on as JSON: {e}")))?,
            };
            let on_error = match p.on_error.as_deref() {
                None | Some("fail-closed") => PluginOnError::FailClosed,
                Some("fail-open") => PluginOnError::FailOpen,
                Some(other) => {
                    return Err(invalid(k("on_error"), format!("`{other}` is not one of: fail-closed, fail-open")))
                }
            };
            let fail_closed = match p.on_state_error.as_deref() {
                None | Some("fail-open") => false,
                Some("fail-closed") => true,
                Some(other) => {
                    return Err(invalid(k("on_state_error"), format!("`{other}` is not one of: fail-open, fail-closed")))
                }
            };
            let state = match p.state.as_deref() {
                None | Some("local") => PluginState::Local,
                Some("global") => PluginState::Global { fail_closed },
                Some(other) => return Err(invalid(k("state"), format!("`{other}` is not one of: local, global"))),
            };
            if p.on_state_error.is_some() && state == PluginState::Local {
                return Err(invalid(k("on_state_error"), "only used with state = \"global\""));
            }
            Ok(PluginRef { name: p.name.clone(), config_json, on_error, state })
        })
        .collect()
}
