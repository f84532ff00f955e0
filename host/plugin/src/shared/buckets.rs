//! Token buckets: refill continuously at `rate` per second up to `burst`.

use std::time::Instant;

/// One bucket.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    refilled_at: Instant,
}

/// What `take` decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TakeResult {
    pub(crate) allowed: bool,
    pub(crate) remaining: u32,
    pub(crate) retry_after_ms: u64,
}

impl Bucket {
    /// A full bucket.
    pub(crate) fn new(now: Instant, burst: u32) -> Self {
        Self {
            tokens: f64::from(burst),
            refilled_at: now,
        }
    }

    /// Takes `tokens` if the bucket (refilled up to now) has them. A rate
    /// that is not a positive finite number means "never refills".
    pub(crate) fn take(&mut self, now: Instant, tokens: u32, rate: f64, burst: u32) -> TakeResult {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        };
        let burst = f64::from(burst);
        let elapsed = now
            .saturating_duration_since(self.refilled_at)
            .as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(burst);
        self.refilled_at = now;
        let want = f64::from(tokens);
        if self.tokens >= want {
            self.tokens -= want;
            return TakeResult {
                allowed: true,
                remaining: self.tokens as u32,
                retry_after_ms: 0,
            };
        }
        let retry_after_ms = if want > burst || rate == 0.0 {
            u64::MAX
        } else {
            (((want - self.tokens) / rate) * 1000.0).ceil() as u64
        };
        TakeResult {
            allowed: false,
            remaining: self.tokens as u32,
            retry_after_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0, 2);
        assert!(b.take(t0, 1, 10.0, 2).allowed);
        assert!(b.take(t0, 1, 10.0, 2).allowed);
        let refused = b.take(t0, 1, 10.0, 2);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after_ms, 100);
        assert!(b.take(t0 + Duration::from_millis(100), 1, 10.0, 2).allowed);
    }

    #[test]
    fn never_more_than_burst() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0, 3);
        let later = t0 + Duration::from_secs(3600);
        assert_eq!(b.take(later, 0, 100.0, 3).remaining, 3);
        assert_eq!(b.take(later, 4, 100.0, 3).retry_after_ms, u64::MAX);
    }

    #[test]
    fn bad_rate_never_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0, 1);
        assert!(b.take(t0, 1, f64::NAN, 1).allowed);
        assert!(!b.take(t0 + Duration::from_secs(10), 1, f64::NAN, 1).allowed);
    }
}
