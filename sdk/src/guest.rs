//! The glue `export_plugin!` expands to: converts between the generated
//! WIT types and the SDK's, parses the config, and implements `Host` with
//! the gateway's imports.

use crate::bindings::wasmgate::plugin::types::{
    RequestAction, RequestHead, Response as WitResponse, ResponseAction,
    ResponseHead as WitResponseHead,
};
use crate::bindings::wasmgate::plugin::{clock, context, counters, kv, log};
use crate::context::{Context, Host, Level, TakeResult};
use crate::headers::Headers;
use crate::http::{Request, RequestFlow, Response, ResponseFlow, ResponseHead};
use crate::Plugin;
use std::time::Duration;

/// The gateway's imports. Calling them off wasm32 hits the stubs of the
/// generated bindings: the native tests use `testing::FakeHost` instead.
pub struct Imports;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Host for Imports {
    fn log(&self, level: Level, message: &str) {
        let level = match level {
            Level::Trace => log::Level::Trace,
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::log(level, message);
    }

    fn monotonic_now(&self) -> u64 {
        clock::monotonic_now()
    }

    fn wall_now(&self) -> Duration {
        let now = clock::wall_now();
        Duration::new(now.seconds, now.nanoseconds)
    }

    fn counter_add(&self, key: &str, delta: i64, window: Option<Duration>) -> i64 {
        counters::add(key, delta, window.map(millis))
    }

    fn counter_get(&self, key: &str) -> i64 {
        counters::get(key)
    }

    fn take_tokens(&self, key: &str, tokens: u32, rate: f64, burst: u32) -> TakeResult {
        let r = counters::take(key, tokens, rate, burst);
        TakeResult {
            allowed: r.allowed,
            remaining: r.remaining,
            retry_after: Duration::from_millis(r.retry_after_ms),
        }
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        kv::get(key)
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        kv::set(key, value, ttl.map(millis))
    }

    fn kv_delete(&self, key: &str) -> bool {
        kv::delete(key)
    }

    fn client_ip(&self) -> Option<String> {
        context::client_ip()
    }

    fn route(&self) -> String {
        context::route()
    }

    fn listener(&self) -> String {
        context::listener()
    }

    fn upstream(&self) -> Option<String> {
        context::upstream()
    }

    fn scratch_get(&self, key: &str) -> Option<String> {
        context::scratch_get(key)
    }

    fn scratch_set(&self, key: &str, value: &str) {
        context::scratch_set(key, value)
    }

    fn scratch_remove(&self, key: &str) -> Option<String> {
        context::scratch_remove(key)
    }
}

/// Parses the config text as `T`: `""` counts as `{}`; errors name the
/// offending key.
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        if path == "." {
            format!("invalid config: {}", err.inner())
        } else {
            format!("invalid config at `{path}`: {}", err.inner())
        }
    })?;
    de.end().map_err(|e| format!("invalid config: {e}"))?;
    Ok(value)
}

/// Routes panics to the gateway's log before the instance aborts, so the
/// operator sees the message next to the trap.
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    std::panic::set_hook(Box::new(|info| {
        Imports.log(Level::Error, &format!("panic: {info}"));
    }));
}

/// The WIT `header-block` is `Headers`' own form: nothing to convert.
fn headers_from_wit(block: Vec<u8>) -> Headers {
    Headers::from_block(block)
}

fn headers_to_wit(headers: Headers) -> Vec<u8> {
    headers.into_block()
}

fn response_to_wit(r: Response) -> WitResponse {
    WitResponse {
        status: r.status,
        headers: headers_to_wit(r.headers),
        body: r.body,
    }
}

pub fn init<P: Plugin>(config: String) -> Result<P, String> {
    install_panic_hook();
    let config = parse_config::<P::Config>(&config)?;
    P::new(config, &Context::new(&Imports))
}

thread_local! {
    /// Set by the `Plugin` trait's default hooks, so the exports can tell the
    /// host that this plugin has no such phase.
    static DEFAULT_HOOK_RAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the default `on_request` / `on_response`: the plugin does not
/// implement that phase.
pub(crate) fn default_hook_ran() {
    DEFAULT_HOOK_RAN.with(|ran| ran.set(true));
}

/// Runs a hook and reports whether it was the trait's default.
fn run_hook<R>(hook: impl FnOnce() -> R) -> (R, bool) {
    DEFAULT_HOOK_RAN.with(|ran| ran.set(false));
    let result = hook();
    (result, DEFAULT_HOOK_RAN.with(|ran| ran.replace(false)))
}

pub fn on_request<P: Plugin>(plugin: &P, head: RequestHead) -> RequestAction {
    let mut request = Request::from_parts(
        head.method,
        head.path,
        head.query,
        headers_from_wit(head.headers),
    );
    let (flow, default) = run_hook(|| plugin.on_request(&mut request, &Context::new(&Imports)));
    if default {
        return RequestAction::NoPhase;
    }
    match flow {
        RequestFlow::Respond(r) => RequestAction::Respond(response_to_wit(r)),
        RequestFlow::Continue if !request.is_modified() => RequestAction::Continue(None),
        RequestFlow::Continue => {
            let (method, path, query, headers) = request.into_parts();
            RequestAction::Continue(Some(RequestHead {
                method,
                path,
                query,
                headers: headers_to_wit(headers),
            }))
        }
    }
}

pub fn on_response<P: Plugin>(plugin: &P, head: WitResponseHead) -> ResponseAction {
    let mut response = ResponseHead::from_parts(head.status, headers_from_wit(head.headers));
    let (flow, default) = run_hook(|| plugin.on_response(&mut response, &Context::new(&Imports)));
    if default {
        return ResponseAction::NoPhase;
    }
    let new_head = if response.is_modified() {
        let (status, headers) = response.into_parts();
        Some(WitResponseHead {
            status,
            headers: headers_to_wit(headers),
        })
    } else {
        None
    };
    match flow {
        ResponseFlow::Continue => ResponseAction::Continue(new_head),
        ResponseFlow::RewriteBody => ResponseAction::RewriteBody(new_head),
        ResponseFlow::Replace(r) => ResponseAction::Replace(response_to_wit(r)),
    }
}

pub fn on_response_body<P: Plugin>(plugin: &P, body: Vec<u8>) -> Vec<u8> {
    plugin.on_response_body(body, &Context::new(&Imports))
}
