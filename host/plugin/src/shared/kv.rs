//! The key-value store: values with an optional expiry, bounded by bytes,
//! least recently used evicted first.

use std::time::Instant;

use lru::LruCache;

/// One stored value.
struct Entry {
    value: Vec<u8>,
    expires: Option<Instant>,
}

/// One shard of the store.
pub(crate) struct KvShard {
    entries: LruCache<String, Entry>,
    /// Bytes of keys and values held.
    bytes: usize,
    /// Most bytes the shard may hold.
    budget: usize,
}

impl KvShard {
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            entries: LruCache::unbounded(),
            bytes: 0,
            budget,
        }
    }

    pub(crate) fn get(&mut self, now: Instant, key: &str) -> Option<Vec<u8>> {
        let expired = self
            .entries
            .peek(key)
            .is_some_and(|e| e.expires.is_some_and(|at| at <= now));
        if expired {
            self.remove(key);
            return None;
        }
        self.entries.get(key).map(|e| e.value.clone())
    }

    /// Stores `value`; returns false when it alone exceeds the budget.
    pub(crate) fn set(&mut self, key: String, value: Vec<u8>, expires: Option<Instant>) -> bool {
        let size = key.len() + value.len();
        if size > self.budget {
            return false;
        }
        self.remove(&key);
        while self.bytes + size > self.budget {
            match self.entries.pop_lru() {
                Some((k, e)) => self.bytes -= k.len() + e.value.len(),
                None => break,
            }
        }
        self.bytes += size;
        self.entries.put(key, Entry { value, expires });
        true
    }

    pub(crate) fn remove(&mut self, key: &str) -> bool {
        match self.entries.pop(key) {
            Some(e) => {
                self.bytes -= key.len() + e.value.len();
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expiry_and_eviction() {
        let t0 = Instant::now();
        let mut kv = KvShard::new(10);
        assert!(kv.set("a".into(), vec![1; 4], Some(t0 + Duration::from_secs(1))));
        assert_eq!(kv.get(t0, "a"), Some(vec![1; 4]));
        assert_eq!(kv.get(t0 + Duration::from_secs(1), "a"), None);
        assert!(kv.set("b".into(), vec![2; 4], None));
        assert!(kv.set("c".into(), vec![3; 4], None));
        // b + c = 10 bytes; d evicts the least recently used (b).
        assert!(kv.set("d".into(), vec![4; 1], None));
        assert_eq!(kv.get(t0, "b"), None);
        assert_eq!(kv.get(t0, "c"), Some(vec![3; 4]));
        assert!(!kv.set("big".into(), vec![0; 20], None));
        assert!(kv.remove("c"));
        assert!(!kv.remove("c"));
    }
}
