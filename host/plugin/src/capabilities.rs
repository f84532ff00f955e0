//! The host side of the imports a plugin can reach: log, clock, counters,
//! kv and context. Each works on the calling instance's `StoreData`.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bindings::{clock, context, counters, kv, log};
use crate::shared::redis::{OnStateError, StateUnavailable, Taken};
use crate::shared::{Bucket, Counter, SharedState, TakeResult};
use crate::store_data::StoreData;

/// Longest log message kept (longer ones are cut at a char boundary).
const MAX_LOG_MESSAGE: usize = 2048;
/// Longest key counters and kv store: a longer one is kept as its first
/// bytes and a hash of the whole (see `key`).
const MAX_KEY: usize = 512;

/// The process-wide zero of `monotonic-now`.
fn epoch() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

fn truncate(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}

/// The key a counter, bucket or kv entry is stored and found under. A key
/// longer than `MAX_KEY` becomes its first bytes and a hash of the whole, so
/// that memory stays bounded and two long keys with the same start stay
/// two entries. Every operation goes through here, so the same key always
/// finds the same entry.
fn key(mut key: String) -> String {
    if key.len() <= MAX_KEY {
        return key;
    }
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    truncate(&mut key, MAX_KEY - 17);
    key.push_str(&format!("#{:016x}", hasher.finish()));
    key
}

fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

impl crate::bindings::wasmgate::plugin::types::Host for StoreData {}

impl log::Host for StoreData {
    fn log(&mut self, level: log::Level, mut message: String) {
        truncate(&mut message, MAX_LOG_MESSAGE);
        let plugin = &*self.identity.name;
        let version = &*self.identity.version;
        let route = &*self.ctx.route;
        match level {
            log::Level::Trace => {
                tracing::trace!(target: "wasmgate::plugin", plugin, version, route, "{message}")
            }
            log::Level::Debug => {
                tracing::debug!(target: "wasmgate::plugin", plugin, version, route, "{message}")
            }
            log::Level::Info => {
                tracing::info!(target: "wasmgate::plugin", plugin, version, route, "{message}")
            }
            log::Level::Warn => {
                tracing::warn!(target: "wasmgate::plugin", plugin, version, route, "{message}")
            }
            // A panic's message and location (the SDK's panic hook): logged
            // once, as the reason of the trap that follows it.
            log::Level::Error if is_panic(&message) => self.last_error = Some(message),
            log::Level::Error => {
                tracing::error!(target: "wasmgate::plugin", plugin, version, route, "{message}");
                self.last_error = Some(message);
            }
        }
    }
}

/// Whether a plugin's error line is the SDK's panic report (`panicked at
/// <file>:<line>:<column>: <message>`, `panicked: <message>` without a
/// location; SDKs before 0.3 wrote `panic: ...`).
pub(crate) fn is_panic(message: &str) -> bool {
    ["panicked at ", "panicked: ", "panic: "].iter().any(|start| message.starts_with(start))
}

impl clock::Host for StoreData {
    fn monotonic_now(&mut self) -> u64 {
        u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn wall_now(&mut self) -> clock::Datetime {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        clock::Datetime {
            seconds: since.as_secs(),
            nanoseconds: since.subsec_nanos(),
        }
    }
}

impl counters::Host for StoreData {
    fn add(&mut self, k: String, delta: i64, window_ms: Option<u64>) -> i64 {
        let k = key(k);
        let now = Instant::now();
        let window = window_ms.map(millis);
        let mut shard = self.identity.shared.counters.lock(&k);
        if let Some(counter) = shard.get_mut(k.as_str()) {
            return counter.add(now, delta, window);
        }
        let mut counter = Counter::new(now, window);
        let value = counter.add(now, delta, window);
        shard.put(k, counter);
        value
    }

    fn get(&mut self, k: String) -> i64 {
        let k = key(k);
        let shard = self.identity.shared.counters.lock(&k);
        shard.peek(k.as_str()).map_or(0, |c| c.get(Instant::now()))
    }

    fn take(
        &mut self,
        k: String,
        tokens: u32,
        rate: f64,
        burst: u32,
    ) -> wasmtime::Result<counters::TakeResult> {
        let k = key(k);
        let result = match &self.global {
            None => local_take(&self.identity.shared, k, tokens, rate, burst),
            Some(global) => match global.state.take(&self.identity.name, &k, tokens, rate, burst) {
                Taken::Granted(result) => result,
                Taken::Unreachable if global.on_error == OnStateError::FailClosed => {
                    return Err(wasmtime::Error::new(StateUnavailable));
                }
                // Redis unreachable (fail-open) or too many keys leased: this
                // gateway's share of the limit, in a local bucket of its own.
                Taken::Unreachable | Taken::Full => {
                    let (rate, burst) = global.state.fallback(rate, burst);
                    local_take(&self.identity.shared, format!("fleet-fallback|{k}"), tokens, rate, burst)
                }
            },
        };
        Ok(counters::TakeResult {
            allowed: result.allowed,
            remaining: result.remaining,
            retry_after_ms: result.retry_after_ms,
        })
    }
}

/// `take` on this gateway's own bucket `k`.
fn local_take(shared: &SharedState, k: String, tokens: u32, rate: f64, burst: u32) -> TakeResult {
    let now = Instant::now();
    let mut shard = shared.buckets.lock(&k);
    match shard.get_mut(k.as_str()) {
        Some(bucket) => bucket.take(now, tokens, rate, burst),
        None => {
            let mut bucket = Bucket::new(now, burst);
            let result = bucket.take(now, tokens, rate, burst);
            shard.put(k, bucket);
            result
        }
    }
}

impl kv::Host for StoreData {
    fn get(&mut self, k: String) -> Option<Vec<u8>> {
        let k = key(k);
        self.identity.shared.kv.lock(&k).get(Instant::now(), &k)
    }

    fn set(&mut self, k: String, value: Vec<u8>, ttl_ms: Option<u64>) {
        let expires = ttl_ms.and_then(|ms| Instant::now().checked_add(millis(ms)));
        let k = key(k);
        let stored = self.identity.shared.kv.lock(&k).set(k, value, expires);
        if !stored {
            tracing::warn!(
                plugin = &*self.identity.name,
                "kv value larger than the store; not stored"
            );
        }
    }

    fn delete(&mut self, k: String) -> bool {
        let k = key(k);
        self.identity.shared.kv.lock(&k).remove(&k)
    }
}

impl context::Host for StoreData {
    fn client_ip(&mut self) -> Option<String> {
        self.ctx.client_ip.map(|ip| ip.to_string())
    }

    fn route(&mut self) -> String {
        self.ctx.route.to_string()
    }

    fn listener(&mut self) -> String {
        self.ctx.listener.to_string()
    }

    fn upstream(&mut self) -> Option<String> {
        self.ctx.upstream.as_deref().map(str::to_owned)
    }

    fn scratch_get(&mut self, key: String) -> Option<String> {
        self.ctx.scratch.get(&key).map(str::to_owned)
    }

    fn scratch_set(&mut self, key: String, value: String) {
        if !self.ctx.scratch.set(key, value) {
            tracing::warn!(
                plugin = &*self.identity.name,
                "scratch map full or entry too big; not stored"
            );
        }
    }

    fn scratch_remove(&mut self, key: String) -> Option<String> {
        self.ctx.scratch.remove(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_bounded_stable_and_distinct() {
        let short = "route|ip:10.0.0.1".to_owned();
        assert_eq!(key(short.clone()), short);
        let a = "a".repeat(600);
        let b = format!("{}b", "a".repeat(599));
        assert!(key(a.clone()).len() <= MAX_KEY);
        assert_eq!(key(a.clone()), key(a.clone()), "the same key must find the same entry");
        assert_ne!(key(a), key(b), "two long keys with the same start stay two entries");
        let multibyte = "é".repeat(400);
        assert!(key(multibyte).len() <= MAX_KEY);
    }
}
