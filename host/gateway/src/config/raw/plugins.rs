//! `[plugins]` and a route's `plugins = [...]`, as written.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlugins {
    /// Folder of `<name>.wasm` files, relative to the config file.
    pub dir: PathBuf,
    #[serde(default, with = "humantime_serde")]
    pub call_deadline: Option<Duration>,
    pub memory_limit_mb: Option<usize>,
    pub pool_size: Option<usize>,
    pub max_uses: Option<u64>,
    pub max_body_bytes: Option<usize>,
    pub max_instances: Option<u32>,
    /// Where compiled plugins are cached between runs, relative to the config file.
    pub cache_dir: Option<PathBuf>,
    /// Watch `dir` and the config file and reload on change (default true).
    pub watch: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPluginRef {
    pub name: String,
    /// Handed to the plugin's `init` as JSON.
    pub config: Option<toml::Value>,
    pub on_error: Option<String>,
    /// `local` (default) or `global`: the plugin's token buckets in `[state]`'s Redis.
    pub state: Option<String>,
    /// With `state = "global"`: `fail-open` (default) or `fail-closed` while Redis is down.
    pub on_state_error: Option<String>,
}

/// `[state]`: the Redis a fleet of gateways keeps global plugin state in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// `redis://host:port[/db]`.
    pub redis: String,
    /// Gateways sharing the limits (default 1).
    pub fleet_size: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub sync_interval: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    pub key_prefix: Option<String>,
}
