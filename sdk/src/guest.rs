//! The glue `export_plugin!` expands to: converts between the generated
//! WIT types and the SDK's, parses the config, and implements `Host` with
//! the gateway's imports.

use std::cell::RefCell;
use std::ops::Range;
use std::time::Duration;

use crate::bindings::wasmgate::plugin::types::{
    RequestAction, RequestEdits, Response as WitResponse, ResponseAction,
};
use crate::bindings::wasmgate::plugin::{clock, context, counters, kv, log};
use crate::context::{Context, Host, Level, TakeResult};
use crate::headers::Headers;
use crate::http::{Part, Request, RequestFlow, Response, ResponseFlow, ResponseHead};
use crate::Plugin;

/// The context lines of the phase call being handled, copied out of its
/// head (the allocation is reused from call to call).
#[derive(Default)]
struct ContextLines(Vec<u8>);

impl ContextLines {
    fn fill(&mut self, lines: &[u8]) {
        self.0.clear();
        self.0.extend_from_slice(lines);
    }

    /// The value of line `name:value`. A handful of short lines: a line is
    /// compared only when a `:` stands where `name` would end, and values
    /// (addresses and names the gateway wrote) are checked as ASCII first.
    fn get(&self, name: &str) -> Option<&str> {
        let name = name.as_bytes();
        let mut rest = self.0.as_slice();
        while !rest.is_empty() {
            let end = memchr::memchr(b'\n', rest).unwrap_or(rest.len());
            let line = &rest[..end];
            if line.get(name.len()) == Some(&b':') && &line[..name.len()] == name {
                let value = &line[name.len() + 1..];
                return match is_ascii(value) {
                    // SAFETY: ASCII is UTF-8.
                    true => Some(unsafe { std::str::from_utf8_unchecked(value) }),
                    false => std::str::from_utf8(value).ok(),
                };
            }
            rest = rest.get(end + 1..).unwrap_or_default();
        }
        None
    }
}

thread_local! {
    static CONTEXT_LINES: RefCell<ContextLines> = RefCell::new(ContextLines::default());
}

/// The gateway's imports. In a phase call, the context values come from
/// the context lines of its head instead (no call); in `init` and
/// `on_response_body` there are none, and the imports answer. Calling the
/// imports off wasm32 hits the stubs of the generated bindings: the native
/// tests use `testing::FakeHost` instead.
#[derive(Default)]
pub struct Imports {
    /// Whether `CONTEXT_LINES` holds this call's context.
    in_phase: bool,
}

impl Imports {
    /// Context lines for a phase call.
    fn for_phase(lines: &[u8]) -> Self {
        CONTEXT_LINES.with(|held| held.borrow_mut().fill(lines));
        Self { in_phase: true }
    }

    /// A context value: `None` outside a phase call (ask the import),
    /// `Some(None)` when the head does not carry it.
    fn context_value(&self, name: &str) -> Option<Option<String>> {
        if !self.in_phase {
            return None;
        }
        Some(CONTEXT_LINES.with(|lines| lines.borrow().get(name).map(str::to_owned)))
    }
}

/// Whether `bytes` are ASCII, sixteen at a time (a byte-at-a-time loop is
/// slow in Wasm, and paths and queries are mostly long runs of ASCII).
fn is_ascii(bytes: &[u8]) -> bool {
    let chunks = bytes.chunks_exact(16);
    let rest = chunks.remainder();
    let high = chunks.fold(0u128, |acc, chunk| match <[u8; 16]>::try_from(chunk) {
        Ok(chunk) => acc | u128::from_le_bytes(chunk),
        Err(_) => u128::MAX,
    });
    high & 0x8080_8080_8080_8080_8080_8080_8080_8080 == 0 && rest.is_ascii()
}

/// Cuts a packed head into its `N` fields: it starts with `N` little-endian
/// u32 lengths, and the fields follow back to back; a length of `u32::MAX`
/// is an absent field. A head that does not hold its fields is the
/// gateway's bug: the call fails (a 500 or a skip, as the route says) and
/// the panic message is logged.
fn fields<const N: usize>(head: &[u8]) -> [Option<Range<usize>>; N] {
    let mut at = N * 4;
    std::array::from_fn(|i| {
        let length = head
            .get(i * 4..i * 4 + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map_or(0, u32::from_le_bytes);
        if length == u32::MAX {
            return None;
        }
        let end = at.saturating_add(length as usize);
        if end > head.len() {
            panic!("malformed head from the gateway: a field runs past its end");
        }
        let field = at..end;
        at = end;
        Some(field)
    })
}

/// A request part from a packed field: in place if it is UTF-8.
fn part(head: &[u8], field: Range<usize>) -> Part {
    let bytes = &head[field.clone()];
    match is_ascii(bytes) || std::str::from_utf8(bytes).is_ok() {
        true => Part::Packed(field.start, field.end),
        false => Part::Own(String::from_utf8_lossy(bytes).into_owned()),
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
        self.context_value("client-ip")
            .unwrap_or_else(context::client_ip)
    }

    fn route(&self) -> String {
        self.context_value("route")
            .map_or_else(context::route, Option::unwrap_or_default)
    }

    fn listener(&self) -> String {
        self.context_value("listener")
            .map_or_else(context::listener, Option::unwrap_or_default)
    }

    fn upstream(&self) -> Option<String> {
        self.context_value("upstream")
            .unwrap_or_else(context::upstream)
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
/// offending key in the terms of the TOML it came from (`config_error`).
pub fn parse_config<T: serde::de::DeserializeOwned>(config: &str) -> Result<T, String> {
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(crate::config_error::describe)?;
    de.end().map_err(|e| format!("invalid config: {e}"))?;
    Ok(value)
}

/// Hands a panic's message and location to the gateway before the instance
/// aborts; the gateway logs it once, as the reason of the trap that follows.
fn install_panic_hook() {
    #[cfg(target_arch = "wasm32")]
    std::panic::set_hook(Box::new(|info| {
        Imports::default().log(Level::Error, &panic_line(info));
    }));
}

/// `panicked at src/lib.rs:12:9: <message>`, on one line.
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
fn panic_line(info: &std::panic::PanicHookInfo<'_>) -> String {
    let message = info
        .payload()
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| info.payload().downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_owned());
    let message = message.replace('\n', " ");
    match info.location() {
        Some(at) => format!("panicked at {}:{}:{}: {message}", at.file(), at.line(), at.column()),
        None => format!("panicked: {message}"),
    }
}

fn response_to_wit(r: Response) -> WitResponse {
    let (status, headers, body) = r.into_parts();
    WitResponse {
        status,
        headers: headers.into_block(),
        body,
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

pub fn on_request<P: Plugin>(plugin: &P, head: Vec<u8>) -> RequestAction {
    let [method, path, query, context, headers] = fields(&head);
    let host = Imports::for_phase(&head[context.unwrap_or_default()]);
    let (method, path) = (method.unwrap_or_default(), path.unwrap_or_default());
    let (method, path) = (part(&head, method), part(&head, path));
    let query = query.map(|q| part(&head, q));
    let start = headers.map_or(head.len(), |h| h.start);
    let mut request = Request::from_parts(method, path, query, Headers::from_head(head, start));
    let (flow, default) = run_hook(|| plugin.on_request(&mut request, &Context::new(&host)));
    if default {
        return RequestAction::NoPhase;
    }
    match flow {
        RequestFlow::Respond(mut r) => {
            request.response_headers_onto(r.headers_mut());
            RequestAction::Respond(response_to_wit(r))
        }
        RequestFlow::Continue => {
            let (request, response) = request.into_edits();
            RequestAction::Continue(RequestEdits { request, response })
        }
    }
}

pub fn on_response<P: Plugin>(plugin: &P, status: u16, head: Vec<u8>) -> ResponseAction {
    let [context, headers] = fields(&head);
    let host = Imports::for_phase(&head[context.unwrap_or_default()]);
    let start = headers.map_or(head.len(), |h| h.start);
    let mut response = ResponseHead::from_parts(status, Headers::from_head(head, start));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoConfig;

    /// Packs a head as the gateway does: u32 lengths, then the fields.
    fn pack(fields: &[Option<&[u8]>]) -> Vec<u8> {
        let mut head = Vec::new();
        for field in fields {
            let len = field.map_or(u32::MAX, |f| f.len() as u32);
            head.extend_from_slice(&len.to_le_bytes());
        }
        for field in fields.iter().flatten() {
            head.extend_from_slice(field);
        }
        head
    }

    /// Answers with what it saw, as response headers.
    struct Echo;

    impl Plugin for Echo {
        type Config = NoConfig;

        fn new(_: NoConfig, _: &Context) -> Result<Self, String> {
            Ok(Echo)
        }

        fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
            let seen = format!(
                "{} {} {:?} {:?} {} {:?}",
                request.method(),
                request.path(),
                request.query(),
                request.header("x-a"),
                cx.route(),
                cx.client_ip_text(),
            );
            request.set_response_header("x-seen", seen);
            request.set_header("x-b", "2");
            RequestFlow::Continue
        }

        fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
            let seen = format!(
                "{} {:?} {}",
                response.status(),
                response.header("x-a"),
                cx.route()
            );
            response.set_header("x-seen", seen);
            ResponseFlow::Continue
        }
    }

    #[test]
    fn a_packed_request_head_unpacks_in_place() {
        let context = b"client-ip:10.0.0.1\nroute:r\nlistener:l\n";
        let head = pack(&[
            Some(b"GET"),
            Some(b"/p"),
            Some(b"q=1"),
            Some(context),
            Some(b"x-a:1\n"),
        ]);
        let RequestAction::Continue(edits) = on_request(&Echo, head) else {
            panic!("Echo goes on");
        };
        assert_eq!(edits.request, b"=x-b:2\n");
        let seen = String::from_utf8_lossy(&edits.response).into_owned();
        assert_eq!(
            seen,
            "=x-seen:GET /p Some(\"q=1\") Some(\"1\") r Some(\"10.0.0.1\")\n"
        );

        let head = pack(&[
            Some(b"GET"),
            Some(b"/"),
            None,
            Some(b"route:r\n"),
            Some(b""),
        ]);
        let RequestAction::Continue(edits) = on_request(&Echo, head) else {
            panic!("Echo goes on");
        };
        assert!(String::from_utf8_lossy(&edits.response).contains("GET / None None r None"));
    }

    #[test]
    fn a_packed_response_head_unpacks_in_place() {
        let head = pack(&[Some(b"route:r\n"), Some(b"x-a:1\n")]);
        let ResponseAction::Continue(edits) = on_response(&Echo, 404, head) else {
            panic!("Echo goes on");
        };
        assert_eq!(edits, b"=x-seen:404 Some(\"1\") r\n");
    }

    #[test]
    fn ascii_is_told_from_utf8_at_every_position() {
        let text = "/a/path/that/is/long/enough/for/chunks?q=1";
        assert!(is_ascii(text.as_bytes()));
        for at in 0..text.len() {
            let mut bytes = text.as_bytes().to_vec();
            bytes[at] = 0xc3;
            assert!(!is_ascii(&bytes), "non-ASCII at {at}");
        }
        assert!(is_ascii(b""));
    }

    #[test]
    #[should_panic(expected = "malformed head")]
    fn a_head_that_does_not_hold_its_fields_fails_the_call() {
        let mut head = pack(&[Some(b"GET"), Some(b"/"), None, Some(b""), Some(b"")]);
        head.truncate(head.len() - 1);
        on_request(&Echo, head);
    }
}
