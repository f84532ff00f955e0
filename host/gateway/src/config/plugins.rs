//! Validated plugin settings: where plugins live, how they run, and which ones a
//! route runs in which order.

use std::path::PathBuf;
use std::time::Duration;

/// `[plugins]`: the runtime every route's chain runs on.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginsConfig {
    /// Folder of `<name>.wasm` files (absolute, or relative to the working directory).
    pub dir: PathBuf,
    pub call_deadline: Duration,
    pub memory_limit: usize,
    pub pool_size: usize,
    pub max_uses: u64,
    pub max_body: usize,
    pub max_instances: u32,
    pub cache_dir: Option<PathBuf>,
    /// Reload when a plugin or the config file changes.
    pub watch: bool,
    /// The plugins routes name: only these files of `dir` are loaded, the
    /// others are ignored (with a warning), so a stray file cannot fail a reload.
    pub used: std::collections::BTreeSet<String>,
    /// `[state]`: where `state = "global"` entries keep their buckets.
    pub state: Option<StateConfig>,
}

/// One entry of a route's `plugins = [...]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    pub name: String,
    /// The plugin's config as JSON text (`{}` when none was given).
    pub config_json: String,
    pub on_error: PluginOnError,
    /// Where the plugin's token buckets live.
    pub state: PluginState,
}

/// `state = "local" | "global"` of a plugin entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PluginState {
    /// This gateway's memory (the default).
    #[default]
    Local,
    /// `[state]`'s Redis, shared by the fleet; `fail_closed`: answer 503
    /// while Redis is down instead of limiting locally.
    Global { fail_closed: bool },
}

/// `[state]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateConfig {
    pub redis: String,
    pub fleet_size: u32,
    pub sync_interval: Duration,
    pub timeout: Duration,
    pub key_prefix: String,
}

/// What a failing plugin does to its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PluginOnError {
    /// Answer 500: the default, so a broken auth plugin lets nothing through.
    FailClosed,
    /// Skip the plugin for that request.
    FailOpen,
}
