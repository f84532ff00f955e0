//! wasmgate: an API gateway that proxies and balances natively and runs its
//! middleware as WebAssembly components.
//!
//! A request flows listener (`server`) → `router` → `balance` (over the
//! `upstream`'s current targets) → `proxy` → back to the client. Off the request
//! path, the `control` thread runs `discovery`, `health` checks and the `admin`
//! listener; they change what requests see only by publishing target snapshots.

mod accept;
pub mod admin;
mod backoff;
pub mod balance;
pub mod breaker;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod control;
pub mod discovery;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod plugin_tool;
pub mod plugins;
pub mod pipe;
pub mod proxy;
pub mod register;
pub mod reload;
pub mod request_target;
pub mod router;
pub mod server;
pub mod service;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod upstream;

pub use config::Config;
pub use server::Gateway;
