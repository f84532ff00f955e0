//! Hot reload: when the config file or a plugin changes, build the complete new
//! state off the hot path (read and validate the config, compile changed plugins,
//! initialise every route's chain) and swap it in with one atomic store. Requests
//! in flight finish on the state they started with. Anything that fails leaves
//! the running state untouched and is logged with its file, plugin and reason.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use wasmgate_plugin::watch::Watcher;

use crate::config::{Config, ConfigError};
use crate::plugins::{Plugins, PluginsError};
use crate::state::State;

/// How long files must be quiet before a change is acted on (a copy in progress
/// keeps producing events, so it is never loaded half-written).
const SETTLE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Plugins(#[from] PluginsError),
    #[error("{0} (restart the gateway to apply it)")]
    NeedsRestart(String),
}

/// The serving config and plugins, and where the live state is published.
pub struct Reloader {
    state: Arc<ArcSwap<State>>,
    current: Mutex<Current>,
}

struct Current {
    config: Config,
    plugins: Option<Plugins>,
}

impl Reloader {
    pub fn new(state: Arc<ArcSwap<State>>, config: Config, plugins: Option<Plugins>) -> Arc<Reloader> {
        Arc::new(Reloader { state, current: Mutex::new(Current { config, plugins }) })
    }

    /// Applies `config`, or the config file read again when `None`, with the
    /// plugin folder as it is now. On error nothing changes.
    pub fn reload(&self, config: Option<Config>) -> Result<(), ReloadError> {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let config = match config {
            Some(config) => config,
            // Without a config file (a config given as text), a reload re-reads
            // the plugin folder with the config as it is.
            None => match &current.config.source {
                Some(source) => Config::load(source)?,
                None => current.config.clone(),
            },
        };
        restartless(&current.config, &config)?;
        let mut plugins = match (&current.plugins, &config.plugins) {
            (_, None) => None,
            (Some(old), Some(new)) => Some(old.reload(new)?),
            (None, Some(new)) => Some(Plugins::load(new)?),
        };
        let previous = self.state.load_full();
        let state = State::build(&config, plugins.as_mut(), Some(&previous))?;
        if let Some(plugins) = plugins.as_mut() {
            plugins.retain_used(&config.routes);
        }
        self.state.store(Arc::new(state));
        tracing::info!(
            routes = config.routes.len(),
            upstreams = config.upstreams.len(),
            plugins = ?plugins.as_ref().map(Plugins::versions).unwrap_or_default(),
            "reloaded"
        );
        *current = Current { config, plugins };
        Ok(())
    }

    /// Watches the config file and the plugin folder; reloads when they settle.
    pub fn watch(self: &Arc<Self>) -> Option<Watcher> {
        let paths: Vec<PathBuf> = {
            let current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let plugins = current.config.plugins.as_ref().filter(|p| p.watch).map(|p| p.dir.clone());
            current.config.source.clone().into_iter().chain(plugins).collect()
        };
        if paths.is_empty() {
            return None;
        }
        let reloader = self.clone();
        let watched = paths.clone();
        match Watcher::spawn(&paths, SETTLE, move |changed| {
            tracing::info!(?changed, "files changed: reloading");
            if let Err(e) = reloader.reload(None) {
                tracing::error!(error = %e, "reload refused; still serving the previous config and plugins");
            }
        }) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::error!(paths = ?watched, error = %e, "cannot watch for changes; hot reload is off");
                None
            }
        }
    }
}

/// What a reload cannot change in a running process: the sockets it listens on,
/// and the background tasks (discovery, health checks) of its upstreams.
fn restartless(old: &Config, new: &Config) -> Result<(), ReloadError> {
    let sockets = |c: &Config| -> Vec<(String, std::net::SocketAddr)> {
        c.listeners.iter().map(|l| (l.name.clone(), l.address)).collect()
    };
    if sockets(old) != sockets(new) {
        return Err(ReloadError::NeedsRestart("listeners were added, removed or moved".into()));
    }
    if format!("{:?}", old.admin) != format!("{:?}", new.admin) {
        return Err(ReloadError::NeedsRestart("[admin] changed".into()));
    }
    if old.runtime.workers != new.runtime.workers {
        return Err(ReloadError::NeedsRestart("runtime.workers changed".into()));
    }
    for upstream in &new.upstreams {
        let background = |u: &crate::config::UpstreamConfig| format!("{:?} {:?}", u.discovery, u.health_check);
        let before = old.upstreams.iter().find(|u| u.name == upstream.name);
        let changed = match before {
            Some(before) => background(before) != background(upstream),
            None => upstream.discovery.is_some() || upstream.health_check.is_some(),
        };
        if changed {
            return Err(ReloadError::NeedsRestart(format!(
                "upstream `{}`: discovery or health checks changed",
                upstream.name
            )));
        }
    }
    Ok(())
}
