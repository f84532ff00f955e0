//! `ConfiguredPlugin`: a plugin bound to one route's configuration, with its
//! pool of warm, initialised instances, and the one function that calls into
//! an instance under a deadline (see `deadline`) and turns what went wrong
//! into a `Failure`.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use wasmtime::{Store, Trap};

use crate::bindings::HttpMiddleware;
use crate::context::RequestContext;
use crate::deadline::{thread_cpu_time, Budget};
use crate::error::Failure;
use crate::plugin::Plugin;
use crate::settings::OnError;
use crate::shared::redis::{GlobalBinding, StateUnavailable};
use crate::store_data::StoreData;

/// A plugin with a route's configuration and error policy. Share it (it is
/// `Send + Sync`); every call takes a warm instance from its pool.
pub struct ConfiguredPlugin {
    plugin: Arc<Plugin>,
    config: Box<str>,
    on_error: OnError,
    /// Idle instances, `init` already run. At most `pool_size`.
    pool: Mutex<Vec<Instance>>,
    /// Instances started so far (for tests and metrics).
    started: AtomicU64,
    /// Instances that exist now, idle or serving a call (for metrics).
    alive: Arc<AtomicU64>,
    phases: Phases,
    /// `state = "global"`: `take` goes to the fleet's buckets.
    global: Option<GlobalBinding>,
}

/// One live instance of the plugin.
pub(crate) struct Instance {
    store: Store<StoreData>,
    bindings: HttpMiddleware,
    /// Calls served; the instance is retired at `max_uses`.
    uses: u64,
    _alive: Alive,
}

/// Counts an instance among the living until it is dropped.
struct Alive(Arc<AtomicU64>);

impl Alive {
    fn new(count: &Arc<AtomicU64>) -> Alive {
        count.fetch_add(1, Ordering::Relaxed);
        Alive(count.clone())
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a fresh instance could not be started.
pub(crate) enum StartError {
    /// `init` returned this error.
    Rejected(String),
    Failed(Failure),
}

/// Counts that show how the pool behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Instances started since configuration (including the first).
    pub started: u64,
    /// Instances idle in the pool now.
    pub warm: usize,
}

impl fmt::Debug for ConfiguredPlugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfiguredPlugin")
            .field("plugin", &self.plugin)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

impl ConfiguredPlugin {
    pub(crate) fn new(plugin: Arc<Plugin>, config: &str, on_error: OnError, global: Option<GlobalBinding>) -> Self {
        Self {
            plugin,
            config: config.into(),
            on_error,
            pool: Mutex::new(Vec::new()),
            started: AtomicU64::new(0),
            alive: Arc::new(AtomicU64::new(0)),
            phases: Phases::all(),
            global,
        }
    }

    /// The fleet's global state `take` goes to (`state = "global"`).
    pub fn global_state(&self) -> Option<&Arc<crate::GlobalState>> {
        self.global.as_ref().map(|g| &g.state)
    }

    /// The phases this plugin uses with this configuration, as learnt from
    /// its answers.
    pub fn phases(&self) -> &Phases {
        &self.phases
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    pub fn name(&self) -> &str {
        self.plugin.name()
    }

    pub fn version(&self) -> &str {
        self.plugin.version()
    }

    pub fn config(&self) -> &str {
        &self.config
    }

    pub fn on_error(&self) -> OnError {
        self.on_error
    }

    pub fn stats(&self) -> PoolStats {
        PoolStats {
            started: self.started.load(Ordering::Relaxed),
            warm: self
                .pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len(),
        }
    }

    /// Instances that exist now: idle in the pool or serving a call.
    pub fn alive(&self) -> u64 {
        self.alive.load(Ordering::Relaxed)
    }

    /// Instantiates the plugin and runs `init` with this configuration.
    pub(crate) fn start(&self) -> Result<Instance, StartError> {
        self.started.fetch_add(1, Ordering::Relaxed);
        let runtime = &self.plugin.runtime;
        let data = StoreData::new(self.plugin.identity.clone(), runtime.settings.memory_limit, self.global.clone());
        let mut store = Store::new(&runtime.engine, data);
        store.limiter(|data| &mut data.limits);
        let budget = Budget::new(&runtime.settings);
        store.epoch_deadline_callback(move |mut store| {
            let cpu_now = thread_cpu_time();
            Ok(store.data_mut().call_clock.on_deadline(&budget, cpu_now))
        });
        start_call(&mut store);
        let bindings = match guarded(|| self.plugin.pre.instantiate(&mut store)) {
            Ok(bindings) => bindings,
            Err(err) => return Err(StartError::Failed(classify(&mut store, &err))),
        };
        start_call(&mut store);
        match guarded(|| bindings.call_init(&mut store, &self.config)) {
            Ok(Ok(())) => Ok(Instance {
                store,
                bindings,
                uses: 0,
                _alive: Alive::new(&self.alive),
            }),
            Ok(Err(message)) => Err(StartError::Rejected(message)),
            Err(err) => Err(StartError::Failed(classify(&mut store, &err))),
        }
    }

    /// Returns an instance to the pool if it still has uses left and the
    /// pool has room; otherwise drops it (outside the lock).
    pub(crate) fn put_back(&self, instance: Instance) {
        if instance.uses >= self.plugin.runtime.settings.max_uses {
            return;
        }
        let surplus = {
            let mut pool = self.pool.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < self.plugin.runtime.settings.pool_size {
                pool.push(instance);
                None
            } else {
                Some(instance)
            }
        };
        drop(surplus);
    }

    /// Runs `call` on a warm instance (starting one if the pool is empty)
    /// with `ctx` visible to the plugin, under the call deadline. An instance
    /// whose call failed is dropped, never reused.
    pub(crate) fn call<R>(
        &self,
        ctx: &mut RequestContext,
        call: impl FnOnce(&HttpMiddleware, &mut Store<StoreData>) -> wasmtime::Result<R>,
    ) -> Result<R, Failure> {
        let taken = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut instance = match taken {
            Some(instance) => instance,
            None => self.start().map_err(|e| match e {
                StartError::Rejected(message) => {
                    Failure::Start(format!("init rejected its config: {message}"))
                }
                StartError::Failed(failure) => Failure::Start(failure.to_string()),
            })?,
        };
        lend(&mut instance.store.data_mut().ctx, ctx);
        // After `start` if there was one: instantiation is not this call's time.
        start_call(&mut instance.store);
        let result = guarded(|| call(&instance.bindings, &mut instance.store));
        lend(&mut instance.store.data_mut().ctx, ctx);
        match result {
            Ok(value) => {
                instance.uses += 1;
                self.put_back(instance);
                Ok(value)
            }
            Err(err) => Err(classify(&mut instance.store, &err)),
        }
    }
}

/// Which phase functions this plugin uses with this configuration. Both are
/// assumed until a call answers `no-phase` (the SDK's default hook, or a
/// plugin whose configuration leaves a phase nothing to do); from then on the
/// host does not call that phase on these instances again.
#[derive(Debug)]
pub struct Phases {
    request: AtomicBool,
    response: AtomicBool,
}

impl Phases {
    pub(crate) fn all() -> Self {
        Self {
            request: AtomicBool::new(true),
            response: AtomicBool::new(true),
        }
    }

    /// Whether `on-request` is worth calling.
    pub fn request(&self) -> bool {
        self.request.load(Ordering::Relaxed)
    }

    /// Whether `on-response` is worth calling.
    pub fn response(&self) -> bool {
        self.response.load(Ordering::Relaxed)
    }

    pub(crate) fn drop_request(&self) {
        self.request.store(false, Ordering::Relaxed);
    }

    pub(crate) fn drop_response(&self) {
        self.response.store(false, Ordering::Relaxed);
    }
}

/// Swaps the fields the imports read (`capabilities`) between the request's
/// context and the store's, lending them for a call and taking them back
/// after it: the chain's own state stays where it is, so each of the two
/// swaps of a call moves less than half the context.
fn lend(store: &mut RequestContext, ctx: &mut RequestContext) {
    std::mem::swap(&mut store.client_ip, &mut ctx.client_ip);
    std::mem::swap(&mut store.route, &mut ctx.route);
    std::mem::swap(&mut store.listener, &mut ctx.listener);
    std::mem::swap(&mut store.upstream, &mut ctx.upstream);
    std::mem::swap(&mut store.scratch, &mut ctx.scratch);
}

/// Arms the deadline of a call about to start on `store`.
fn start_call(store: &mut Store<StoreData>) {
    let ticks = store.data_mut().call_clock.start();
    store.set_epoch_deadline(ticks);
}

thread_local! {
    /// Set while this thread runs a call into a plugin (see `guarded`).
    static IN_PLUGIN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs a call into a plugin so that a panic in a host function it reached
/// becomes that call's error instead of unwinding into the gateway. The one
/// known case: WASI's blocking stream operations (a plugin writing to stdout or
/// stderr, which Rust's panic handler does) enter a tokio runtime of their own,
/// which cannot be done from inside the gateway's event loop. The panic is not
/// printed (see `quiet_panics_in_plugins`); the failure is logged by the chain.
fn guarded<R>(call: impl FnOnce() -> wasmtime::Result<R>) -> wasmtime::Result<R> {
    let outer = IN_PLUGIN.with(|flag| flag.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    IN_PLUGIN.with(|flag| flag.set(outer));
    match result {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(wasmtime::Error::msg(format!("a host function it called failed: {message}")))
        }
    }
}

/// Installs (once) a panic hook that stays silent for panics caught by
/// `guarded` and hands every other panic to the hook that was there before.
pub(crate) fn quiet_panics_in_plugins() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_PLUGIN.with(|flag| flag.get()) {
                previous(info);
            }
        }));
    });
}

/// Names what went wrong in a call that returned `err`.
fn classify(store: &mut Store<StoreData>, err: &wasmtime::Error) -> Failure {
    if store.data().limits.hit {
        return Failure::MemoryCap;
    }
    let trap = err.downcast_ref::<Trap>();
    if trap == Some(&Trap::Interrupt) {
        return Failure::Deadline;
    }
    if err.downcast_ref::<StateUnavailable>().is_some() {
        return Failure::StateUnavailable;
    }
    let what = match trap {
        Some(trap) => trap.to_string(),
        None => err.root_cause().to_string(),
    };
    match store.data_mut().last_error.take() {
        // A panic is the whole story: its message and location, said once.
        Some(logged) if crate::capabilities::is_panic(&logged) => {
            Failure::Trap(logged.strip_prefix("panic: ").unwrap_or(&logged).to_owned())
        }
        Some(logged) => Failure::Trap(format!("{what} (after logging: {logged})")),
        None => Failure::Trap(what),
    }
}
