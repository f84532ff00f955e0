//! wasmgate's plugin runtime: HTTP middleware as WebAssembly components
//! (world `wasmgate:plugin/http-middleware@0.3.0`, in `wit/`), run on
//! wasmtime. This is the only crate that depends on wasmtime.
//!
//! ```text
//! PluginRuntime::new(settings)            engine, linker, epoch ticker
//!   .load(name, bytes) / .load_dir(dir)   compile once per version   -> Arc<Plugin> / PluginSet
//! Plugin::configure(config_json, on_error) init, warm instance pool  -> Arc<ConfiguredPlugin>
//! Chain::new(vec![configured, ...])       a route's plugins
//!   .on_request(&mut parts, &mut ctx)     in order      -> RequestOutcome
//!   .on_response(ran, &mut parts, &mut ctx) in reverse  -> ResponseOutcome
//!   .rewrite_body(&plan, &mut parts, body, &mut ctx)    -> Bytes
//! ```
//!
//! The calls on `Chain` are synchronous and short: each call into a plugin
//! runs on a warm instance under a deadline (CPU time, checked by epoch
//! interruption, with a wall-clock cap) and a memory cap. They never fail and never panic: a plugin that traps, runs
//! late, hits its memory cap or returns invalid output costs that request
//! only, by its `OnError` policy (a 500, or skipping the plugin), with a
//! `tracing` line naming plugin, version and reason.
//! See `docs/phases.md` for the phase order.

mod bad_file;
mod bindings;
mod capabilities;
mod chain;
mod context;
mod contract;
mod convert;
mod deadline;
mod engine;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod metrics;
mod plugin;
mod pool;
mod runtime;
mod set;
mod settings;
mod shared;
mod store_data;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod watch;

pub use chain::{BodyRewrite, Chain, RequestOutcome, ResponseOutcome};
pub use context::{CallRecord, ChainState, RequestContext, Scratch};
pub use contract::CONTRACT_VERSION;
pub use error::PluginError;
pub use plugin::Plugin;
pub use pool::{ConfiguredPlugin, Phases, PoolStats};
pub use runtime::{valid_plugin_name, PluginRuntime};
pub use set::{PluginSet, PluginSetError};
pub use settings::{OnError, RuntimeSettings};
pub use shared::redis::{GlobalBinding, GlobalSettings, GlobalState, OnStateError};
