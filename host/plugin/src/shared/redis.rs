//! The Redis state backend: token buckets (the `counters.take` import) that a
//! fleet of gateways shares, for the plugin entries a route marks
//! `state = "global"`. The hot path never talks to Redis: each gateway leases
//! tokens of a bucket from Redis and spends them locally (`lease.rs`); a
//! thread of its own with its own runtime tops up and gives back leases every
//! `sync_interval`, one Lua script call for a whole batch of keys (`sync.rs`).
//!
//! When Redis cannot be reached, a fail-open entry falls back to a local
//! bucket of `rate / fleet_size` and `burst / fleet_size`, and a fail-closed
//! entry's call fails (the request is answered 503). Counters (`add`/`get`)
//! and the kv store stay per gateway. See `docs/fleet.md`.

mod lease;
mod sync;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::shared::buckets::TakeResult;
use crate::shared::Sharded;
use lease::{Lease, Sizing, Table};

/// How to reach Redis and how to share limits with the fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalSettings {
    /// `redis://host:port[/db]` or `redis+unix:///path` (no TLS: the crate's
    /// TLS features are not built in).
    pub redis_url: String,
    /// Gateways sharing the limits: a fail-open fallback admits
    /// `limit / fleet_size` on each, and lease sizes are shares of a burst.
    pub fleet_size: u32,
    /// How often leases are topped up and given back (default 50 ms).
    pub sync_interval: Duration,
    /// Longest wait for Redis, connecting or in a call (default 250 ms);
    /// past it, Redis counts as down.
    pub timeout: Duration,
    /// Prefix of every Redis key (default `wasmgate`).
    pub key_prefix: String,
    /// Keys with a lease on this gateway at once; past it, new keys are
    /// limited locally (as if Redis were down) until old ones go idle.
    pub max_keys: usize,
}

impl GlobalSettings {
    /// The defaults for `redis_url`.
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            fleet_size: 1,
            sync_interval: Duration::from_millis(50),
            timeout: Duration::from_millis(250),
            key_prefix: "wasmgate".to_owned(),
            max_keys: 100_000,
        }
    }
}

/// What a `state = "global"` plugin entry does while Redis is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OnStateError {
    /// Keep limiting, locally, at `limit / fleet_size` (the default: a
    /// Redis outage must not take the API down).
    #[default]
    FailOpen,
    /// Fail the plugin's call: the request is answered 503.
    FailClosed,
}

impl OnStateError {
    /// The spelling used in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            OnStateError::FailOpen => "fail-open",
            OnStateError::FailClosed => "fail-closed",
        }
    }
}

/// What `GlobalState::take` found.
pub(crate) enum Taken {
    /// Answered from the lease (or the provisional allowance).
    Granted(TakeResult),
    /// Redis is unreachable: the entry's `OnStateError` applies.
    Unreachable,
    /// `max_keys` keys hold leases already: this one is limited locally.
    Full,
}

/// The error a fail-closed plugin call gets while Redis is unreachable.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the global state backend (Redis) is unreachable")]
pub(crate) struct StateUnavailable;

/// The backend: the lease tables and the thread that syncs them. Dropping
/// the last handle stops the thread (within one interval).
pub struct GlobalState {
    inner: Arc<Inner>,
}

/// What the hot path and the sync thread share.
pub(crate) struct Inner {
    settings: GlobalSettings,
    sizing: Sizing,
    /// Leases by Redis key.
    leases: Sharded<Table>,
    /// Leases held now, roughly (bounded by `max_keys`).
    keys: AtomicUsize,
    /// `UNKNOWN` until the first attempt, then `UP` or `DOWN`.
    health: AtomicU8,
    /// Set when the owning `GlobalState` is dropped.
    stopped: std::sync::atomic::AtomicBool,
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

/// A key a leased bucket stops being synced after this long without use.
const IDLE: Duration = Duration::from_secs(2);

impl std::fmt::Debug for GlobalState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalState")
            .field("redis", &redacted(&self.inner.settings.redis_url))
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

impl GlobalState {
    /// Checks the URL, starts the sync thread and waits (at most `timeout`)
    /// for its first connection, so a gateway that starts next to a healthy
    /// Redis limits globally from its first request. Redis being down is no
    /// error: the backend keeps trying, with backoff.
    pub fn start(settings: GlobalSettings) -> Result<Arc<GlobalState>, String> {
        let client = redis::Client::open(settings.redis_url.as_str())
            .map_err(|e| format!("`{}` is not a Redis URL: {e}", redacted(&settings.redis_url)))?;
        let sizing = Sizing {
            fleet_size: settings.fleet_size.max(1),
            interval: settings.sync_interval,
            idle: IDLE.max(settings.sync_interval * 4),
        };
        let inner = Arc::new(Inner {
            settings,
            sizing,
            leases: Sharded::new(Table::new),
            keys: AtomicUsize::new(0),
            health: AtomicU8::new(UNKNOWN),
            stopped: std::sync::atomic::AtomicBool::new(false),
        });
        let (first, tried) = std::sync::mpsc::channel();
        sync::spawn(inner.clone(), client, first)
            .map_err(|e| format!("cannot start the global state thread: {e}"))?;
        let _ = tried.recv_timeout(inner.settings.timeout * 2);
        Ok(Arc::new(GlobalState { inner }))
    }

    /// Whether the last call to Redis succeeded.
    pub fn is_up(&self) -> bool {
        self.inner.health.load(Ordering::Relaxed) == UP
    }

    pub fn settings(&self) -> &GlobalSettings {
        &self.inner.settings
    }

    /// Keys with a lease on this gateway now.
    pub fn leased_keys(&self) -> usize {
        self.inner.keys.load(Ordering::Relaxed)
    }

    /// Takes `tokens` from the global bucket `key` of `plugin`, from this
    /// gateway's lease.
    pub(crate) fn take(&self, plugin: &str, key: &str, tokens: u32, rate: f64, burst: u32) -> Taken {
        let inner = &*self.inner;
        if inner.health.load(Ordering::Relaxed) != UP {
            return Taken::Unreachable;
        }
        let rate = if rate.is_finite() && rate > 0.0 { rate } else { 0.0 };
        let prefix = &inner.settings.key_prefix;
        let mut full = String::with_capacity(prefix.len() + plugin.len() + key.len() + 4);
        full.push_str(prefix);
        full.push_str(":b:");
        full.push_str(plugin);
        full.push(':');
        full.push_str(key);
        let now = Instant::now();
        let mut shard = inner.leases.lock(&full);
        if let Some(lease) = shard.get_mut(full.as_str()) {
            return Taken::Granted(lease.take(now, tokens, rate, burst, &inner.sizing));
        }
        if inner.keys.load(Ordering::Relaxed) >= inner.settings.max_keys {
            return Taken::Full;
        }
        inner.keys.fetch_add(1, Ordering::Relaxed);
        let mut lease = Lease::new(now, rate, burst, &inner.sizing);
        let result = lease.take(now, tokens, rate, burst, &inner.sizing);
        shard.insert(full, lease);
        Taken::Granted(result)
    }

    /// The local bucket a fail-open entry falls back to: this gateway's share.
    pub(crate) fn fallback(&self, rate: f64, burst: u32) -> (f64, u32) {
        let n = self.inner.sizing.fleet_size.max(1);
        let share = (f64::from(burst) / f64::from(n)).ceil().max(1.0) as u32;
        (rate / f64::from(n), share)
    }
}

impl Drop for GlobalState {
    fn drop(&mut self) {
        self.inner.stopped.store(true, Ordering::Relaxed);
    }
}

impl Inner {
    /// Records whether Redis answered, logging each change once.
    fn set_up(&self, up: bool, why: &str) {
        let new = if up { UP } else { DOWN };
        let old = self.health.swap(new, Ordering::Relaxed);
        if old == new {
            return;
        }
        let redis = redacted(&self.settings.redis_url);
        if up {
            tracing::info!(redis, "global state backend reachable: global limits apply");
        } else {
            tracing::warn!(
                redis,
                reason = why,
                "global state backend unreachable: fail-open plugin entries limit locally at limit / fleet_size ({}), fail-closed ones answer 503",
                self.sizing.fleet_size
            );
        }
    }
}

/// The URL without its password, for logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => format!("{}://***@{}", &url[..scheme], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

/// Binds a configured plugin's `take` calls to the global backend.
#[derive(Debug, Clone)]
pub struct GlobalBinding {
    pub(crate) state: Arc<GlobalState>,
    pub(crate) on_error: OnStateError,
}

impl GlobalBinding {
    pub fn new(state: Arc<GlobalState>, on_error: OnStateError) -> Self {
        Self { state, on_error }
    }
}
