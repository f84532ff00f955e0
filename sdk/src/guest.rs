//! The glue `export_plugin!` expands to: converts between the generated
//! WIT types and the SDK's, parses the config, and implements `Host` with
//! the gateway's imports.

use crate::bindings::wasmgate::plugin::types::{
    RequestAction, RequestEdits, RequestHead, Response as WitResponse, ResponseAction,
    ResponseHead as WitResponseHead,
};
use crate::headers::Headers;
use crate::bindings::wasmgate::plugin::{clock, context, counters, kv, log};
use crate::context::{Context, Host, Level, TakeResult};
use crate::http::{Request, RequestFlow, Response, ResponseFlow, ResponseHead};
use crate::Plugin;
use std::time::Duration;

/// The gateway's imports, and the context block of the phase call being
/// handled (empty in `init`). Calling the imports off wasm32 hits the stubs
/// of the generated bindings: the native tests use `testing::FakeHost`
/// instead.
#[derive(Default)]
pub struct Imports {
    context: Vec<u8>,
}

impl Imports {
    /// A value of the WIT `context-block`: `None` when there is no block (in
    /// `init`: ask the import), `Some(None)` when the block does not carry
    /// it.
    fn context_value(&self, name: &str) -> Option<Option<String>> {
        if self.context.is_empty() {
            return None;
        }
        let value = self.context.split(|&b| b == b'\n').find_map(|line| {
            line.strip_prefix(name.as_bytes())?.strip_prefix(b":")
        });
        Some(value.map(|v| String::from_utf8_lossy(v).into_owned()))
    }
}

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
        self.context_value("client-ip").unwrap_or_else(context::client_ip)
    }

    fn route(&self) -> String {
        self.context_value("route").map_or_else(context::route, Option::unwrap_or_default)
    }

    fn listener(&self) -> String {
        self.context_value("listener").map_or_else(context::listener, Option::unwrap_or_default)
    }

    fn upstream(&self) -> Option<String> {
        self.context_value("upstream").unwrap_or_else(context::upstream)
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
        Imports::default().log(Level::Error, &format!("panic: {info}"));
    }));
}

fn response_to_wit(r: Response) -> WitResponse {
    WitResponse {
        status: r.status,
        headers: r.headers.into_block(),
        body: r.body,
    }
}

pub fn init<P: Plugin>(config: String) -> Result<P, String> {
    install_panic_hook();
    let config = parse_config::<P::Config>(&config)?;
    P::new(config, &Context::new(&Imports::default()))
}

thread_local! {
    /// Set by the `Plugin` trait's default hooks, so the exports can tell the
    /// host that this plugin has no such phase.
    static DEFAULT_HOOK_RAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Called by the default `on_request` / `on_response` (and by
/// `Context::skip_phase`): the plugin has nothing to do in that phase.
pub(crate) fn default_hook_ran() {
    DEFAULT_HOOK_RAN.with(|ran| ran.set(true));
}

/// Runs a hook and reports whether it was the trait's default.
fn run_hook<R>(hook: impl FnOnce() -> R) -> (R, bool) {
    DEFAULT_HOOK_RAN.with(|ran| ran.set(false));
    let result = hook();
    (result, DEFAULT_HOOK_RAN.with(|ran| ran.replace(false)))
}

pub fn on_request<P: Plugin>(plugin: &P, head: RequestHead, context: Vec<u8>) -> RequestAction {
    let mut request = Request::from_parts(
        head.method,
        head.path,
        head.query,
        Headers::from_block(head.headers),
    );
    let host = Imports { context };
    let (flow, default) = run_hook(|| plugin.on_request(&mut request, &Context::new(&host)));
    if default {
        return RequestAction::NoPhase;
    }
    match flow {
        RequestFlow::Respond(r) => RequestAction::Respond(response_to_wit(r)),
        RequestFlow::Continue => {
            let (request, response) = request.into_edits();
            RequestAction::Continue(RequestEdits { request, response })
        }
    }
}

pub fn on_response<P: Plugin>(plugin: &P, head: WitResponseHead, context: Vec<u8>) -> ResponseAction {
    let mut response = ResponseHead::from_parts(head.status, Headers::from_block(head.headers));
    let host = Imports { context };
    let (flow, default) = run_hook(|| plugin.on_response(&mut response, &Context::new(&host)));
    if default {
        return ResponseAction::NoPhase;
    }
    match flow {
        ResponseFlow::Continue => ResponseAction::Continue(response.into_edits()),
        ResponseFlow::RewriteBody => ResponseAction::RewriteBody(response.into_edits()),
        ResponseFlow::Replace(r) => ResponseAction::Replace(response_to_wit(r)),
    }
}

pub fn on_response_body<P: Plugin>(plugin: &P, body: Vec<u8>) -> Vec<u8> {
    plugin.on_response_body(body, &Context::new(&Imports::default()))
}
