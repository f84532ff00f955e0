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
}
