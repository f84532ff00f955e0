//! `Context`: everything a plugin can reach outside itself. On wasm32 it
//! calls the gateway's imports; under `cargo test` it calls the fakes of
//! [`crate::testing`]. Plugin code is the same for both.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

/// Outcome of [`Context::take_tokens`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TakeResult {
    /// Whether the tokens were taken.
    pub allowed: bool,
    /// Whole tokens left in the bucket.
    pub remaining: u32,
    /// When refused: how long until enough tokens are back.
    pub retry_after: Duration,
}

/// The capabilities behind a [`Context`]: the gateway's imports on wasm32,
/// fakes in tests. Implement it only to build your own fakes.
pub trait Host {
    fn log(&self, level: Level, message: &str);
    /// Nanoseconds since an arbitrary point.
    fn monotonic_now(&self) -> u64;
    /// Time since the Unix epoch.
    fn wall_now(&self) -> Duration;
    fn counter_add(&self, key: &str, delta: i64, window: Option<Duration>) -> i64;
    fn counter_get(&self, key: &str) -> i64;
    fn take_tokens(&self, key: &str, tokens: u32, rate: f64, burst: u32) -> TakeResult;
    fn kv_get(&self, key: &str) -> Option<Vec<u8>>;
    fn kv_set(&self, key: &str, value: &[u8], ttl: Option<Duration>);
    fn kv_delete(&self, key: &str) -> bool;
    fn client_ip(&self) -> Option<String>;
    fn route(&self) -> String;
    fn listener(&self) -> String;
    fn upstream(&self) -> Option<String>;
    fn scratch_get(&self, key: &str) -> Option<String>;
    fn scratch_set(&self, key: &str, value: &str);
    fn scratch_remove(&self, key: &str) -> Option<String>;
}

/// Handed to every hook: logging, clocks, shared counters and token
/// buckets, a key-value store with expiry, and the request's context.
///
/// Counters, buckets and kv are shared by all instances of the plugin (all
/// routes, all worker threads) and survive reloads that keep the
/// `[plugins]` settings (a reload that changes those starts a new plugin
/// runtime with empty ones); keys are private to the plugin. Include the
/// route in a key when a limit is per route.
pub struct Context<'a> {
    host: &'a dyn Host,
}

impl<'a> Context<'a> {
    pub fn new(host: &'a dyn Host) -> Self {
        Self { host }
    }

    /// Tells the gateway that the hook being run has nothing to do with this
    /// plugin's configuration (a header plugin configured with no response
    /// headers, say): whatever the hook returns and changed in this call is
    /// dropped, the request or response goes on unchanged, and the gateway
    /// stops calling this hook on the instances with this configuration — as
    /// for a hook the plugin does not implement.
    pub fn skip_phase(&self) {
        crate::guest::default_hook_ran();
    }

    pub fn log(&self, level: Level, message: &str) {
        self.host.log(level, message);
    }

    pub fn debug(&self, message: &str) {
        self.log(Level::Debug, message);
    }

    pub fn info(&self, message: &str) {
        self.log(Level::Info, message);
    }

    pub fn warn(&self, message: &str) {
        self.log(Level::Warn, message);
    }

    pub fn error(&self, message: &str) {
        self.log(Level::Error, message);
    }

    /// A monotonic instant, as time since an arbitrary point.
    pub fn monotonic_now(&self) -> Duration {
        Duration::from_nanos(self.host.monotonic_now())
    }

    pub fn wall_now(&self) -> SystemTime {
        UNIX_EPOCH + self.host.wall_now()
    }

    /// Adds `delta` to counter `key` and returns the new value.
    pub fn counter_add(&self, key: &str, delta: i64) -> i64 {
        self.host.counter_add(key, delta, None)
    }

    /// Like `counter_add`, for a counter that restarts from 0 every
    /// `window` (counted from its first add): a fixed-window counter.
    pub fn counter_add_windowed(&self, key: &str, delta: i64, window: Duration) -> i64 {
        self.host.counter_add(key, delta, Some(window))
    }

    pub fn counter_get(&self, key: &str) -> i64 {
        self.host.counter_get(key)
    }

    /// Takes `tokens` from bucket `key`, refilled at `rate` per second up to
    /// `burst` (a new bucket is full). Atomic across all instances.
    pub fn take_tokens(&self, key: &str, tokens: u32, rate: f64, burst: u32) -> TakeResult {
        self.host.take_tokens(key, tokens, rate, burst)
    }

    pub fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        self.host.kv_get(key)
    }

    /// Stores `value` under `key`, expiring after `ttl` if given.
    pub fn kv_set(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        self.host.kv_set(key, value, ttl)
    }

    pub fn kv_delete(&self, key: &str) -> bool {
        self.host.kv_delete(key)
    }

    /// The client's address, when known.
    pub fn client_ip(&self) -> Option<IpAddr> {
        self.host.client_ip().and_then(|ip| ip.parse().ok())
    }

    /// The client's address as the gateway wrote it (`1.2.3.4`, `::1`): for
    /// keys and headers, without parsing.
    pub fn client_ip_text(&self) -> Option<String> {
        self.host.client_ip()
    }

    /// The matched route's name.
    pub fn route(&self) -> String {
        self.host.route()
    }

    /// The listener's name.
    pub fn listener(&self) -> String {
        self.host.listener()
    }

    /// The route's upstream, when it has one.
    pub fn upstream(&self) -> Option<String> {
        self.host.upstream()
    }

    /// A value from the per-request scratch map shared along the chain.
    pub fn scratch_get(&self, key: &str) -> Option<String> {
        self.host.scratch_get(key)
    }

    pub fn scratch_set(&self, key: &str, value: &str) {
        self.host.scratch_set(key, value)
    }

    pub fn scratch_remove(&self, key: &str) -> Option<String> {
        self.host.scratch_remove(key)
    }
}
