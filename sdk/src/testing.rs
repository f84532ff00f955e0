//! Run a plugin's logic under plain `cargo test`, on the host, with fake
//! capabilities: a clock you move by hand, in-memory counters, buckets and
//! kv, a request context you set, and the log lines kept for assertions.
//!
//! ```
//! use wasmgate_sdk::prelude::*;
//! use wasmgate_sdk::testing::Harness;
//!
//! struct Hello;
//! impl Plugin for Hello {
//!     type Config = NoConfig;
//!     fn new(_: NoConfig, _: &Context) -> Result<Self, String> { Ok(Hello) }
//!     fn on_request(&self, req: &mut Request, _: &Context) -> RequestFlow {
//!         req.set_header("x-hello", "world");
//!         RequestFlow::Continue
//!     }
//! }
//!
//! let plugin = Harness::<Hello>::new("{}").unwrap();
//! let mut req = Request::new("GET", "/");
//! assert_eq!(plugin.on_request(&mut req), RequestFlow::Continue);
//! assert_eq!(req.header("x-hello"), Some("world"));
//! ```
//!
//! [`Harness::run`] takes a request and the upstream's response through both
//! phases, as the gateway would, and returns what the client gets: the
//! shortest way to check a plugin end to end, response headers set in
//! `on_request` included.
//!
//! ```
//! # use wasmgate_sdk::prelude::*;
//! # use wasmgate_sdk::testing::Harness;
//! struct Stamp;
//! impl Plugin for Stamp {
//!     type Config = NoConfig;
//!     fn new(_: NoConfig, _: &Context) -> Result<Self, String> { Ok(Stamp) }
//!     fn on_request(&self, req: &mut Request, _: &Context) -> RequestFlow {
//!         if req.header("authorization").is_none() {
//!             return RequestFlow::Respond(Response::json(401, &json!({ "error": "who are you?" })));
//!         }
//!         req.set_response_header("x-seen-by", "stamp");
//!         RequestFlow::Continue
//!     }
//! }
//!
//! let plugin = Harness::<Stamp>::new("{}").unwrap();
//! let upstream = Response::text(200, "hello");
//!
//! let exchange = plugin.run(Request::new("GET", "/").with_header("authorization", "k"), upstream.clone());
//! assert!(!exchange.answered());
//! assert_eq!(exchange.response().header("x-seen-by"), Some("stamp"));
//! assert_eq!(exchange.response().body_text(), Some("hello"));
//!
//! let exchange = plugin.run(Request::new("GET", "/"), upstream);
//! assert!(exchange.answered());
//! assert_eq!(exchange.response().status(), 401);
//! ```

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use crate::context::{Context, Host, Level, TakeResult};
use crate::guest::parse_config;
use crate::http::{Request, RequestFlow, Response, ResponseFlow, ResponseHead};
use crate::Plugin;

/// A counter: value, window start (ns), window.
type FakeCounter = (i64, u64, Option<Duration>);
/// A kv entry: value, expiry (ns).
type FakeEntry = (Vec<u8>, Option<u64>);

/// Fake capabilities. Time stands still until [`FakeHost::advance`].
#[derive(Debug)]
pub struct FakeHost {
    /// Nanoseconds on the fake monotonic clock.
    now: Cell<u64>,
    /// Wall clock at `now == 0`.
    wall_start: Cell<Duration>,
    counters: RefCell<HashMap<String, FakeCounter>>,
    /// Token buckets: (tokens, last refill in ns).
    buckets: RefCell<HashMap<String, (f64, u64)>>,
    kv: RefCell<HashMap<String, FakeEntry>>,
    logs: RefCell<Vec<(Level, String)>>,
    client_ip: RefCell<Option<String>>,
    route: RefCell<String>,
    listener: RefCell<String>,
    upstream: RefCell<Option<String>>,
    scratch: RefCell<HashMap<String, String>>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self {
            now: Cell::new(0),
            wall_start: Cell::new(Duration::from_secs(1_700_000_000)),
            counters: RefCell::default(),
            buckets: RefCell::default(),
            kv: RefCell::default(),
            logs: RefCell::default(),
            client_ip: RefCell::new(Some("127.0.0.1".into())),
            route: RefCell::new("test-route".into()),
            listener: RefCell::new("test-listener".into()),
            upstream: RefCell::new(Some("test-upstream".into())),
            scratch: RefCell::default(),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl FakeHost {
    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        self.now.set(self.now.get().saturating_add(nanos(by)));
    }

    /// Sets the wall clock (seconds since the Unix epoch) at the current instant.
    pub fn set_wall_clock(&self, since_epoch: Duration) {
        self.wall_start
            .set(since_epoch.saturating_sub(Duration::from_nanos(self.now.get())));
    }

    pub fn set_client_ip(&self, ip: Option<&str>) {
        *self.client_ip.borrow_mut() = ip.map(str::to_owned);
    }

    pub fn set_route(&self, route: &str) {
        *self.route.borrow_mut() = route.to_owned();
    }

    pub fn set_listener(&self, listener: &str) {
        *self.listener.borrow_mut() = listener.to_owned();
    }

    pub fn set_upstream(&self, upstream: Option<&str>) {
        *self.upstream.borrow_mut() = upstream.map(str::to_owned);
    }

    /// The scratch map, as the next plugin would see it.
    pub fn scratch(&self) -> HashMap<String, String> {
        self.scratch.borrow().clone()
    }

    /// Puts an entry in the scratch map, as an earlier plugin of the route
    /// would (an auth plugin naming the consumer).
    pub fn set_scratch(&self, key: &str, value: &str) {
        self.scratch
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
    }

    /// Clears the per-request state (scratch), as between two requests.
    pub fn next_request(&self) {
        self.scratch.borrow_mut().clear();
    }

    /// Every line logged so far.
    pub fn logs(&self) -> Vec<(Level, String)> {
        self.logs.borrow().clone()
    }
}

impl Host for FakeHost {
    fn log(&self, level: Level, message: &str) {
        self.logs.borrow_mut().push((level, message.to_owned()));
    }

    fn monotonic_now(&self) -> u64 {
        self.now.get()
    }

    fn wall_now(&self) -> Duration {
        self.wall_start.get() + Duration::from_nanos(self.now.get())
    }

    fn counter_add(&self, key: &str, delta: i64, window: Option<Duration>) -> i64 {
        let now = self.now.get();
        let mut counters = self.counters.borrow_mut();
        let entry = counters.entry(key.to_owned()).or_insert((0, now, window));
        entry.2 = window;
        if window.is_some_and(|w| now.saturating_sub(entry.1) >= nanos(w)) {
            *entry = (0, now, window);
        }
        entry.0 = entry.0.saturating_add(delta);
        entry.0
    }

    fn counter_get(&self, key: &str) -> i64 {
        let now = self.now.get();
        match self.counters.borrow().get(key) {
            Some((_, start, Some(w))) if now.saturating_sub(*start) >= nanos(*w) => 0,
            Some((value, _, _)) => *value,
            None => 0,
        }
    }

    fn take_tokens(&self, key: &str, tokens: u32, rate: f64, burst: u32) -> TakeResult {
        let now = self.now.get();
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        };
        let mut buckets = self.buckets.borrow_mut();
        let bucket = buckets
            .entry(key.to_owned())
            .or_insert((f64::from(burst), now));
        let elapsed = now.saturating_sub(bucket.1) as f64 / 1e9;
        bucket.0 = (bucket.0 + elapsed * rate).min(f64::from(burst));
        bucket.1 = now;
        let want = f64::from(tokens);
        if bucket.0 >= want {
            bucket.0 -= want;
            return TakeResult {
                allowed: true,
                remaining: bucket.0 as u32,
                retry_after: Duration::ZERO,
            };
        }
        let retry_after = if want > f64::from(burst) || rate == 0.0 {
            Duration::MAX
        } else {
            Duration::from_millis((((want - bucket.0) / rate) * 1000.0).ceil() as u64)
        };
        TakeResult {
            allowed: false,
            remaining: bucket.0 as u32,
            retry_after,
        }
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        let now = self.now.get();
        let mut kv = self.kv.borrow_mut();
        if kv
            .get(key)
            .is_some_and(|(_, exp)| exp.is_some_and(|at| at <= now))
        {
            kv.remove(key);
        }
        kv.get(key).map(|(v, _)| v.clone())
    }

    fn kv_set(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        let expires = ttl.map(|t| self.now.get().saturating_add(nanos(t)));
        self.kv
            .borrow_mut()
            .insert(key.to_owned(), (value.to_vec(), expires));
    }

    fn kv_delete(&self, key: &str) -> bool {
        self.kv.borrow_mut().remove(key).is_some()
    }

    fn client_ip(&self) -> Option<String> {
        self.client_ip.borrow().clone()
    }

    fn route(&self) -> String {
        self.route.borrow().clone()
    }

    fn listener(&self) -> String {
        self.listener.borrow().clone()
    }

    fn upstream(&self) -> Option<String> {
        self.upstream.borrow().clone()
    }

    fn scratch_get(&self, key: &str) -> Option<String> {
        self.scratch.borrow().get(key).cloned()
    }

    fn scratch_set(&self, key: &str, value: &str) {
        self.scratch
            .borrow_mut()
            .insert(key.to_owned(), value.to_owned());
    }

    fn scratch_remove(&self, key: &str) -> Option<String> {
        self.scratch.borrow_mut().remove(key)
    }
}

/// Does to `response` what the gateway does with the response headers a
/// plugin set in `on_request` ([`Request::set_response_header`] and
/// friends) when the response comes back through it: replays them in order,
/// leaving the framing headers (`content-length`, `transfer-encoding`) alone.
/// (The gateway also refuses invalid names and values; this does not check.)
/// [`Harness::run`] does this for you; this is for driving the phases one by
/// one.
pub fn apply_response_edits(request: &Request, response: &mut ResponseHead) {
    for (op, name, value) in request.response_edit_lines() {
        match op {
            b'=' => response.set_header(&name, &value),
            b'+' => response.append_header(&name, &value),
            _ => {
                response.remove_header(&name);
            }
        }
    }
}

/// A plugin initialised from config text, as the gateway would, with a
/// [`FakeHost`] behind its `Context`.
pub struct Harness<P: Plugin> {
    plugin: P,
    host: FakeHost,
}

impl<P: Plugin> Harness<P> {
    /// Parses `config_json` and calls `Plugin::new`, exactly as the
    /// gateway's `init` does: the error is the message the gateway prints.
    pub fn new(config_json: &str) -> Result<Self, String> {
        Self::with_host(config_json, FakeHost::default())
    }

    /// Like [`Harness::new`] with a host you prepared.
    pub fn with_host(config_json: &str, host: FakeHost) -> Result<Self, String> {
        let config = parse_config::<P::Config>(config_json)?;
        let plugin = P::new(config, &Context::new(&host))?;
        Ok(Self { plugin, host })
    }

    pub fn host(&self) -> &FakeHost {
        &self.host
    }

    pub fn plugin(&self) -> &P {
        &self.plugin
    }

    /// Like the gateway: an answer also gets the response headers the plugin
    /// set before answering (what the answer sets itself wins).
    pub fn on_request(&self, request: &mut Request) -> RequestFlow {
        match self.plugin.on_request(request, &Context::new(&self.host)) {
            RequestFlow::Respond(mut answer) => {
                request.response_headers_onto(answer.headers_mut());
                RequestFlow::Respond(answer)
            }
            flow => flow,
        }
    }

    /// Calls `on_response` alone: the response headers the plugin set in
    /// `on_request` are not applied (see [`Harness::run`], or
    /// [`apply_response_edits`]).
    pub fn on_response(&self, response: &mut ResponseHead) -> ResponseFlow {
        self.plugin.on_response(response, &Context::new(&self.host))
    }

    pub fn on_response_body(&self, body: Vec<u8>) -> Vec<u8> {
        self.plugin
            .on_response_body(body, &Context::new(&self.host))
    }

    /// Takes `request` through the plugin as the gateway would, with
    /// `upstream` as the upstream's answer, and returns what the client gets:
    /// `on_request`; if the plugin answered, its answer (with the response
    /// headers it set before answering) and nothing more; else the response
    /// headers it set in `on_request` are put on `upstream`, then
    /// `on_response` runs, then `on_response_body` if it asked for the body,
    /// and a `Replace` takes the place of the whole response. The scratch map
    /// is shared by both phases and kept afterwards (see
    /// [`FakeHost::next_request`]).
    pub fn run(&self, mut request: Request, upstream: Response) -> Exchange {
        if let RequestFlow::Respond(answer) = self.on_request(&mut request) {
            return Exchange {
                request,
                response: answer,
                answered: true,
            };
        }
        let (mut head, body) = ResponseHead::from_response(upstream);
        apply_response_edits(&request, &mut head);
        let response = match self.on_response(&mut head) {
            ResponseFlow::Continue => head.into_response(body),
            ResponseFlow::RewriteBody => {
                let body = self.on_response_body(body);
                head.into_response(body)
            }
            ResponseFlow::Replace(replacement) => replacement,
        };
        Exchange {
            request,
            response,
            answered: false,
        }
    }
}

/// A request and its response after [`Harness::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// The request as `on_request` left it.
    request: Request,
    /// What the client gets.
    response: Response,
    /// Whether the plugin answered in `on_request` (the upstream was not asked).
    answered: bool,
}

impl Exchange {
    /// The request as `on_request` left it: what the upstream received,
    /// unless the plugin answered.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The response the client gets.
    pub fn response(&self) -> &Response {
        &self.response
    }

    /// Whether the plugin answered the request itself (`RequestFlow::Respond`),
    /// so that the upstream was not asked.
    pub fn answered(&self) -> bool {
        self.answered
    }

    pub fn into_response(self) -> Response {
        self.response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allows `burst` requests per client, refilling at `rate` per second.
    struct Limiter {
        rate: f64,
        burst: u32,
    }

    #[derive(serde::Deserialize)]
    struct LimiterConfig {
        rate: f64,
        burst: u32,
    }

    impl Plugin for Limiter {
        type Config = LimiterConfig;

        fn new(c: LimiterConfig, _cx: &Context) -> Result<Self, String> {
            Ok(Limiter {
                rate: c.rate,
                burst: c.burst,
            })
        }

        fn on_request(&self, _req: &mut Request, cx: &Context) -> RequestFlow {
            let key = cx.client_ip().map(|ip| ip.to_string()).unwrap_or_default();
            if cx.take_tokens(&key, 1, self.rate, self.burst).allowed {
                RequestFlow::Continue
            } else {
                cx.warn("limited");
                RequestFlow::Respond(Response::text(429, "slow down"))
            }
        }
    }

    fn status(flow: RequestFlow) -> u16 {
        match flow {
            RequestFlow::Continue => 0,
            RequestFlow::Respond(r) => r.status(),
        }
    }

    #[test]
    fn a_rate_limiter_runs_on_the_fake_clock() {
        let h =
            Harness::<Limiter>::new(r#"{"rate": 1, "burst": 2}"#).unwrap_or_else(|e| panic!("{e}"));
        let mut req = Request::new("GET", "/");
        assert_eq!(status(h.on_request(&mut req)), 0);
        assert_eq!(status(h.on_request(&mut req)), 0);
        assert_eq!(status(h.on_request(&mut req)), 429);
        assert_eq!(h.host().logs(), vec![(Level::Warn, "limited".to_owned())]);
        h.host().advance(Duration::from_secs(1));
        assert_eq!(status(h.on_request(&mut req)), 0);
        h.host().set_client_ip(Some("10.0.0.2"));
        assert_eq!(
            status(h.on_request(&mut req)),
            0,
            "another client has its own bucket"
        );
    }

    #[test]
    fn bad_config_names_the_key() {
        let err = Harness::<Limiter>::new(r#"{"rate": "fast", "burst": 2}"#)
            .err()
            .unwrap_or_default();
        assert!(err.starts_with("invalid config at `rate`:"), "{err}");
    }

    #[test]
    fn fake_counters_kv_and_clock() {
        let host = FakeHost::default();
        let cx = Context::new(&host);
        let window = Duration::from_secs(60);
        assert_eq!(cx.counter_add_windowed("k", 5, window), 5);
        host.advance(window);
        assert_eq!(cx.counter_get("k"), 0);
        assert_eq!(cx.counter_add_windowed("k", 1, window), 1);
        cx.kv_set("a", b"1", Some(Duration::from_secs(1)));
        assert_eq!(cx.kv_get("a"), Some(b"1".to_vec()));
        host.advance(Duration::from_secs(1));
        assert_eq!(cx.kv_get("a"), None);
        let before = cx.wall_now();
        host.advance(Duration::from_secs(2));
        assert_eq!(
            cx.wall_now().duration_since(before).ok(),
            Some(Duration::from_secs(2))
        );
        cx.scratch_set("user", "u1");
        assert_eq!(host.scratch().get("user").map(String::as_str), Some("u1"));
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    /// Sets response headers, then answers itself.
    struct EarlyAnswer;

    impl Plugin for EarlyAnswer {
        type Config = crate::NoConfig;
        fn new(_: crate::NoConfig, _: &Context) -> Result<Self, String> {
            Ok(EarlyAnswer)
        }
        fn on_request(&self, request: &mut Request, _: &Context) -> RequestFlow {
            request.set_response_header("x-limit", "10");
            request.set_response_header("x-both", "from-request");
            request.set_path("/a?b#c");
            RequestFlow::Respond(Response::new(429).with_header("x-both", "from-answer"))
        }
    }

    #[test]
    fn an_answer_keeps_the_response_headers_set_before_it() {
        let h = Harness::<EarlyAnswer>::new("{}").unwrap_or_else(|e| panic!("{e}"));
        let mut request = Request::new("GET", "/");
        match h.on_request(&mut request) {
            RequestFlow::Respond(answer) => {
                assert_eq!(answer.header("x-limit"), Some("10"));
                assert_eq!(answer.header("x-both"), Some("from-answer"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(request.path(), "/a%3Fb%23c", "? and # in a path are encoded");
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;

    /// Marks the response at request time, then in the response phase:
    /// shouts the body back (`?shout`), replaces a 5xx, or sees its own mark.
    struct Marker;

    impl Plugin for Marker {
        type Config = crate::NoConfig;
        fn new(_: crate::NoConfig, _: &Context) -> Result<Self, String> {
            Ok(Marker)
        }
        fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
            request.set_response_header("x-mark", "request");
            let shout = request.query() == Some("shout");
            cx.scratch_set("shout", if shout { "1" } else { "0" });
            RequestFlow::Continue
        }
        fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
            if response.status() >= 500 {
                let down = crate::json::json!({ "error": "down" });
                return ResponseFlow::Replace(Response::json(503, &down));
            }
            let seen = response.header("x-mark").unwrap_or("none").to_owned();
            response.set_header("x-mark-seen", seen);
            match cx.scratch_get("shout").as_deref() {
                Some("1") => ResponseFlow::RewriteBody,
                _ => ResponseFlow::Continue,
            }
        }
        fn on_response_body(&self, body: Vec<u8>, _: &Context) -> Vec<u8> {
            body.to_ascii_uppercase()
        }
    }

    fn harness() -> Harness<Marker> {
        Harness::new("{}").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn response_edits_from_the_request_come_before_on_response() {
        let exchange = harness().run(Request::new("GET", "/"), Response::text(200, "hi"));
        let response = exchange.response();
        assert!(!exchange.answered());
        assert_eq!(response.status(), 200);
        assert_eq!(response.header("x-mark"), Some("request"));
        assert_eq!(response.header("x-mark-seen"), Some("request"));
        let content_type = response.header("content-type");
        assert_eq!(content_type, Some("text/plain; charset=utf-8"));
        assert_eq!(response.body_text(), Some("hi"));
    }

    #[test]
    fn a_body_rewrite_and_a_replacement_are_applied() {
        let h = harness();
        let shouted = h.run(Request::new("GET", "/?shout"), Response::text(200, "hi"));
        assert_eq!(shouted.response().body_text(), Some("HI"));
        assert_eq!(shouted.request().query(), Some("shout"));
        let replaced = h.run(Request::new("GET", "/"), Response::new(502));
        let replaced = replaced.into_response();
        assert_eq!(replaced.status(), 503);
        assert_eq!(replaced.body_text(), Some(r#"{"error":"down"}"#));
        assert_eq!(replaced.header("x-mark"), None, "a replacement is whole");
    }
}
