//! The gateway's side of the Wasm middleware: one plugin runtime, the plugins
//! loaded from the plugin folder, and each route's chain built from them.
//!
//! Everything here runs off the hot path (start-up and reloads). A configured
//! plugin (a plugin version initialised with one route's config, with its pool of
//! warm instances) is reused by the next reload when neither the plugin's bytes
//! nor the config changed, so a reload does not cool down unchanged routes.

mod refusal;

use std::collections::HashMap;
use std::sync::Arc;

use wasmgate_plugin::{
    Chain, ConfiguredPlugin, GlobalBinding, GlobalSettings, GlobalState, OnError, OnStateError, PluginRuntime, PluginSet,
    PluginSetError, RuntimeSettings,
};

use crate::config::{Config, ConfigError, PluginOnError, PluginState, PluginsConfig, RouteConfig, StateConfig};

pub use wasmgate_plugin::{RequestContext, RequestOutcome, ResponseOutcome};

/// Why plugins could not be loaded or a chain built, with the file, plugin and
/// route it concerns.
#[derive(Debug, thiserror::Error)]
pub enum PluginsError {
    #[error("cannot start the plugin runtime: {0}")]
    Runtime(String),
    /// Files of the plugin folder that did not load, each with why.
    #[error("{0}")]
    Load(PluginSetError),
    /// A route's plugin entry that cannot run (no such plugin, a config its
    /// `init` refuses), at its place in the config file.
    #[error("{0}")]
    Route(ConfigError),
}

/// A plugin of the folder as loaded: what the admin API shows of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedPlugin {
    pub name: String,
    /// The short hash naming this version in logs.
    pub version: String,
    /// SHA-256 of the `.wasm` file, hex.
    pub sha256: String,
}

/// A file of the plugin folder no route names: not loaded, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredPlugin {
    pub name: String,
    pub file: std::path::PathBuf,
    pub reason: &'static str,
}

/// Why a plugin file is not loaded although it is in the folder.
pub const UNUSED: &str = "no route names it";

/// Key of a configured plugin: what it is and what it was given.
type Configured = (String, [u8; 32], String, PluginOnError, PluginState);

pub struct Plugins {
    pub config: PluginsConfig,
    runtime: Arc<PluginRuntime>,
    set: PluginSet,
    configured: HashMap<Configured, Arc<ConfiguredPlugin>>,
    /// The Redis state backend (`[state]`), for `state = "global"` entries.
    global: Option<Arc<GlobalState>>,
}

impl Plugins {
    /// Starts a runtime and loads the plugins of the folder that routes name
    /// (`config.used`); the folder's other files are ignored, with a warning.
    pub fn load(config: &PluginsConfig) -> Result<Plugins, PluginsError> {
        let runtime = PluginRuntime::new(settings(config)).map_err(|e| PluginsError::Runtime(e.to_string()))?;
        let set = runtime.load_dir_for(&config.dir, None, &|name| config.used.contains(name)).map_err(PluginsError::Load)?;
        let global = config.state.as_ref().map(start_global).transpose()?;
        let plugins = Plugins { config: config.clone(), runtime: Arc::new(runtime), set, configured: HashMap::new(), global };
        plugins.warn_ignored();
        Ok(plugins)
    }

    /// Loads the folder again for a reload: unchanged files are not recompiled,
    /// unchanged (plugin, config) pairs keep their warm instances. New runtime
    /// settings mean a new runtime and a full reload.
    pub fn reload(&self, config: &PluginsConfig) -> Result<Plugins, PluginsError> {
        if !same_runtime(&self.config, config) {
            return Plugins::load(config);
        }
        let used = |name: &str| config.used.contains(name);
        let set = self.runtime.load_dir_for(&config.dir, Some(&self.set), &used).map_err(PluginsError::Load)?;
        let plugins = Plugins {
            config: config.clone(),
            runtime: self.runtime.clone(),
            set,
            configured: self.configured.clone(),
            global: self.global.clone(),
        };
        plugins.warn_ignored();
        Ok(plugins)
    }

    fn warn_ignored(&self) {
        for ignored in self.ignored() {
            tracing::warn!(plugin = %ignored.name, file = %ignored.file.display(), "plugin file ignored: {}", ignored.reason);
        }
    }

    /// The chain route `index` of `config` runs: each plugin initialised with
    /// the route's config. Errors point at the route's entry in the file.
    pub fn chain(&mut self, config: &Config, index: usize) -> Result<Chain, PluginsError> {
        let Some(route) = config.routes.get(index) else { return Ok(Chain::default()) };
        let mut chain = Vec::with_capacity(route.plugins.len());
        for (at, reference) in route.plugins.iter().enumerate() {
            let plugin = self.set.get(&reference.name).ok_or_else(|| {
                let reason = refusal::missing(&reference.name, &self.config.dir, &self.set.available());
                PluginsError::Route(config.route_error(index, &format!("plugins[{at}].name"), reason))
            })?;
            let key =
                (reference.name.clone(), *plugin.digest(), reference.config_json.clone(), reference.on_error, reference.state);
            let configured = match self.configured.get(&key) {
                Some(configured) => configured.clone(),
                None => {
                    let on_error = match reference.on_error {
                        PluginOnError::FailClosed => OnError::FailClosed,
                        PluginOnError::FailOpen => OnError::FailOpen,
                    };
                    let global = match (reference.state, &self.global) {
                        (PluginState::Global { fail_closed }, Some(state)) => {
                            let on_error = if fail_closed { OnStateError::FailClosed } else { OnStateError::FailOpen };
                            Some(GlobalBinding::new(state.clone(), on_error))
                        }
                        // `validate` refuses `global` without `[state]`.
                        _ => None,
                    };
                    let configured = plugin.configure_with_state(&reference.config_json, on_error, global).map_err(|e| {
                        let (key, reason) = refusal::configure(at, &e);
                        PluginsError::Route(config.route_error(index, &key, reason))
                    })?;
                    self.configured.insert(key, configured.clone());
                    configured
                }
            };
            chain.push(configured);
        }
        Ok(Chain::new(chain))
    }

    /// Forgets configured plugins no route uses any more (after a reload).
    pub fn retain_used(&mut self, routes: &[RouteConfig]) {
        let digests: HashMap<&str, [u8; 32]> = self.set.iter().map(|(name, p)| (name, *p.digest())).collect();
        self.configured.retain(|(name, digest, config, on_error, state), _| {
            digests.get(name.as_str()) == Some(digest)
                && routes.iter().flat_map(|r| &r.plugins).any(|p| {
                    p.name == *name && p.config_json == *config && p.on_error == *on_error && p.state == *state
                })
        });
    }

    /// The Redis state backend, when `[state]` is configured.
    pub fn global_state(&self) -> Option<&Arc<GlobalState>> {
        self.global.as_ref()
    }

    /// Every loaded plugin, by name, for the admin API.
    pub fn loaded(&self) -> Vec<LoadedPlugin> {
        self.set
            .iter()
            .map(|(name, p)| LoadedPlugin {
                name: name.to_owned(),
                version: p.version().to_owned(),
                sha256: p.digest().iter().map(|b| format!("{b:02x}")).collect(),
            })
            .collect()
    }

    /// The files of the folder no route names, which were not loaded.
    pub fn ignored(&self) -> Vec<IgnoredPlugin> {
        self.set
            .ignored()
            .iter()
            .map(|(name, file)| IgnoredPlugin { name: name.clone(), file: file.clone(), reason: UNUSED })
            .collect()
    }

    /// `name version` of every loaded plugin, for logs.
    pub fn versions(&self) -> Vec<String> {
        self.set.iter().map(|(name, p)| format!("{name} {}", p.version())).collect()
    }
}

/// Starts the Redis state backend of `[state]` (Redis being down is no error).
fn start_global(state: &StateConfig) -> Result<Arc<GlobalState>, PluginsError> {
    let settings = GlobalSettings {
        fleet_size: state.fleet_size,
        sync_interval: state.sync_interval,
        timeout: state.timeout,
        key_prefix: state.key_prefix.clone(),
        ..GlobalSettings::new(state.redis.clone())
    };
    GlobalState::start(settings).map_err(PluginsError::Runtime)
}

pub(crate) fn settings(config: &PluginsConfig) -> RuntimeSettings {
    RuntimeSettings {
        call_deadline: config.call_deadline,
        memory_limit: config.memory_limit,
        max_instances: config.max_instances,
        pool_size: config.pool_size,
        max_uses: config.max_uses,
        max_body: config.max_body,
        cache_dir: config.cache_dir.clone(),
        ..RuntimeSettings::default()
    }
}

fn same_runtime(a: &PluginsConfig, b: &PluginsConfig) -> bool {
    let settings_only = |c: &PluginsConfig| PluginsConfig { watch: true, dir: b.dir.clone(), used: Default::default(), ..c.clone() };
    settings_only(a) == settings_only(b)
}
