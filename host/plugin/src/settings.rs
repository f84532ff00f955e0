//! Limits and knobs of the plugin runtime.

use std::path::PathBuf;
use std::time::Duration;

/// How the plugin runtime runs plugins. `Default` gives the documented values.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// CPU-time budget of one call into a plugin (instantiation, `init`, a
    /// phase, a body rewrite), kept by epoch interruption: a call is stopped
    /// once it has used between `call_deadline - epoch_tick` and
    /// `call_deadline + epoch_tick` of its thread's CPU time, so a call slowed
    /// by a busy machine is not failed for the time it waited. Default 20 ms.
    pub call_deadline: Duration,
    /// Wall-clock cap of one call, whatever CPU time it used: stops a call that
    /// waits without end (a plugin sleeping in a loop). `None` (the default)
    /// is 10 × `call_deadline`; kept to one tick late.
    pub max_call_wall: Option<Duration>,
    /// How often the epoch ticker thread advances the engine's epoch: the
    /// resolution of the deadlines (at least 100 µs). Default 5 ms: the
    /// thread that ticks shares the CPU with the workers, and every wake-up
    /// costs them.
    pub epoch_tick: Duration,
    /// Cap on an instance's linear memory. Default 32 MiB.
    pub memory_limit: usize,
    /// Instances alive at once across every plugin of this runtime: the slots
    /// of the pooling allocator, whose address space (not memory) is reserved
    /// up front, a few GiB per slot. Starting an instance when all are taken
    /// fails that call (per the plugin's policy). Default 1000.
    pub max_instances: u32,
    /// Warm, initialised instances kept per configured plugin. Default 4
    /// (a worker thread uses one at a time).
    pub pool_size: usize,
    /// Calls an instance serves before it is replaced by a fresh one, so that
    /// what a plugin leaks stays bounded. Default 10 000.
    pub max_uses: u64,
    /// Largest body a plugin may produce (respond, replace) or rewrite.
    /// Default 1 MiB.
    pub max_body: usize,
    /// Largest head (all header names and values) a plugin may return.
    /// Default 64 KiB.
    pub max_head: usize,
    /// Keys per plugin in each of the counter and token-bucket maps.
    /// Default 100 000.
    pub max_counters: usize,
    /// Bytes of keys and values per plugin in the key-value store.
    /// Default 64 MiB.
    pub max_kv_bytes: usize,
    /// Where wasmtime keeps compiled plugins between runs; `None` compiles
    /// every time. Default `None`.
    pub cache_dir: Option<PathBuf>,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            call_deadline: Duration::from_millis(20),
            max_call_wall: None,
            epoch_tick: Duration::from_millis(5),
            memory_limit: 32 << 20,
            max_instances: 1000,
            pool_size: 4,
            max_uses: 10_000,
            max_body: 1 << 20,
            max_head: 64 << 10,
            max_counters: 100_000,
            max_kv_bytes: 64 << 20,
            cache_dir: None,
        }
    }
}

/// The shortest epoch tick the ticker thread keeps.
pub(crate) const MIN_EPOCH_TICK: Duration = Duration::from_micros(100);

impl RuntimeSettings {
    /// The epoch tick the ticker thread keeps.
    pub(crate) fn effective_epoch_tick(&self) -> Duration {
        self.epoch_tick.max(MIN_EPOCH_TICK)
    }

    /// The wall-clock cap of one call: `max_call_wall`, or 10 × `call_deadline`.
    pub(crate) fn wall_cap(&self) -> Duration {
        self.max_call_wall
            .unwrap_or_else(|| self.call_deadline.saturating_mul(10))
    }
}

/// What a failing plugin does to the request it was handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// Answer 500 (the default): a broken auth plugin must not let requests through.
    #[default]
    FailClosed,
    /// Skip the plugin for this request and go on as if it had said "continue".
    FailOpen,
}

impl OnError {
    /// The spelling used in configuration files: `fail-closed` / `fail-open`.
    pub fn as_str(self) -> &'static str {
        match self {
            OnError::FailClosed => "fail-closed",
            OnError::FailOpen => "fail-open",
        }
    }
}

impl std::str::FromStr for OnError {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fail-closed" => Ok(OnError::FailClosed),
            "fail-open" => Ok(OnError::FailOpen),
            other => Err(format!(
                "unknown on_error `{other}`: expected `fail-closed` or `fail-open`"
            )),
        }
    }
}
