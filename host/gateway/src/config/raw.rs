//! The config file as written: plain serde structs, every table `deny_unknown_fields`.
//! Nothing here is trusted; `validate` turns it into the types in `config.rs`.

use std::time::Duration;

use serde::Deserialize;

pub mod cluster;
mod discovery;
pub mod plugins;
mod protocols;
mod resilience;

pub use discovery::RawDiscovery;
pub use protocols::{RawCertificate, RawUpstreamTls};
pub use resilience::{RawAdmin, RawBreaker, RawFallback, RawHealthCheck};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub listener: Vec<RawListener>,
    #[serde(default)]
    pub route: Vec<RawRoute>,
    #[serde(default)]
    pub upstream: Vec<RawUpstream>,
    #[serde(default)]
    pub runtime: RawRuntime,
    #[serde(default)]
    pub log: RawLog,
    pub admin: Option<RawAdmin>,
    pub plugins: Option<plugins::RawPlugins>,
    /// `[state]`: the Redis that `state = "global"` plugin entries share.
    pub state: Option<plugins::RawState>,
    #[serde(default)]
    pub security: RawSecurity,
    #[serde(default)]
    pub metrics: RawMetrics,
    pub tracing: Option<RawTracing>,
    /// Take routes, upstreams and plugins from a fleet's ZooKeeper.
    pub cluster: Option<cluster::RawCluster>,
}

/// `[tracing]`: sampled requests exported as OpenTelemetry spans over OTLP/HTTP.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTracing {
    /// The collector's OTLP/HTTP traces URL (`http://127.0.0.1:4318/v1/traces`).
    pub endpoint: String,
    /// Share of new traces recorded, 0.0–1.0 (default 0.01).
    pub sample_ratio: Option<f64>,
    /// `service.name` of the spans (default `wasmgate`).
    pub service_name: Option<String>,
}

/// `[metrics]`: what `/metrics` on the admin listener counts.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMetrics {
    /// Record every request (default true); off only to measure what that costs.
    pub enabled: Option<bool>,
}

/// `[security]`: what the gateway owns of every incoming request.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecurity {
    /// Headers only the gateway's auth plugins may set (default `["x-consumer-id"]`).
    pub identity_headers: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListener {
    pub name: String,
    pub address: String,
    #[serde(default = "default_protocol")]
    pub protocol: String,
    #[serde(default)]
    pub limits: RawLimits,
    /// `https` only.
    #[serde(default)]
    pub certificates: Vec<RawCertificate>,
    /// `tcp` only: where connections go.
    pub upstream: Option<String>,
    /// `tcp` only: `v1` or `v2`.
    pub proxy_protocol: Option<String>,
    /// `refuse` (the default) or `keep`: what `%2F` in a request path does.
    pub encoded_slashes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    #[serde(default, with = "humantime_serde")]
    pub header_timeout: Option<Duration>,
    pub max_header_bytes: Option<usize>,
    pub max_body_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    pub max_connections: Option<usize>,
    pub max_concurrent_streams: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub body_timeout: Option<Duration>,
}

fn default_protocol() -> String {
    "http".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub name: Option<String>,
    pub listener: String,
    pub host: Option<String>,
    pub path_prefix: Option<String>,
    #[serde(default)]
    pub strip_prefix: bool,
    pub upstream: String,
    pub fallback: Option<RawFallback>,
    #[serde(default)]
    pub plugins: Vec<plugins::RawPluginRef>,
    /// Protocols a client may upgrade to on this route (default `["websocket"]`).
    pub upgrades: Option<Vec<String>>,
    /// Pass the client's identity headers (see `[security]`) instead of removing them.
    #[serde(default)]
    pub trust_identity_headers: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUpstream {
    pub name: String,
    #[serde(default = "default_balance")]
    pub balance: String,
    pub hash_key: Option<String>,
    pub replicas: Option<u32>,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    #[serde(default)]
    pub timeouts: RawTimeouts,
    pub retries: Option<u32>,
    pub pass_host: Option<String>,
    pub upstream_host: Option<String>,
    pub keepalive: Option<usize>,
    pub discovery: Option<RawDiscovery>,
    pub health_check: Option<RawHealthCheck>,
    pub circuit_breaker: Option<RawBreaker>,
    pub max_concurrent_requests: Option<usize>,
    pub protocol: Option<String>,
    pub tls: Option<RawUpstreamTls>,
}

fn default_balance() -> String {
    "round_robin".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub address: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTimeouts {
    #[serde(default, with = "humantime_serde")]
    pub connect: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub response: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub idle: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRuntime {
    pub workers: Option<usize>,
    #[serde(default, with = "humantime_serde")]
    pub drain_timeout: Option<Duration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    pub access: Option<bool>,
    pub level: Option<String>,
    /// `text` (default) or `json` (one JSON object a line).
    pub format: Option<String>,
}
