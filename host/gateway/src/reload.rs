//! Hot reload: when the config file or a plugin changes, build the complete new
//! state off the hot path (read and validate the config, compile changed plugins,
//! initialise every route's chain) and swap it in with one atomic store. Requests
//! in flight finish on the state they started with. Anything that fails leaves
//! the running state untouched and is logged with its file, plugin and reason.
//!
//! What changed is a typed `Diff` of the running and the new config; what it
//! names is applied live (listeners bound before the swap and drained after
//! it, the admin listener rebound, upstreams rebuilt by `State::build`), but
//! for what a running process cannot change, refused by name.

pub mod diff;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use wasmgate_plugin::watch::Watcher;

use crate::config::{config_hash, Config, ConfigError};
use crate::plugins::{IgnoredPlugin, LoadedPlugin, Plugins, PluginsError};
use crate::server::{BindError, Listeners};
use crate::state::State;
use diff::Diff;

/// How long files must be quiet before a change is acted on (a copy in progress
/// keeps producing events, so it is never loaded half-written).
const SETTLE: Duration = Duration::from_millis(200);

/// Reload outcomes kept for the dashboard's reload log.
const RECENT_RELOADS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config is invalid, or a route's plugin entry cannot run: at its
    /// file, line and key.
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Plugins(PluginsError),
    /// What would need a restart, after the config file's name.
    #[error("{0} (restart the gateway to apply it)")]
    NeedsRestart(String),
    /// A new listener (or admin) address could not be bound: after the config file's name.
    #[error("{0}")]
    Bind(String),
}

impl From<PluginsError> for ReloadError {
    fn from(error: PluginsError) -> ReloadError {
        match error {
            PluginsError::Route(error) => ReloadError::Config(error),
            other => ReloadError::Plugins(other),
        }
    }
}

/// The serving config and plugins, and where the live state is published.
pub struct Reloader {
    state: Arc<ArcSwap<State>>,
    /// The plugin runtime and folder the next reload builds on; holding the lock
    /// is what makes reloads one at a time.
    plugins: Mutex<Option<Plugins>>,
    /// What serves now, readable without waiting for a reload in progress.
    running: ArcSwap<Running>,
    /// The last reload that was refused, until one succeeds.
    refused: ArcSwapOption<Refusal>,
    /// The last `RECENT_RELOADS` reload outcomes, oldest first (the dashboard's log).
    recent: Mutex<VecDeque<ReloadOutcome>>,
    /// Counts the states swapped in, for the control plane to follow at once.
    swapped: tokio::sync::watch::Sender<u64>,
    /// The listeners being served, once the gateway has started them: what
    /// binds and retires listeners a reload adds, moves or removes.
    listeners: OnceLock<Arc<Listeners>>,
}

/// One reload's result, as the dashboard's reload log shows it.
#[derive(Debug, Clone)]
pub struct ReloadOutcome {
    pub at: SystemTime,
    /// `Ok(new config hash)` or `Err(why it was refused)`.
    pub result: Result<String, String>,
}

/// The config and plugins serving now.
pub struct Running {
    pub config: Config,
    /// `config_hash(&config)`.
    pub hash: String,
    /// Every plugin loaded: those routes name.
    pub plugins: Vec<LoadedPlugin>,
    /// Files of the plugin folder no route names: not loaded.
    pub ignored: Vec<IgnoredPlugin>,
    /// When this config was applied (the start, or the last successful reload).
    pub since: SystemTime,
    /// The Redis state backend (`[state]`), for its status.
    pub global_state: Option<std::sync::Arc<wasmgate_plugin::GlobalState>>,
}

impl Running {
    fn new(config: Config, plugins: Option<&Plugins>) -> Running {
        Running {
            hash: config_hash(&config),
            plugins: plugins.map(Plugins::loaded).unwrap_or_default(),
            ignored: plugins.map(Plugins::ignored).unwrap_or_default(),
            global_state: plugins.and_then(|p| p.global_state().cloned()),
            config,
            since: SystemTime::now(),
        }
    }
}

/// A refused reload, as the admin API shows it.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub at: SystemTime,
    pub message: String,
    /// Plugin files that did not load: (plugin name, why).
    pub plugin_failures: Vec<(String, String)>,
}

impl Reloader {
    pub fn new(state: Arc<ArcSwap<State>>, config: Config, plugins: Option<Plugins>) -> Arc<Reloader> {
        let running = ArcSwap::from_pointee(Running::new(config, plugins.as_ref()));
        state.load().metrics.plugins_loaded(running.load().plugins.len() as u64, 0);
        Arc::new(Reloader {
            state,
            plugins: Mutex::new(plugins),
            running,
            refused: ArcSwapOption::empty(),
            recent: Mutex::new(VecDeque::with_capacity(RECENT_RELOADS)),
            swapped: tokio::sync::watch::Sender::new(0),
            listeners: OnceLock::new(),
        })
    }

    /// From now on, reloads add, move and remove `listeners`' sockets.
    pub fn serve_with(&self, listeners: Arc<Listeners>) {
        let _ = self.listeners.set(listeners);
    }

    /// Changes each time a reload swaps in a new state.
    pub fn swaps(&self) -> tokio::sync::watch::Receiver<u64> {
        self.swapped.subscribe()
    }

    /// The config and plugins serving now.
    pub fn running(&self) -> Arc<Running> {
        self.running.load_full()
    }

    /// The config file a reload reads (as given on the command line).
    pub fn config_file(&self) -> PathBuf {
        let running = self.running.load();
        running.config.source.clone().unwrap_or_else(|| running.config.as_written.file().to_owned())
    }

    /// Why the last reload was refused, unless one succeeded since.
    pub fn refused(&self) -> Option<Arc<Refusal>> {
        self.refused.load_full()
    }

    /// The last few reload outcomes, oldest first.
    pub fn recent_reloads(&self) -> Vec<ReloadOutcome> {
        self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).iter().cloned().collect()
    }

    fn record(&self, result: Result<String, String>) {
        let mut recent = self.recent.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if recent.len() == RECENT_RELOADS {
            recent.pop_front();
        }
        recent.push_back(ReloadOutcome { at: SystemTime::now(), result });
    }

    /// Applies `config`, or the config file read again when `None`, with the
    /// plugin folder as it is now. On error nothing changes (the error is kept
    /// for the admin API until a reload succeeds).
    pub fn reload(&self, config: Option<Config>) -> Result<(), ReloadError> {
        let mut current = self.plugins.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let before = self.running.load_full();
        let metrics = self.state.load().metrics.clone();
        match self.apply(&mut current, config) {
            Ok(()) => {
                self.refused.store(None);
                let after = self.running.load_full();
                let new = after.plugins.iter().filter(|p| !before.plugins.iter().any(|b| b.sha256 == p.sha256));
                metrics.plugins_loaded(new.count() as u64, 0);
                metrics.reloaded(Ok(after.hash.clone()));
                self.record(Ok(after.hash.clone()));
                Ok(())
            }
            Err(e) => {
                if let ReloadError::Plugins(PluginsError::Load(set)) = &e {
                    metrics.plugins_loaded(0, set.failures.len() as u64);
                }
                metrics.reloaded(Err(()));
                self.record(Err(e.to_string()));
                self.refused.store(Some(Arc::new(Refusal::of(&e))));
                Err(e)
            }
        }
    }

    fn apply(&self, current: &mut Option<Plugins>, config: Option<Config>) -> Result<(), ReloadError> {
        let running = self.running.load_full();
        let config = match config {
            Some(config) => config,
            // Without a config file (a config given as text), a reload re-reads
            // the plugin folder with the config as it is.
            None => match &running.config.source {
                Some(source) => Config::load(source)?,
                None => running.config.clone(),
            },
        };
        let diff = Diff::of(&running.config, &config);
        let file = config.as_written.file().display().to_string();
        if let Some(what) = diff.needs_restart() {
            return Err(ReloadError::NeedsRestart(format!("{file}: {what}")));
        }
        let sockets = diff.changes.iter().any(|c| {
            use diff::Change::*;
            matches!(c, ListenerAdded { .. } | ListenerRemoved { .. } | ListenerMoved { .. } | AdminAdded(_) | AdminRemoved | AdminMoved { .. } | AdminLimitsChanged)
        });
        let listeners = match (sockets, self.listeners.get()) {
            (true, None) => {
                return Err(ReloadError::NeedsRestart(format!("{file}: listeners changed before the gateway started serving")));
            }
            (_, listeners) => listeners,
        };
        let mut plugins = match (&*current, &config.plugins) {
            (_, None) => None,
            (Some(old), Some(new)) => Some(old.reload(new)?),
            (None, Some(new)) => Some(Plugins::load(new)?),
        };
        let previous = self.state.load_full();
        let state = Arc::new(State::build(&config, plugins.as_mut(), Some(&previous))?);
        // New sockets are bound before anything is swapped in; a bind failure
        // refuses the reload and leaves everything as it was.
        let prepared = match listeners {
            Some(listeners) => Some(listeners.prepare(&diff, &config, &previous).map_err(|e| bind_error(&file, e))?),
            None => None,
        };
        if let Some(plugins) = plugins.as_mut() {
            plugins.retain_used(&config.routes);
        }
        self.state.store(state.clone());
        if let (Some(listeners), Some(prepared)) = (listeners, prepared) {
            listeners.commit(prepared, &state);
        }
        self.swapped.send_modify(|n| *n += 1);
        if !diff.is_empty() {
            tracing::info!(changes = %diff.to_string().trim_end().replace('\n', "; "), "config changes applied");
        }
        tracing::info!(
            config = %config.as_written.file().display(),
            routes = config.routes.len(),
            upstreams = config.upstreams.len(),
            plugins = ?plugins.as_ref().map(Plugins::versions).unwrap_or_default(),
            "reloaded"
        );
        crate::logging::configured_level(&config.log.level);
        self.running.store(Arc::new(Running::new(config, plugins.as_ref())));
        *current = plugins;
        Ok(())
    }

    /// Watches the config file and the plugin folder; reloads when they settle.
    pub fn watch(self: &Arc<Self>) -> Option<Watcher> {
        let paths: Vec<PathBuf> = {
            let running = self.running.load();
            let plugins = running.config.plugins.as_ref().filter(|p| p.watch).map(|p| p.dir.clone());
            running.config.source.clone().into_iter().chain(plugins).collect()
        };
        if paths.is_empty() {
            return None;
        }
        let reloader = self.clone();
        let watched = paths.clone();
        match Watcher::spawn(&paths, SETTLE, move |changed| {
            let config = reloader.config_file();
            tracing::info!(config = %config.display(), ?changed, "files changed: reloading");
            if let Err(e) = reloader.reload(None) {
                tracing::error!(config = %config.display(), error = %e, "reload refused; still serving the previous config and plugins");
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

/// A bind failure, after the config file's name.
fn bind_error(file: &str, error: BindError) -> ReloadError {
    ReloadError::Bind(format!("{file}: {error}"))
}

impl Refusal {
    fn of(error: &ReloadError) -> Refusal {
        let plugin_failures = match error {
            ReloadError::Plugins(PluginsError::Load(set)) => set
                .failures
                .iter()
                .map(|(file, e)| {
                    // A `.wasm` file is named by its plugin; anything else (the folder) by its path.
                    let name = match file.extension().is_some_and(|e| e == "wasm") {
                        true => file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default(),
                        false => file.display().to_string(),
                    };
                    (name, e.to_string())
                })
                .collect(),
            _ => Vec::new(),
        };
        Refusal { at: SystemTime::now(), message: error.to_string(), plugin_failures }
    }
}
