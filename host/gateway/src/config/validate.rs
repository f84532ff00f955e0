//! Raw config → validated config. Each failure is `(key, reason)`.

use std::collections::HashSet;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use super::raw::{RawConfig, RawListener, RawRoute, RawUpstream};
use super::*;
use crate::request_target::{route_prefix_problem, EncodedSlash, PathRules};

mod admin;
mod cluster;
mod discovery;
mod plugins;
mod protocols;
mod resilience;
mod security;
mod tracing;

type Invalid = (String, String);

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Invalid {
    (key.into(), reason.into())
}

/// `file` is the config file as named (for defaults derived from its name), `base` the folder relative paths start from.
pub fn validate(raw: RawConfig, file: &std::path::Path, base: &std::path::Path) -> Result<Config, Invalid> {
    if raw.listener.is_empty() {
        return Err(invalid("listener", "at least one [[listener]] is required"));
    }
    let upstreams = raw
        .upstream
        .iter()
        .enumerate()
        .map(|(i, u)| upstream(i, u, base))
        .collect::<Result<Vec<_>, _>>()?;
    check_unique(upstreams.iter().map(|u| u.name.as_str()), "upstream")?;
    let listeners = listeners(&raw.listener, &upstreams, base)?;
    let mut plugins = raw.plugins.as_ref().map(|p| plugins::plugins(p, base)).transpose()?;
    let mut routes = routes(&raw.route, &listeners, &upstreams, plugins.is_some())?;
    let state = raw.state.as_ref().map(plugins::state).transpose()?;
    if let Some(plugins) = plugins.as_mut() {
        plugins.used = routes.iter().flat_map(|r| &r.plugins).map(|p| p.name.clone()).collect();
        plugins.state = state;
    }
    plugins::check_state(&routes, plugins.as_ref().is_some_and(|p| p.state.is_some()))?;
    let security = security::security(&raw.security, &routes)?;
    security::apply(&security, &raw.route, &mut routes);
    protocols::check_routes(&routes, &listeners)?;

    let workers = match raw.runtime.workers {
        Some(0) => return Err(invalid("runtime.workers", "must be at least 1")),
        Some(n) => n,
        None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    };
    let runtime = RuntimeConfig {
        workers,
        drain_timeout: raw.runtime.drain_timeout.unwrap_or(Duration::from_secs(30)),
    };
    let level = raw.log.level.unwrap_or_else(|| "info".to_owned());
    if !["error", "warn", "info", "debug", "trace"].contains(&level.as_str()) {
        return Err(invalid("log.level", format!("`{level}` is not one of error, warn, info, debug, trace")));
    }
    let format = match raw.log.format.as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => return Err(invalid("log.format", format!("`{other}` is not one of text, json"))),
    };
    let log = LogConfig { access: raw.log.access.unwrap_or(true), level, format };
    let admin = raw.admin.as_ref().map(|a| admin::admin(a, base)).transpose()?;
    if let Some(admin) = &admin {
        if let Some(l) = listeners.iter().find(|l| admin.address.port() != 0 && l.address == admin.address) {
            return Err(invalid("admin.address", format!("{} is listener `{}`'s address", admin.address, l.name)));
        }
    }
    // `as_written` is filled in by `Config::parse`, which has the text.
    let as_written = Written::default();
    let metrics = MetricsConfig { enabled: raw.metrics.enabled.unwrap_or(true) };
    let tracing = raw.tracing.as_ref().map(tracing::tracing).transpose()?;
    let cluster = raw.cluster.as_ref().map(|c| cluster::cluster(c, file, base)).transpose()?;
    Ok(Config { listeners, routes, upstreams, runtime, log, admin, plugins, source: None, security, as_written, metrics, tracing, cluster })
}

fn check_unique<'a>(names: impl Iterator<Item = &'a str>, table: &str) -> Result<(), Invalid> {
    let mut seen = HashSet::new();
    for (i, name) in names.enumerate() {
        if name.is_empty() {
            return Err(invalid(format!("{table}[{i}].name"), "must not be empty"));
        }
        if !seen.insert(name) {
            return Err(invalid(format!("{table}[{i}].name"), format!("duplicate name `{name}`")));
        }
    }
    Ok(())
}

fn listeners(raw: &[RawListener], upstreams: &[UpstreamConfig], base: &std::path::Path) -> Result<Vec<ListenerConfig>, Invalid> {
    check_unique(raw.iter().map(|l| l.name.as_str()), "listener")?;
    let mut addresses = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, l)| {
            let key = |field: &str| format!("listener[{i}].{field}");
            let address: SocketAddr = l.address.parse().map_err(|_| {
                invalid(key("address"), format!("`{}` is not an ip:port address", l.address))
            })?;
            if address.port() != 0 && !addresses.insert(address) {
                return Err(invalid(key("address"), format!("{address} is used by another listener")));
            }
            let protocol = protocols::listener(l, &format!("listener[{i}]"), upstreams, base)?;
            let limits = limits(&l.limits, &key("limits"))?;
            let path_rules = path_rules(l, &protocol, &key("encoded_slashes"))?;
            Ok(ListenerConfig { name: l.name.clone(), address, protocol, limits, path_rules })
        })
        .collect()
}

fn path_rules(l: &RawListener, protocol: &ListenerProtocol, key: &str) -> Result<PathRules, Invalid> {
    let encoded_slash = match l.encoded_slashes.as_deref() {
        None | Some("refuse") => EncodedSlash::Refuse,
        Some("keep") => EncodedSlash::Keep,
        Some(other) => return Err(invalid(key, format!("`{other}` is not one of: refuse, keep"))),
    };
    if l.encoded_slashes.is_some() && matches!(protocol, ListenerProtocol::Tcp(_)) {
        return Err(invalid(key, "only applies to protocol = \"http\" or \"https\""));
    }
    Ok(PathRules { encoded_slash })
}

fn limits(raw: &super::raw::RawLimits, key: &str) -> Result<Limits, Invalid> {
    let d = Limits::default();
    let k = |field: &str| format!("{key}.{field}");
    let limits = Limits {
        header_timeout: positive(raw.header_timeout, d.header_timeout, &k("header_timeout"))?,
        max_header_bytes: raw.max_header_bytes.unwrap_or(d.max_header_bytes),
        max_body_bytes: raw.max_body_bytes.unwrap_or(d.max_body_bytes),
        idle_timeout: positive(raw.idle_timeout, d.idle_timeout, &k("idle_timeout"))?,
        max_connections: raw.max_connections.unwrap_or(d.max_connections),
        max_concurrent_streams: raw.max_concurrent_streams.unwrap_or(d.max_concurrent_streams),
        body_timeout: positive(raw.body_timeout, d.body_timeout, &k("body_timeout"))?,
    };
    if !(8192..=1024 * 1024).contains(&limits.max_header_bytes) {
        return Err(invalid(k("max_header_bytes"), "must be between 8192 and 1048576"));
    }
    if limits.max_connections == 0 {
        return Err(invalid(k("max_connections"), "must be at least 1"));
    }
    if limits.max_concurrent_streams == 0 {
        return Err(invalid(k("max_concurrent_streams"), "must be at least 1"));
    }
    Ok(limits)
}

fn upstream(i: usize, u: &RawUpstream, base: &std::path::Path) -> Result<UpstreamConfig, Invalid> {
    let key = |field: &str| format!("upstream[{i}].{field}");
    let (protocol, tls) = protocols::upstream(u, &format!("upstream[{i}]"), base)?;
    let balance = match u.balance.as_str() {
        "random" => BalanceConfig::Random,
        "round_robin" => BalanceConfig::RoundRobin,
        "weighted_round_robin" => BalanceConfig::WeightedRoundRobin,
        "consistent_hash" => {
            let key_text = u.hash_key.as_deref().unwrap_or("uri");
            let hash_key = hash_key(key_text).ok_or_else(|| {
                invalid(key("hash_key"), format!("`{key_text}` is not one of: uri, client_ip, header:<name>"))
            })?;
            let replicas = u.replicas.unwrap_or(DEFAULT_REPLICAS);
            if replicas == 0 || replicas > 10_000 {
                return Err(invalid(key("replicas"), "must be between 1 and 10000"));
            }
            BalanceConfig::ConsistentHash { key: hash_key, replicas }
        }
        other => {
            return Err(invalid(
                key("balance"),
                format!("`{other}` is not one of: random, round_robin, weighted_round_robin, consistent_hash"),
            ))
        }
    };
    if !matches!(balance, BalanceConfig::ConsistentHash { .. }) {
        if u.hash_key.is_some() {
            return Err(invalid(key("hash_key"), "only applies to balance = \"consistent_hash\""));
        }
        if u.replicas.is_some() {
            return Err(invalid(key("replicas"), "only applies to balance = \"consistent_hash\""));
        }
    }
    let discovery = u.discovery.as_ref().map(|d| discovery::discovery(d, &key("discovery"))).transpose()?;
    if u.targets.is_empty() && discovery.is_none() {
        return Err(invalid(key("targets"), "at least one target is required (or a `discovery` source)"));
    }
    let mut seen = HashSet::new();
    let targets = u
        .targets
        .iter()
        .enumerate()
        .map(|(t, target)| {
            let tkey = |field: &str| format!("upstream[{i}].targets[{t}].{field}");
            if target.weight == 0 {
                return Err(invalid(tkey("weight"), "must be at least 1"));
            }
            if target.weight > 10_000 {
                return Err(invalid(tkey("weight"), "must be at most 10000"));
            }
            let address = resolve(&target.address).map_err(|reason| invalid(tkey("address"), reason))?;
            if !seen.insert(address) {
                return Err(invalid(tkey("address"), format!("{address} is listed twice")));
            }
            Ok(TargetConfig { address, authority: target.address.clone(), weight: target.weight })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let timeouts = Timeouts {
        connect: positive(u.timeouts.connect, DEFAULT_CONNECT_TIMEOUT, &key("timeouts.connect"))?,
        response: positive(u.timeouts.response, DEFAULT_RESPONSE_TIMEOUT, &key("timeouts.response"))?,
        idle: positive(u.timeouts.idle, DEFAULT_IDLE_TIMEOUT, &key("timeouts.idle"))?,
    };
    let host_header = match (u.pass_host.as_deref().unwrap_or("pass"), &u.upstream_host) {
        ("pass", None) => HostHeader::Pass,
        ("target", None) => HostHeader::Target,
        ("rewrite", Some(host)) => HostHeader::Rewrite(
            http::HeaderValue::from_str(host)
                .map_err(|_| invalid(key("upstream_host"), "is not a valid header value"))?,
        ),
        ("rewrite", None) => {
            return Err(invalid(key("upstream_host"), "is required when pass_host = \"rewrite\""))
        }
        ("pass" | "target", Some(_)) => {
            return Err(invalid(key("upstream_host"), "only applies to pass_host = \"rewrite\""))
        }
        (other, _) => {
            return Err(invalid(key("pass_host"), format!("`{other}` is not one of: pass, target, rewrite")))
        }
    };
    let retries = u.retries.unwrap_or(1);
    if retries > 10 {
        return Err(invalid(key("retries"), "must be at most 10"));
    }
    Ok(UpstreamConfig {
        name: u.name.clone(),
        balance,
        targets,
        timeouts,
        retries,
        host_header,
        keepalive: u.keepalive.unwrap_or(DEFAULT_KEEPALIVE),
        discovery,
        health_check: u.health_check.as_ref().map(|h| resilience::health_check(h, &key("health_check"))).transpose()?,
        circuit_breaker: u.circuit_breaker.as_ref().map(|b| resilience::breaker(b, &key("circuit_breaker"))).transpose()?,
        max_concurrent_requests: match u.max_concurrent_requests {
            Some(0) => return Err(invalid(key("max_concurrent_requests"), "must be at least 1")),
            other => other,
        },
        protocol,
        tls,
    })
}

fn hash_key(text: &str) -> Option<HashKey> {
    match text {
        "uri" => Some(HashKey::Uri),
        "client_ip" => Some(HashKey::ClientIp),
        _ => {
            let name = text.strip_prefix("header:")?;
            http::HeaderName::from_bytes(name.trim().as_bytes()).ok().map(HashKey::Header)
        }
    }
}

fn positive(value: Option<Duration>, default: Duration, key: &str) -> Result<Duration, Invalid> {
    match value {
        Some(d) if d.is_zero() => Err(invalid(key, "must be greater than zero")),
        Some(d) => Ok(d),
        None => Ok(default),
    }
}

/// `ip:port` directly; `host:port` through the system resolver, once, at load time.
fn resolve(address: &str) -> Result<SocketAddr, String> {
    if let Ok(addr) = address.parse() {
        return Ok(addr);
    }
    if !address.contains(':') {
        return Err(format!("`{address}` has no port (expected host:port)"));
    }
    match address.to_socket_addrs() {
        Ok(mut addrs) => addrs.next().ok_or_else(|| format!("`{address}` resolves to no address")),
        Err(e) => Err(format!("`{address}` cannot be resolved: {e}")),
    }
}

fn routes(
    raw: &[RawRoute],
    listeners: &[ListenerConfig],
    upstreams: &[UpstreamConfig],
    have_plugin_runtime: bool,
) -> Result<Vec<RouteConfig>, Invalid> {
    let mut seen = HashSet::new();
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            let label = super::locate::route_label(r.name.as_deref(), i);
            let key = |field: &str| super::locate::route_key(&label, field);
            let listener = listeners
                .iter()
                .position(|l| l.name == r.listener)
                .ok_or_else(|| invalid(key("listener"), format!("unknown listener `{}`", r.listener)))?;
            let upstream = upstreams
                .iter()
                .position(|u| u.name == r.upstream)
                .ok_or_else(|| invalid(key("upstream"), format!("unknown upstream `{}`", r.upstream)))?;
            let host = r.host.as_deref().map(host_pattern).transpose().map_err(|reason| invalid(key("host"), reason))?;
            let path_prefix = r.path_prefix.clone().unwrap_or_else(|| "/".to_owned());
            if !path_prefix.starts_with('/') {
                return Err(invalid(key("path_prefix"), format!("`{path_prefix}` must start with `/`")));
            }
            if path_prefix.contains(['?', '#', ' ']) {
                return Err(invalid(key("path_prefix"), format!("`{path_prefix}` must be a plain path")));
            }
            if let Some(reason) = route_prefix_problem(&path_prefix) {
                return Err(invalid(key("path_prefix"), reason));
            }
            let name = r.name.clone().unwrap_or_else(|| format!("route[{i}]"));
            if name.is_empty() {
                return Err(invalid(key("name"), "must not be empty"));
            }
            if !seen.insert(name.clone()) {
                return Err(invalid(key("name"), format!("duplicate name `{name}`")));
            }
            let normalized_host = host.clone();
            if !seen.insert(format!("\0{listener}\0{normalized_host:?}\0{path_prefix}")) {
                return Err(invalid(
                    key("path_prefix"),
                    format!("another route on listener `{}` already has this host and path_prefix", r.listener),
                ));
            }
            let fallback = r.fallback.as_ref().map(|f| resilience::fallback(f, &key("fallback"))).transpose()?;
            let fallback = fallback.map(std::sync::Arc::new);
            let plugins = plugins::plugin_refs(&r.plugins, &key("plugins"), have_plugin_runtime)?;
            let upgrades = security::upgrades(r.upgrades.as_deref(), &key("upgrades"))?;
            Ok(RouteConfig {
                name,
                label,
                listener,
                host,
                path_prefix,
                strip_prefix: r.strip_prefix,
                upstream,
                fallback,
                plugins,
                upgrades,
                // Filled in by `security::apply` once every route's plugins are known.
                identity_headers: Vec::new(),
            })
        })
        .collect()
}

fn host_pattern(text: &str) -> Result<HostPattern, String> {
    let lower = text.trim().to_ascii_lowercase();
    let valid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if let Some(rest) = lower.strip_prefix("*.") {
        if valid(rest) {
            return Ok(HostPattern::Suffix(format!(".{rest}")));
        }
    } else if valid(&lower) {
        return Ok(HostPattern::Exact(lower));
    }
    Err(format!("`{text}` is not a host name or `*.domain` pattern"))
}
