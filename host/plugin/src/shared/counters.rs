//! Counters, optionally restarting every window (fixed-window counting).

use std::time::{Duration, Instant};

/// One counter.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Counter {
    value: i64,
    /// When the current window began (the first add after the last restart).
    window_start: Instant,
    /// Length of the window, if the counter restarts.
    window: Option<Duration>,
}

impl Counter {
    pub(crate) fn new(now: Instant, window: Option<Duration>) -> Self {
        Self {
            value: 0,
            window_start: now,
            window,
        }
    }

    fn expired(&self, now: Instant) -> bool {
        self.window
            .is_some_and(|w| now.saturating_duration_since(self.window_start) >= w)
    }

    /// Adds `delta` (saturating) and returns the new value, restarting the
    /// window first when it has passed.
    pub(crate) fn add(&mut self, now: Instant, delta: i64, window: Option<Duration>) -> i64 {
        self.window = window;
        if self.expired(now) {
            self.value = 0;
            self.window_start = now;
        }
        self.value = self.value.saturating_add(delta);
        self.value
    }

    pub(crate) fn get(&self, now: Instant) -> i64 {
        if self.expired(now) {
            0
        } else {
            self.value
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_restarts_the_count() {
        let t0 = Instant::now();
        let w = Some(Duration::from_secs(1));
        let mut c = Counter::new(t0, w);
        assert_eq!(c.add(t0, 2, w), 2);
        assert_eq!(c.add(t0 + Duration::from_millis(999), 1, w), 3);
        assert_eq!(c.get(t0 + Duration::from_secs(1)), 0);
        assert_eq!(c.add(t0 + Duration::from_secs(1), 1, w), 1);
    }

    #[test]
    fn saturates() {
        let t0 = Instant::now();
        let mut c = Counter::new(t0, None);
        c.add(t0, i64::MAX, None);
        assert_eq!(c.add(t0, 5, None), i64::MAX);
    }
}
