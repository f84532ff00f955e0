//! Configuration: one TOML file, parsed into `raw` structs and validated into the
//! types below, which cannot hold an invalid value (every reference is an index
//! that exists, every weight is at least one, every address parses).

mod cluster;
mod discovery;
mod error;
mod locate;
mod plugins;
mod protocols;
mod raw;
mod resilience;
mod token;
mod validate;
mod written;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use cluster::ClusterConfig;
pub use discovery::{DiscoveryConfig, OnEmpty, ZooKeeperConfig};
pub use error::ConfigError;
pub use locate::{route_key, route_label};
pub use plugins::{PluginOnError, PluginRef, PluginState, PluginsConfig, StateConfig};
pub use protocols::{ListenerProtocol, ProxyProtocol, ServerTls, TcpProxy, UpstreamProtocol, UpstreamTls};
pub use resilience::{BreakerConfig, FallbackConfig, HealthCheckConfig, HealthCheckKind};
pub use token::AdminToken;
pub use written::{config_hash, Written};

/// A whole, validated gateway configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listeners: Vec<ListenerConfig>,
    pub routes: Vec<RouteConfig>,
    pub upstreams: Vec<UpstreamConfig>,
    pub runtime: RuntimeConfig,
    pub log: LogConfig,
    /// The admin listener (status, metrics, actions), when configured.
    pub admin: Option<AdminConfig>,
    /// The plugin runtime, when any route runs plugins.
    pub plugins: Option<PluginsConfig>,
    /// The file this config was read from (watched for reloads).
    pub source: Option<std::path::PathBuf>,
    pub security: SecurityConfig,
    /// The file as written, for `GET /status/config` and `config_hash`.
    pub as_written: Written,
    pub metrics: MetricsConfig,
    /// Trace export, when `[tracing]` is configured.
    pub tracing: Option<TracingConfig>,
    /// This gateway's fleet, when `[cluster]` is configured: it then serves
    /// the version ZooKeeper's `current` names, merged with this file.
    pub cluster: Option<ClusterConfig>,
}

/// `[tracing]`.
#[derive(Debug, Clone, PartialEq)]
pub struct TracingConfig {
    /// The collector's OTLP/HTTP traces URL (plain `http`).
    pub endpoint: http::Uri,
    /// Share of new traces (no sampled `traceparent`) that are recorded.
    pub sample_ratio: f64,
    pub service_name: String,
}

/// `[metrics]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Whether requests, upstream exchanges and plugin calls are counted and
    /// timed (default true; `false` is there to measure what they cost).
    pub enabled: bool,
}

/// `[security]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// Headers that carry an identity an auth plugin established: the list
    /// configured (default `x-consumer-id`) plus every plugin's `consumer_header`.
    pub identity_headers: Vec<http::HeaderName>,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub address: SocketAddr,
    pub limits: AdminLimits,
    /// Every admin request must carry it (`Authorization: Bearer`); required
    /// off loopback. Read from `token_file` or `token_env` at load and reload.
    pub token: Option<AdminToken>,
    /// Whether `GET /status/config` shows plugins' `config` values (they may hold secrets).
    pub show_plugin_config: bool,
}

/// What admin clients may cost us: the admin listener shares the process's file
/// descriptors with the listeners, so it must not be able to take them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminLimits {
    /// A request head must arrive completely within this; else the connection closes.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Open admin connections; more wait in the accept backlog.
    pub max_connections: usize,
}

impl Default for AdminLimits {
    fn default() -> AdminLimits {
        AdminLimits { header_timeout: Duration::from_secs(5), idle_timeout: Duration::from_secs(30), max_connections: 64 }
    }
}

#[derive(Debug, Clone)]
pub struct ListenerConfig {
    pub name: String,
    pub address: SocketAddr,
    pub protocol: ListenerProtocol,
    pub limits: Limits,
    /// How request paths are normalised before routing (`encoded_slashes`).
    pub path_rules: crate::request_target::PathRules,
}

/// What one client may cost us. The defaults are safe for a public listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A request head must arrive completely within this; else the connection closes.
    pub header_timeout: Duration,
    /// Request head (HTTP/1.1) or header list (HTTP/2) size; larger gets 431.
    pub max_header_bytes: usize,
    /// Request body size, by Content-Length or counted while streaming; larger gets 413.
    pub max_body_bytes: u64,
    /// A keep-alive connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Open connections per listener; more wait in the accept backlog.
    pub max_connections: usize,
    /// HTTP/2 streams open at once on one connection.
    pub max_concurrent_streams: u32,
    /// A request body that sends nothing for this long gets 408 and the connection closes.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            max_header_bytes: 32 * 1024,
            max_body_bytes: 64 * 1024 * 1024,
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_concurrent_streams: 100,
            body_timeout: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RouteConfig {
    /// The `name` written, or `route[<index>]` for a route without one.
    pub name: String,
    /// How messages name the route: `route "api"`, or `route[0]` without a name.
    pub label: String,
    /// Index into `Config::listeners`.
    pub listener: usize,
    pub host: Option<HostPattern>,
    /// Always starts with `/`; `/` matches everything.
    pub path_prefix: String,
    pub strip_prefix: bool,
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    /// Served instead of `503` when the upstream has no target to offer.
    pub fallback: Option<std::sync::Arc<FallbackConfig>>,
    /// Wasm middleware run for this route, in order.
    pub plugins: Vec<PluginRef>,
    /// Lower-cased protocol names a client may upgrade to (`websocket`); never `h2c`.
    pub upgrades: Vec<String>,
    /// Headers removed from the client's request before the plugins run: the
    /// ones auth plugins set (empty when the route trusts its clients' headers).
    pub identity_headers: Vec<http::HeaderName>,
}

/// `api.example.com` (exact, case-insensitive) or `*.example.com` (any subdomain).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Exact(String),
    /// Stored with its leading dot: `.example.com`.
    Suffix(String),
}

impl HostPattern {
    pub fn matches(&self, host: &str) -> bool {
        match self {
            HostPattern::Exact(h) => host.eq_ignore_ascii_case(h),
            HostPattern::Suffix(s) => {
                host.len() > s.len() && {
                    let tail = &host.as_bytes()[host.len() - s.len()..];
                    tail.eq_ignore_ascii_case(s.as_bytes())
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    pub name: String,
    pub balance: BalanceConfig,
    pub targets: Vec<TargetConfig>,
    pub timeouts: Timeouts,
    /// How many other targets a request may try after a connect failure.
    pub retries: u32,
    pub host_header: HostHeader,
    /// Idle keep-alive connections kept per target and worker.
    pub keepalive: usize,
    /// Where targets come from at run time; `targets` then only override weights.
    pub discovery: Option<DiscoveryConfig>,
    pub health_check: Option<HealthCheckConfig>,
    pub circuit_breaker: Option<BreakerConfig>,
    /// Requests waiting on this upstream at once; more get `503` (or the fallback).
    pub max_concurrent_requests: Option<usize>,
    /// HTTP/1.1, h2c or h2 towards the targets.
    pub protocol: UpstreamProtocol,
    /// TLS towards the targets (always set for `h2`).
    pub tls: Option<UpstreamTls>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BalanceConfig {
    Random,
    RoundRobin,
    WeightedRoundRobin,
    ConsistentHash { key: HashKey, replicas: u32 },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    Uri,
    ClientIp,
    /// Lower-cased header name. A request without it hashes by client ip.
    Header(http::HeaderName),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetConfig {
    pub address: SocketAddr,
    /// The address as written (`localhost:2003`), used as `Host` when `pass_host = "target"`.
    pub authority: String,
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// From the request being sent to the response head arriving.
    pub response: Duration,
    /// How long an idle upstream keep-alive connection is kept.
    pub idle: Duration,
}

/// What the upstream sees as `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostHeader {
    /// The client's `Host`, unchanged (the default).
    Pass,
    /// The chosen target's address.
    Target,
    /// A fixed value.
    Rewrite(http::HeaderValue),
}

#[derive(Debug, Clone, Copy)]
pub struct RuntimeConfig {
    /// Threads, each with its own event loop, listening socket and upstream pool.
    pub workers: usize,
    /// How long in-flight requests get to finish after SIGTERM/SIGINT.
    pub drain_timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub access: bool,
    pub level: String,
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object a line (fields, level, target, timestamp).
    Json,
}

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);
pub const DEFAULT_REPLICAS: u32 = 160;
/// As many as a worker has requests in flight to one target at once, or every
/// request past that opens and closes an upstream connection of its own.
pub const DEFAULT_KEEPALIVE: usize = 1024;

impl Config {
    /// Reads and validates a config file. Errors name the file, the key and the reason.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::new(path, "", format!("cannot read file: {e}")))?;
        let mut config = Config::parse(&text, path)?;
        config.source = Some(path.to_owned());
        Ok(config)
    }

    /// Parses config text; `path` is only used in error messages and as the
    /// folder relative paths start from.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        Config::parse_in(text, path, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses config text with relative paths starting from `base`; `path` names
    /// the text in error messages (a fleet version merged with a local file).
    pub fn parse_in(text: &str, path: &Path, base: &Path) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let raw: raw::RawConfig = serde_path_to_error::deserialize(de)
            .map_err(|e| ConfigError::from_parse(path, text, e))?;
        let mut config = validate::validate(raw, path, base).map_err(|(key, reason)| ConfigError::new(path, &key, reason))?;
        config.as_written = Written::parse(text, path).map_err(|reason| ConfigError::new(path, "", reason))?;
        Ok(config)
    }

    pub fn listener(&self, name: &str) -> Option<usize> {
        self.listeners.iter().position(|l| l.name == name)
    }
}
