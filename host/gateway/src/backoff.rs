//! Exponential backoff with jitter, for reconnecting to ZooKeeper.

use std::time::Duration;

pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff { next: Duration::from_millis(100), max: Duration::from_secs(3) }
    }

    /// The next wait: doubles each time up to the maximum, ±25 % jitter.
    pub fn next(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        base.mul_f64(0.75 + fastrand::f64() / 2.0)
    }

    pub fn reset(&mut self) {
        self.next = Duration::from_millis(100);
    }
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::new()
    }
}
