//! What each instance's `Store` holds: its empty WASI context, its memory
//! cap, who it is, and the request it is working on.

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::context::RequestContext;
use crate::deadline::CallClock;
use crate::shared::redis::GlobalBinding;
use crate::shared::SharedState;

/// The plugin an instance belongs to (shared by all its instances).
pub(crate) struct Identity {
    pub(crate) name: Arc<str>,
    /// Short hash of the plugin's bytes.
    pub(crate) version: Arc<str>,
    /// The counters, buckets and key-value store of this plugin name.
    pub(crate) shared: Arc<SharedState>,
}

/// Data of one instance's `Store`.
pub(crate) struct StoreData {
    /// WASI with nothing in it: no files, sockets, environment or arguments.
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limits: MemoryCap,
    pub(crate) identity: Arc<Identity>,
    /// The request being handled: swapped in for the length of a call.
    pub(crate) ctx: RequestContext,
    /// The last error-level log line, kept to explain a trap that follows it
    /// (the SDK logs a panic's message before aborting).
    pub(crate) last_error: Option<String>,
    /// The deadline of the call running now.
    pub(crate) call_clock: CallClock,
    /// Where `take` keeps its buckets when the plugin entry says
    /// `state = "global"`; `None`: in this gateway's `identity.shared`.
    pub(crate) global: Option<GlobalBinding>,
}

impl StoreData {
    pub(crate) fn new(identity: Arc<Identity>, memory_limit: usize, global: Option<GlobalBinding>) -> Self {
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limits: MemoryCap {
                limit: memory_limit,
                hit: false,
            },
            identity,
            ctx: RequestContext::default(),
            last_error: None,
            call_clock: CallClock::default(),
            global,
        }
    }
}

impl WasiView for StoreData {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past `limit`, remembering that it did so the host
/// can name the reason when the guest then traps.
pub(crate) struct MemoryCap {
    limit: usize,
    pub(crate) hit: bool,
}

/// Table elements an instance may have (function tables of Rust plugins hold
/// a few hundred).
const MAX_TABLE_ELEMENTS: usize = 100_000;

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
