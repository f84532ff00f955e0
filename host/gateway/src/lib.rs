//! wasmgate: an API gateway that proxies and balances natively and runs its
//! middleware as WebAssembly components.
//!
//! A request flows listener (`server`) → `router` → `balance` (over the
//! `upstream`'s current targets) → `proxy` → back to the client.

pub mod balance;
pub mod cli;
pub mod config;
pub mod logging;
pub mod proxy;
pub mod router;
pub mod server;
pub mod state;
pub mod upstream;

pub use config::Config;
pub use server::Gateway;
