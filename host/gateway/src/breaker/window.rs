//! A rolling window of request outcomes: `BUCKETS` slices of the window, each
//! stamped with the slice number it counts, so a stale slice is recognised and
//! reset by the first writer that lands in it. Lock-free; a count racing a reset
//! may be lost, which a rate over many requests does not notice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS: u64 = 10;

pub struct Window {
    buckets: [Bucket; BUCKETS as usize],
    /// Length of one bucket in milliseconds (at least 1).
    bucket_ms: u64,
}

#[derive(Default)]
struct Bucket {
    /// Which slice of time (`now / bucket_ms`) the counts belong to, plus one; 0 = empty.
    slice: AtomicU64,
    requests: AtomicU64,
    failures: AtomicU64,
}

impl Window {
    pub fn new(length: Duration) -> Window {
        let bucket_ms = (length.as_millis() as u64 / BUCKETS).max(1);
        Window { buckets: Default::default(), bucket_ms }
    }

    pub fn add(&self, now_ms: u64, failed: bool) {
        let slice = now_ms / self.bucket_ms + 1;
        let bucket = &self.buckets[(slice % BUCKETS) as usize];
        let seen = bucket.slice.load(Ordering::Acquire);
        if seen != slice && bucket.slice.compare_exchange(seen, slice, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            bucket.requests.store(0, Ordering::Release);
            bucket.failures.store(0, Ordering::Release);
        }
        bucket.requests.fetch_add(1, Ordering::AcqRel);
        if failed {
            bucket.failures.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Requests and failures in the buckets of the last window.
    pub fn sums(&self, now_ms: u64) -> (u64, u64) {
        let current = now_ms / self.bucket_ms + 1;
        self.buckets
            .iter()
            .filter(|b| {
                let slice = b.slice.load(Ordering::Acquire);
                slice != 0 && slice + BUCKETS > current && slice <= current
            })
            .fold((0, 0), |(r, f), b| (r + b.requests.load(Ordering::Acquire), f + b.failures.load(Ordering::Acquire)))
    }

    pub fn clear(&self) {
        for bucket in &self.buckets {
            bucket.slice.store(0, Ordering::Release);
            bucket.requests.store(0, Ordering::Release);
            bucket.failures.store(0, Ordering::Release);
        }
    }
}
