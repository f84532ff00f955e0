//! Health checks, circuit breakers and fallback responses, as written.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealthCheck {
    pub kind: Option<String>,
    pub path: Option<String>,
    #[serde(default, with = "humantime_serde")]
    pub interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    pub unhealthy_after: Option<u32>,
    pub healthy_after: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreaker {
    pub error_percent: Option<u32>,
    pub request_volume: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub window: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub sleep_window: Option<Duration>,
    pub half_open_requests: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFallback {
    pub status: Option<u16>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    pub address: String,
    #[serde(default)]
    pub limits: RawAdminLimits,
    /// A file holding the bearer token every admin request must carry (relative to the config file).
    pub token_file: Option<String>,
    /// An environment variable holding that token.
    pub token_env: Option<String>,
    /// Show plugins' `config` values in `GET /status/config` (default false: redacted).
    pub show_plugin_config: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdminLimits {
    #[serde(default, with = "humantime_serde")]
    pub header_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub idle_timeout: Option<Duration>,
    pub max_connections: Option<usize>,
}
