//! What an accept loop does when `accept` fails. Out of file descriptors
//! (EMFILE, ENFILE) or memory, the listening socket stays readable, so trying again
//! at once spins and logs a line per try. Instead a loop waits, 10 ms doubling up
//! to 1 s and back to 10 ms after an accept succeeds, and the failures of one
//! listener are logged at most once a second (across its workers), with the count
//! of those not logged. Connections arriving meanwhile wait in the backlog.
//!
//! No spare descriptor is held back to accept-and-close with while out of them
//! (libuv's trick): a connection left in the backlog is served once descriptors
//! free up, one accepted and closed is lost. What keeps the listeners from running
//! out is that nothing else may hold unbounded connections: each listener has its
//! `max_connections`, and so has the admin listener.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::backoff::Backoff;

/// The shortest and the longest wait after a failed accept.
const FIRST_WAIT: Duration = Duration::from_millis(10);
const LONGEST_WAIT: Duration = Duration::from_secs(1);
/// At most one log line per listener this often.
const LOG_EVERY_MS: u64 = 1000;

/// The backoff for one accept loop; `reset` it after each accepted connection.
pub fn backoff() -> Backoff {
    Backoff::between(FIRST_WAIT, LONGEST_WAIT)
}

/// Logs one listener's accept failures at a bounded rate; shared by its workers.
#[derive(Debug)]
pub struct ErrorLog {
    listener: String,
    /// What `last_ms` counts from.
    since: Instant,
    /// When a failure was last logged (ms after `since`, plus one; 0: never).
    last_ms: AtomicU64,
    /// Failures not logged since the last line.
    suppressed: AtomicU64,
}

impl ErrorLog {
    pub fn new(listener: &str) -> ErrorLog {
        ErrorLog {
            listener: listener.to_owned(),
            since: Instant::now(),
            last_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// An accept failed: logs it, unless one was logged less than a second ago.
    pub fn failed(&self, error: &io::Error) {
        let now = self.since.elapsed().as_millis() as u64 + 1;
        if let Some(suppressed) = self.due(now) {
            tracing::warn!(listener = %self.listener, %error, suppressed, "accept failed; backing off");
        }
    }

    /// Whether a failure at `now` is logged, and then how many were not since.
    fn due(&self, now: u64) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= LOG_EVERY_MS;
        if !due || self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err() {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_one_line_a_second_and_it_counts_the_rest() {
        let log = ErrorLog::new("web");
        assert_eq!(log.due(5), Some(0), "the first failure is logged");
        let logged: Vec<_> = (6..2_000).step_by(10).filter_map(|now| log.due(now)).collect();
        assert_eq!(logged, [100], "one more line after a second, counting the 100 before it");
    }

    #[test]
    fn the_wait_doubles_to_a_second_and_starts_over_after_a_success() {
        let mut backoff = backoff();
        let waits: Vec<_> = (0..10).map(|_| backoff.next()).collect();
        assert!(waits[0] <= FIRST_WAIT * 2 && waits[9] >= LONGEST_WAIT / 2 && waits[9] <= LONGEST_WAIT * 2);
        backoff.reset();
        assert!(backoff.next() <= FIRST_WAIT * 2);
    }
}
