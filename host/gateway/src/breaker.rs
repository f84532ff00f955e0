//! A circuit breaker for one target, Hystrix's semantics without a lock:
//!
//! - **closed**: requests flow; outcomes go into a rolling window of buckets. When
//!   the window holds at least `request_volume` requests and `error_percent` of them
//!   failed, the breaker opens.
//! - **open**: the balancer skips the target. After `sleep_window` the next request
//!   that picks it turns the breaker half-open.
//! - **half-open**: up to `half_open_requests` probes go through at once. A failed
//!   probe reopens it; `half_open_requests` successful probes close it.
//!
//! Every method takes `&self` and touches only atomics: workers share one breaker.

#[cfg(test)]
mod tests;
mod window;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

use crate::config::BreakerConfig;
use window::Window;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    HalfOpen,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// A state change, for the caller to log once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Closed → open, with the window's numbers that tripped it.
    Opened { requests: u64, failures: u64 },
    /// Open → half-open: the sleep window is over, probes go through.
    HalfOpened,
    /// Half-open → open: a probe failed.
    Reopened,
    /// Half-open → closed: enough probes succeeded.
    Closed,
}

pub struct Breaker {
    config: BreakerConfig,
    state: AtomicU8,
    /// Milliseconds since `epoch` at the last change to open or half-open.
    since: AtomicU64,
    /// Probes that may still start while half-open.
    probes_left: AtomicU32,
    /// Probes that succeeded in this half-open period.
    probes_passed: AtomicU32,
    window: Window,
    /// The clock's zero: times are stored as milliseconds after it.
    epoch: Instant,
}

impl Breaker {
    pub fn new(config: BreakerConfig) -> Breaker {
        Breaker {
            config,
            state: AtomicU8::new(CLOSED),
            since: AtomicU64::new(0),
            probes_left: AtomicU32::new(0),
            probes_passed: AtomicU32::new(0),
            window: Window::new(config.window),
            epoch: Instant::now(),
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.state.load(Ordering::Acquire) {
            OPEN => BreakerState::Open,
            HALF_OPEN => BreakerState::HalfOpen,
            _ => BreakerState::Closed,
        }
    }

    /// Requests and failures in the rolling window.
    pub fn counts(&self) -> (u64, u64) {
        self.counts_at(self.now())
    }

    fn counts_at(&self, now: u64) -> (u64, u64) {
        self.window.sums(now)
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether a request may go to this target now. While half-open a `true` is
    /// a probe, and the request's outcome must be reported with `record`.
    pub fn admit(&self) -> (bool, Option<Transition>) {
        self.admit_at(self.now())
    }

    fn admit_at(&self, now: u64) -> (bool, Option<Transition>) {
        let sleep = self.config.sleep_window.as_millis() as u64;
        match self.state.load(Ordering::Acquire) {
            CLOSED => (true, None),
            OPEN => {
                if now.saturating_sub(self.since.load(Ordering::Acquire)) < sleep {
                    return (false, None);
                }
                self.probes_left.store(self.config.half_open_requests - 1, Ordering::Release);
                self.probes_passed.store(0, Ordering::Release);
                self.since.store(now, Ordering::Release);
                match self.state.compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => (true, Some(Transition::HalfOpened)),
                    Err(_) => (self.take_probe(now, sleep), None),
                }
            }
            _ => (self.take_probe(now, sleep), None),
        }
    }

    /// One half-open probe slot. A half-open period whose probes never reported
    /// (their clients went away) hands out a new one after another sleep window.
    fn take_probe(&self, now: u64, sleep: u64) -> bool {
        let taken = self
            .probes_left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(1))
            .is_ok();
        if taken {
            return true;
        }
        let since = self.since.load(Ordering::Acquire);
        now.saturating_sub(since) >= sleep
            && self.since.compare_exchange(since, now, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }

    /// Reports a request's outcome.
    pub fn record(&self, failed: bool) -> Option<Transition> {
        self.record_at(failed, self.now())
    }

    fn record_at(&self, failed: bool, now: u64) -> Option<Transition> {
        match self.state.load(Ordering::Acquire) {
            CLOSED => {
                self.window.add(now, failed);
                if !failed {
                    return None;
                }
                let (requests, failures) = self.window.sums(now);
                let tripped = requests >= u64::from(self.config.request_volume)
                    && failures * 100 >= u64::from(self.config.error_percent) * requests;
                if tripped && self.open(CLOSED, now) {
                    return Some(Transition::Opened { requests, failures });
                }
                None
            }
            HALF_OPEN if failed => self.open(HALF_OPEN, now).then_some(Transition::Reopened),
            HALF_OPEN => {
                let passed = self.probes_passed.fetch_add(1, Ordering::AcqRel) + 1;
                if passed < self.config.half_open_requests {
                    self.probes_left.fetch_add(1, Ordering::AcqRel);
                    return None;
                }
                self.window.clear();
                self.state
                    .compare_exchange(HALF_OPEN, CLOSED, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
                    .then_some(Transition::Closed)
            }
            // Requests that started before the breaker opened: already counted enough.
            _ => None,
        }
    }

    fn open(&self, from: u8, now: u64) -> bool {
        self.probes_left.store(0, Ordering::Release);
        self.since.store(now, Ordering::Release);
        self.state.compare_exchange(from, OPEN, Ordering::AcqRel, Ordering::Acquire).is_ok()
    }
}
