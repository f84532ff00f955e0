//! Log output: human-readable lines on stdout, written by a background thread so a
//! request never waits on the terminal. Access lines use the target `access`.
//!
//! The level filter sits behind tracing-subscriber's reload handle: the admin API
//! raises it for a while (`PUT /log-level`, which always expires) and a config
//! reload applies a new `[log] level`. Only an event that is logged pays for
//! that (a read lock, never contended but by a level change); a disabled one is
//! still cut off by the callsite cache.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::{LogConfig, LogFormat};

/// The level control of the subscriber `init` installed (none in embedders and tests that did not call it).
static LEVELS: OnceLock<Levels> = OnceLock::new();

/// Lines the background writer dropped because its queue was full (for `/metrics`).
static DROPPED: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// Log lines dropped so far; `None` when `init` did not install the logger.
pub fn dropped_lines() -> Option<usize> {
    DROPPED.get().map(|counter| counter.dropped_lines())
}

struct Levels {
    handle: reload::Handle<EnvFilter, Registry>,
    state: Mutex<LevelState>,
}

struct LevelState {
    /// What `[log] level` (or `RUST_LOG`) asks for: the level when no temporary one is set.
    configured: String,
    /// `RUST_LOG` set `configured`: a config reload leaves it alone.
    from_env: bool,
    temporary: Option<Temporary>,
    /// Numbers temporary levels, so an expiry ends only the one it was set for.
    generation: u64,
}

/// A level set through the admin API, and when it ends.
#[derive(Debug, Clone)]
struct Temporary {
    level: String,
    until: SystemTime,
    generation: u64,
}

/// The level in force, for the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelStatus {
    pub level: String,
    pub configured: String,
    /// When a temporary level ends (`None`: the configured one is in force).
    pub until: Option<SystemTime>,
}

/// Why a level could not be set.
#[derive(Debug, thiserror::Error)]
pub enum LevelError {
    #[error("log levels are not managed here: the process did not install wasmgate's logger")]
    NotManaged,
    #[error("`{0}` is not a log level or filter (off, error, warn, info, debug, trace, or level,target=level,...)")]
    Invalid(String),
}

/// Installs the global subscriber. `RUST_LOG` overrides the configured level.
/// Keep the guard alive: dropping it flushes and stops the writer.
pub fn init(config: &LogConfig) -> WorkerGuard {
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let _ = DROPPED.set(writer.error_counter());
    let from_env = std::env::var("RUST_LOG").ok().filter(|text| EnvFilter::try_new(text).is_ok());
    let configured = from_env.clone().unwrap_or_else(|| config.level.clone());
    let (filter, handle) = reload::Layer::new(EnvFilter::new(&configured));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    // One of the two is `None`: an absent layer does nothing.
    let (text, json) = match config.format {
        LogFormat::Text => (Some(tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(ansi)), None),
        LogFormat::Json => (None, Some(tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(writer))),
    };
    if tracing_subscriber::registry().with(filter).with(text).with(json).try_init().is_ok() {
        let state = LevelState { configured, from_env: from_env.is_some(), temporary: None, generation: 0 };
        let _ = LEVELS.set(Levels { handle, state: Mutex::new(state) });
    }
    guard
}

impl Levels {
    fn state(&self) -> std::sync::MutexGuard<'_, LevelState> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn apply(&self, level: &str) {
        if let Err(e) = self.handle.reload(EnvFilter::new(level)) {
            tracing::error!(error = %e, level, "cannot change the log level");
        }
    }
}

/// The level in force; `None` when `init` did not install the logger.
pub fn level() -> Option<LevelStatus> {
    let levels = LEVELS.get()?;
    let state = levels.state();
    Some(LevelStatus {
        level: state.temporary.as_ref().map_or(&state.configured, |t| &t.level).clone(),
        configured: state.configured.clone(),
        until: state.temporary.as_ref().map(|t| t.until),
    })
}

/// Sets `level` (a level or `EnvFilter` directives) for `duration`, replacing
/// any temporary level; returns its number for `expire`. The caller arranges
/// for `expire` to be called when `duration` has passed.
pub fn set_temporary(level: &str, duration: Duration) -> Result<u64, LevelError> {
    let levels = LEVELS.get().ok_or(LevelError::NotManaged)?;
    if !valid_filter(level) {
        return Err(LevelError::Invalid(level.to_owned()));
    }
    let mut state = levels.state();
    state.generation += 1;
    let generation = state.generation;
    state.temporary = Some(Temporary { level: level.to_owned(), until: SystemTime::now() + duration, generation });
    levels.apply(level);
    tracing::warn!(level, ?duration, "log level changed through the admin API");
    Ok(generation)
}

/// A level, or comma-separated directives each a level or `target=level` (with
/// `EnvFilter`'s syntax). A bare word that is no level would be a target logged
/// at every level: far more likely a typo, so it is refused.
fn valid_filter(text: &str) -> bool {
    const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
    !text.trim().is_empty()
        && text.len() <= 1024
        && text.split(',').all(|d| {
            let d = d.trim();
            d.contains('=') || LEVELS.iter().any(|l| l.eq_ignore_ascii_case(d))
        })
        && EnvFilter::try_new(text).is_ok()
}

/// Ends temporary level `generation` (if it is still the one in force): the configured level returns.
pub fn expire(generation: u64) {
    let Some(levels) = LEVELS.get() else { return };
    let mut state = levels.state();
    if state.temporary.as_ref().is_some_and(|t| t.generation == generation) {
        state.temporary = None;
        levels.apply(&state.configured);
        tracing::warn!(level = %state.configured, "temporary log level ended; back to the configured level");
    }
}

/// Ends the temporary level, if any, now.
pub fn end_temporary() {
    let Some(levels) = LEVELS.get() else { return };
    let generation = levels.state().temporary.as_ref().map(|t| t.generation);
    if let Some(generation) = generation {
        expire(generation);
    }
}

/// A reload's `[log] level`: in force at once, or when a temporary level ends.
/// Ignored when `RUST_LOG` set the level.
pub fn configured_level(level: &str) {
    let Some(levels) = LEVELS.get() else { return };
    let mut state = levels.state();
    if state.from_env || state.configured == level {
        return;
    }
    state.configured = level.to_owned();
    if state.temporary.is_none() {
        levels.apply(level);
    }
}
