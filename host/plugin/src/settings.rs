//! Limits and knobs of the plugin runtime.

use std::path::PathBuf;
use std::time::Duration;

/// How the plugin runtime runs plugins. `Default` gives the documented values.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Wall-clock budget of one call into a plugin (`init`, a phase, a body
    /// rewrite), enforced by epoch interruption. Default 20 ms.
    pub call_deadline: Duration,
    /// How often the epoch ticker thread advances the engine's epoch: the
    /// resolution of `call_deadline` (a call is stopped between one tick
    /// before and at its deadline). Default 5 ms: the thread that ticks
    /// shares the CPU with the workers, and every wake-up costs them.
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

impl RuntimeSettings {
    /// Epoch ticks that make up `call_deadline` (at least one).
    pub(crate) fn deadline_ticks(&self) -> u64 {
        let tick = self.epoch_tick.as_nanos().max(1);
        let ticks = self.call_deadline.as_nanos().div_ceil(tick);
        u64::try_from(ticks).unwrap_or(u64::MAX).max(1)
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
