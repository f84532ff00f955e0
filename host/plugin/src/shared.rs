//! State a plugin's instances share: counters, token buckets and a key-value
//! store. One `SharedState` per plugin name, kept across reloads of that
//! plugin, so a new version keeps the rate-limit state of the old one.
//! Each map is split in shards behind their own mutex, so worker threads
//! rarely wait for each other, and each is bounded with LRU eviction.

mod buckets;
mod counters;
mod kv;
pub(crate) mod redis;

use std::hash::{BuildHasher, RandomState};
use std::num::NonZeroUsize;
use std::sync::{Mutex, MutexGuard, PoisonError};

use lru::LruCache;

pub(crate) use buckets::{Bucket, TakeResult};
pub(crate) use counters::Counter;
pub(crate) use kv::KvShard;

/// Shards per map: enough for the few worker threads a gateway runs.
const SHARDS: usize = 8;

/// Everything a plugin's instances share.
pub(crate) struct SharedState {
    pub(crate) counters: Sharded<LruCache<String, Counter>>,
    pub(crate) buckets: Sharded<LruCache<String, Bucket>>,
    pub(crate) kv: Sharded<KvShard>,
}

impl SharedState {
    pub(crate) fn new(max_counters: usize, max_kv_bytes: usize) -> Self {
        let per_shard =
            NonZeroUsize::new((max_counters / SHARDS).max(1)).unwrap_or(NonZeroUsize::MIN);
        let kv_budget = (max_kv_bytes / SHARDS).max(1);
        Self {
            counters: Sharded::new(|| LruCache::new(per_shard)),
            buckets: Sharded::new(|| LruCache::new(per_shard)),
            kv: Sharded::new(|| KvShard::new(kv_budget)),
        }
    }
}

/// A value split in `SHARDS` mutex-guarded parts, chosen by key hash.
pub(crate) struct Sharded<T> {
    shards: Vec<Mutex<T>>,
    hasher: RandomState,
}

impl<T> Sharded<T> {
    fn new(make: impl Fn() -> T) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(make())).collect(),
            hasher: RandomState::new(),
        }
    }

    /// Every shard, for a task that visits them all (the global state sync).
    pub(crate) fn shards(&self) -> &[Mutex<T>] {
        &self.shards
    }

    /// The shard that holds `key`, locked. A poisoned lock (a host panic
    /// while holding it, which the code avoids) is recovered: the maps stay
    /// consistent at every step.
    pub(crate) fn lock(&self, key: &str) -> MutexGuard<'_, T> {
        let at = (self.hasher.hash_one(key) as usize) % self.shards.len();
        self.shards[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}
