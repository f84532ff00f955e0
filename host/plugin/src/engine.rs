//! The wasmtime engine and linker shared by every plugin of a runtime, and
//! the thread that drives epoch deadlines.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{
    Cache, CacheConfig, Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig,
};

use crate::bindings::HttpMiddleware;
use crate::error::PluginError;
use crate::settings::{RuntimeSettings, MIN_EPOCH_TICK};
use crate::store_data::StoreData;

/// Core instances a plugin component holds at most (its module plus the
/// small shim modules the component model adds).
const CORE_INSTANCES_PER_PLUGIN: u32 = 16;
/// Tables a plugin component holds at most.
const TABLES_PER_PLUGIN: u32 = 8;

fn runtime_error(what: &str, err: wasmtime::Error) -> PluginError {
    PluginError::Runtime(format!("{what}: {err:#}"))
}

/// An engine with the pooling allocator sized by `settings`, epoch
/// interruption, and wasmtime's compiled-code cache when asked for.
pub(crate) fn engine(settings: &RuntimeSettings) -> Result<Engine, PluginError> {
    let mut pool = PoolingAllocationConfig::default();
    let instances = settings.max_instances.max(1);
    pool.total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_PLUGIN))
        .max_core_instances_per_component(CORE_INSTANCES_PER_PLUGIN)
        .total_memories(instances)
        .max_memories_per_component(1)
        .total_tables(instances.saturating_mul(TABLES_PER_PLUGIN))
        .max_tables_per_component(TABLES_PER_PLUGIN)
        .max_memory_size(settings.memory_limit)
        // Recycled slots keep this much memory mapped instead of returning
        // it to the OS: cheaper fresh instances.
        .linear_memory_keep_resident(256 << 10);

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    // `perf` can name the functions of plugins with this set (it writes
    // /tmp/perf-<pid>.map): for profiling, not for production.
    if std::env::var_os("WASMGATE_PERF_MAP").is_some_and(|v| v == "1") {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if let Some(dir) = &settings.cache_dir {
        let mut cache = CacheConfig::new();
        cache.with_directory(dir);
        let cache = Cache::new(cache).map_err(|e| runtime_error("compiled-code cache", e))?;
        config.cache(Some(cache));
    }
    Engine::new(&config).map_err(|e| runtime_error("engine", e))
}

/// A linker with the empty WASI and the wasmgate capabilities.
pub(crate) fn linker(engine: &Engine) -> Result<Linker<StoreData>, PluginError> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(|e| runtime_error("wasi", e))?;
    HttpMiddleware::add_to_linker::<StoreData, HasSelf<StoreData>>(&mut linker, |data| data)
        .map_err(|e| runtime_error("capabilities", e))?;
    Ok(linker)
}

/// A thread that advances the engine's epoch every tick, so a call past its
/// deadline is looked at (see `deadline`). It stops when this value is dropped.
pub(crate) struct Ticker {
    /// Dropping it wakes the thread with `Disconnected`: its cue to stop.
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Ticker {
    pub(crate) fn start(engine: Engine, tick: Duration) -> Result<Self, PluginError> {
        let (stop, stopped) = mpsc::channel::<()>();
        let tick = tick.max(MIN_EPOCH_TICK);
        let thread = std::thread::Builder::new()
            .name("wasmgate-epoch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(tick) {
                    engine.increment_epoch();
                }
            })
            .map_err(|e| PluginError::Runtime(format!("epoch ticker thread: {e}")))?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
