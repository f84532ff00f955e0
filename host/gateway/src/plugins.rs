//! The gateway's side of the Wasm middleware: one plugin runtime, the plugins
//! loaded from the plugin folder, and each route's chain built from them.
//!
//! Everything here runs off the hot path (start-up and reloads). A configured
//! plugin (a plugin version initialised with one route's config, with its pool of
//! warm instances) is reused by the next reload when neither the plugin's bytes
//! nor the config changed, so a reload does not cool down unchanged routes.

use std::collections::HashMap;
use std::sync::Arc;

use wasmgate_plugin::{Chain, ConfiguredPlugin, OnError, PluginRuntime, PluginSet, PluginSetError, RuntimeSettings};

use crate::config::{PluginOnError, PluginsConfig, RouteConfig};

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
    #[error("route `{route}`: plugin `{plugin}` is not in {dir} (expected {plugin}.wasm)")]
    Missing { route: String, plugin: String, dir: String },
    #[error("route `{route}`: {reason}")]
    Configure { route: String, reason: String },
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

/// Key of a configured plugin: what it is and what it was given.
type Configured = (String, [u8; 32], String, PluginOnError);

pub struct Plugins {
    pub config: PluginsConfig,
    runtime: Arc<PluginRuntime>,
    set: PluginSet,
    configured: HashMap<Configured, Arc<ConfiguredPlugin>>,
}

impl Plugins {
    /// Starts a runtime and loads every plugin in the folder.
    pub fn load(config: &PluginsConfig) -> Result<Plugins, PluginsError> {
        let runtime = PluginRuntime::new(settings(config)).map_err(|e| PluginsError::Runtime(e.to_string()))?;
        let set = runtime.load_dir(&config.dir, None).map_err(PluginsError::Load)?;
        Ok(Plugins { config: config.clone(), runtime: Arc::new(runtime), set, configured: HashMap::new() })
    }

    /// Loads the folder again for a reload: unchanged files are not recompiled,
    /// unchanged (plugin, config) pairs keep their warm instances. New runtime
    /// settings mean a new runtime and a full reload.
    pub fn reload(&self, config: &PluginsConfig) -> Result<Plugins, PluginsError> {
        if !same_runtime(&self.config, config) {
            return Plugins::load(config);
        }
        let set = self.runtime.load_dir(&config.dir, Some(&self.set)).map_err(PluginsError::Load)?;
        Ok(Plugins { config: config.clone(), runtime: self.runtime.clone(), set, configured: self.configured.clone() })
    }

    /// The chain a route runs: each plugin initialised with the route's config.
    pub fn chain(&mut self, route: &RouteConfig) -> Result<Chain, PluginsError> {
        let mut chain = Vec::with_capacity(route.plugins.len());
        for reference in &route.plugins {
            let plugin = self.set.get(&reference.name).ok_or_else(|| PluginsError::Missing {
                route: route.name.clone(),
                plugin: reference.name.clone(),
                dir: self.config.dir.display().to_string(),
            })?;
            let key = (reference.name.clone(), *plugin.digest(), reference.config_json.clone(), reference.on_error);
            let configured = match self.configured.get(&key) {
                Some(configured) => configured.clone(),
                None => {
                    let on_error = match reference.on_error {
                        PluginOnError::FailClosed => OnError::FailClosed,
                        PluginOnError::FailOpen => OnError::FailOpen,
                    };
                    let configured = plugin
                        .configure(&reference.config_json, on_error)
                        .map_err(|e| PluginsError::Configure { route: route.name.clone(), reason: e.to_string() })?;
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
        self.configured.retain(|(name, digest, config, on_error), _| {
            digests.get(name.as_str()) == Some(digest)
                && routes.iter().flat_map(|r| &r.plugins).any(|p| {
                    p.name == *name && p.config_json == *config && p.on_error == *on_error
                })
        });
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

    /// `name version` of every loaded plugin, for logs.
    pub fn versions(&self) -> Vec<String> {
        self.set.iter().map(|(name, p)| format!("{name} {}", p.version())).collect()
    }
}

fn settings(config: &PluginsConfig) -> RuntimeSettings {
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
    PluginsConfig { watch: true, dir: b.dir.clone(), ..a.clone() } == PluginsConfig { watch: true, ..b.clone() }
}
