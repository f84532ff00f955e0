//! Exponential backoff with jitter, for reconnecting to ZooKeeper and for accept
//! loops that fail (see `accept`).

use std::time::Duration;

pub struct Backoff {
    first: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff::between(Duration::from_millis(100), Duration::from_secs(3))
    }

    /// Waits from `first`, doubling up to `max`.
    pub fn between(first: Duration, max: Duration) -> Backoff {
        Backoff { first, next: first, max }
    }

    /// The next wait: doubles each time up to the maximum, ±25 % jitter.
    pub fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(0.75 + fastrand::f64() / 2.0)
    }

    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}
