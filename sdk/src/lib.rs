//! Write wasmgate middleware in Rust.
//!
//! Implement [`Plugin`] (every hook has a default that lets the request or
//! response through), export it with [`export_plugin!`], and build with
//! `cargo build --release --target wasm32-wasip2`. The `.wasm` goes into the
//! gateway's plugins folder as `<name>.wasm`.
//!
//! `wasmgate plugin new NAME` writes such a crate, ready to `cargo test`
//! (natively, with [`testing::Harness`]) and build; `wasmgate plugin check
//! FILE.wasm --config ...` loads the component as the gateway does and runs
//! its `init`; `wasmgate plugin bench FILE.wasm ...` prints what each phase
//! costs per request. The crate's README.md walks through the whole loop.
//!
//! ```ignore
//! use serde::Deserialize;
//! use wasmgate_sdk::prelude::*;
//!
//! #[derive(Deserialize)]
//! struct Config { header: String, value: String }
//!
//! struct AddHeader(Config);
//!
//! impl Plugin for AddHeader {
//!     type Config = Config;
//!     fn new(config: Config, _cx: &Context) -> Result<Self, String> { Ok(Self(config)) }
//!     fn on_request(&self, req: &mut Request, _cx: &Context) -> RequestFlow {
//!         req.set_header(&self.0.header, self.0.value.as_str());
//!         RequestFlow::Continue
//!     }
//! }
//!
//! export_plugin!(AddHeader);
//! ```
//!
//! Phases, for a route with plugins `[a, b]`: `a.on_request`,
//! `b.on_request`, upstream, `b.on_response`, `a.on_response`, then the
//! `on_response_body` of those that returned `ResponseFlow::RewriteBody`.
//! A plugin that answers (`RequestFlow::Respond`) skips the later plugins
//! and the upstream; the response then goes back through the earlier ones.
//!
//! Test it natively with [`testing::Harness`]: `Harness::run(request,
//! upstream_response)` takes a request through both phases as the gateway
//! would and returns what the client gets (see the [`testing`] module).
//!
//! The gateway keeps a few instances of a plugin and may call the phases of
//! one request on different instances: keep per-request state in the
//! scratch map ([`Context::scratch_set`]) and shared state in counters or
//! kv, not in `self`. A panic costs only the request (the gateway answers
//! 500 or skips the plugin, as configured) and its message is logged.

extern crate self as wasmgate_sdk;

#[doc(hidden)]
pub mod bindings;
mod config_error;
mod context;
#[doc(hidden)]
pub mod guest;
mod headers;
mod http;
pub mod query;
pub mod testing;

pub use context::{Context, Host, Level, TakeResult};
pub use headers::{gateway_managed_header, valid_header_name, Headers};
pub use http::{Request, RequestFlow, Response, ResponseFlow, ResponseHead};

/// JSON for answers and for reading JSON a plugin is handed: the
/// [`serde_json`](https://docs.rs/serde_json) crate the SDK uses, so a plugin
/// needs no dependency of its own. Its `json!` macro is in the prelude:
/// `Response::json(401, &json!({ "error": "no key" }))`; a value read from
/// text is a `wasmgate_sdk::json::Value`.
pub use serde_json as json;

/// Configuration type for plugins that take none: accepts any config.
pub type NoConfig = serde::de::IgnoredAny;

/// Everything a plugin usually needs: the trait and its types, the export
/// macro, the header-name checks a config's `new` uses, and `json!` for
/// JSON answers.
pub mod prelude {
    pub use crate::json::json;
    pub use crate::{
        export_plugin, gateway_managed_header, valid_header_name, Context, Headers, Level,
        NoConfig, Plugin, Request, RequestFlow, Response, ResponseFlow, ResponseHead,
    };
}

/// A piece of HTTP middleware. Each hook's default passes things through
/// unchanged.
pub trait Plugin: Sized + 'static {
    /// The route's `config` table, decoded from JSON. A config that does not
    /// decode is refused with a message naming the key: the gateway prints
    /// it and does not use the route's new configuration.
    type Config: serde::de::DeserializeOwned;

    /// Runs once per instance with the route's config. An `Err` is shown to
    /// the operator as the reason the config is refused.
    fn new(config: Self::Config, cx: &Context) -> Result<Self, String>;

    /// Runs before the request goes upstream, in the route's plugin order.
    /// Change `request` to change what the upstream sees, or answer with
    /// `RequestFlow::Respond`. Default: continue unchanged — and a plugin
    /// that keeps this default is not called in the request phase at all
    /// (the gateway learns so from its first call).
    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        let _ = (request, cx);
        guest::default_hook_ran();
        RequestFlow::Continue
    }

    /// Runs on the way back, in reverse plugin order, for every plugin before
    /// the one that answered (all of them when the upstream answered), also
    /// when this plugin's `on_request` had nothing to do, and on the
    /// gateway's own error answers (a `502` when the upstream is down); not
    /// when this plugin failed with `fail-open` (see docs/phases.md). Change
    /// `response` to change status or headers,
    /// replace the response, or ask for the body with
    /// `ResponseFlow::RewriteBody`. Default: continue unchanged, and, as for
    /// `on_request`, a plugin that keeps the default costs nothing here.
    fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
        let _ = (response, cx);
        guest::default_hook_ran();
        ResponseFlow::Continue
    }

    /// Runs with the whole response body after `on_response` returned
    /// `RewriteBody`; returns the new body (the gateway fixes
    /// `content-length`). Default: the body unchanged.
    fn on_response_body(&self, body: Vec<u8>, cx: &Context) -> Vec<u8> {
        let _ = cx;
        body
    }
}

/// Exports a [`Plugin`] type as the component's `http-middleware` world.
/// Use it once, in the plugin crate's `lib.rs`.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        const _: () = {
            struct WasmgateExport;

            ::std::thread_local! {
                static WASMGATE_PLUGIN: ::std::cell::OnceCell<$plugin> =
                    const { ::std::cell::OnceCell::new() };
            }

            fn wasmgate_with<R>(f: impl FnOnce(&$plugin) -> R) -> R {
                WASMGATE_PLUGIN.with(|cell| match cell.get() {
                    Some(plugin) => f(plugin),
                    None => ::std::panic!("wasmgate plugin called before init"),
                })
            }

            impl $crate::bindings::Guest for WasmgateExport {
                fn init(config: ::std::string::String) -> ::std::result::Result<(), ::std::string::String> {
                    let plugin = $crate::guest::init::<$plugin>(config)?;
                    // Matched inside the closure: `set`'s error holds the
                    // whole plugin, which need not travel further.
                    WASMGATE_PLUGIN.with(|cell| match cell.set(plugin) {
                        ::std::result::Result::Ok(()) => ::std::result::Result::Ok(()),
                        ::std::result::Result::Err(_) => ::std::result::Result::Err(
                            ::std::string::String::from("init called twice"),
                        ),
                    })
                }

                fn on_request(
                    head: ::std::vec::Vec<u8>,
                ) -> $crate::bindings::wasmgate::plugin::types::RequestAction {
                    wasmgate_with(|plugin| $crate::guest::on_request(plugin, head))
                }

                fn on_response(
                    status: u16,
                    head: ::std::vec::Vec<u8>,
                ) -> $crate::bindings::wasmgate::plugin::types::ResponseAction {
                    wasmgate_with(|plugin| $crate::guest::on_response(plugin, status, head))
                }

                fn on_response_body(body: ::std::vec::Vec<u8>) -> ::std::vec::Vec<u8> {
                    wasmgate_with(|plugin| $crate::guest::on_response_body(plugin, body))
                }
            }

            $crate::bindings::__export_http_middleware!(WasmgateExport with_types_in $crate::bindings);
        };
    };
}

#[doc(hidden)]
pub mod __private {
    pub use crate::bindings;
    pub use wit_bindgen;
}
