//! What the proxy, the breakers, the health checks and discovery record per
//! upstream and per target. A target's block is kept in its upstream's block
//! by address, so it outlives target snapshots and a reload that rebuilt the
//! upstream; it is dropped when the target is no longer discovered.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wasmgate_metrics::{Cells, Histogram, HistogramSnapshot, RowIndex, SLOW};

use crate::breaker::Transition;

/// What became of a request the gateway meant to send to an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response with a status below 500.
    Ok,
    /// A response with a 5xx status.
    Http5xx,
    /// No connection could be made (or a fresh one closed before use).
    ConnectError,
    /// No response head within the upstream's response timeout.
    Timeout,
    /// The exchange broke: the connection closed or the response was malformed.
    Reset,
    // Not sent to any target (counted with `target=""`):
    /// Every target's breaker is open.
    BreakerOpen,
    /// The upstream was at `max_concurrent_requests`.
    Overloaded,
    /// The upstream has no target in rotation.
    NoTarget,
}

impl Outcome {
    /// Outcomes of a request that reached a target.
    pub const SENT: [Outcome; 5] =
        [Outcome::Ok, Outcome::Http5xx, Outcome::ConnectError, Outcome::Timeout, Outcome::Reset];
    /// Outcomes of a request that reached no target.
    pub const UNSENT: [Outcome; 3] = [Outcome::BreakerOpen, Outcome::Overloaded, Outcome::NoTarget];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Http5xx => "http_5xx",
            Outcome::ConnectError => "connect_error",
            Outcome::Timeout => "timeout",
            Outcome::Reset => "reset",
            Outcome::BreakerOpen => "breaker_open",
            Outcome::Overloaded => "overloaded",
            Outcome::NoTarget => "no_target",
        }
    }

    /// The cell in a target's block (sent) or an upstream's (unsent).
    fn cell(self) -> usize {
        match self {
            Outcome::Ok | Outcome::BreakerOpen => 0,
            Outcome::Http5xx | Outcome::Overloaded => 1,
            Outcome::ConnectError | Outcome::NoTarget => 2,
            Outcome::Timeout => 3,
            Outcome::Reset => 4,
        }
    }
}

/// Breaker transitions, as label values.
pub const TRANSITIONS: [&str; 4] = ["opened", "half_opened", "reopened", "closed"];

fn transition_index(transition: Transition) -> usize {
    match transition {
        Transition::Opened { .. } => 0,
        Transition::HalfOpened => 1,
        Transition::Reopened => 2,
        Transition::Closed => 3,
    }
}

// The cells of an upstream's block.
const UNSENT: usize = 0;
const RESPONSE: Histogram = Histogram::at(UNSENT + Outcome::UNSENT.len(), &SLOW);
const CONNECT: Histogram = Histogram::at(RESPONSE.end(), &SLOW);
const DISCOVERY_UPDATES: usize = CONNECT.end();
/// Gauges: pooled HTTP/1.1 connections open, and of those idle.
const POOL_OPEN: usize = DISCOVERY_UPDATES + 1;
const POOL_IDLE: usize = POOL_OPEN + 1;
const UPSTREAM_CELLS: usize = POOL_IDLE + 1;

/// One upstream, with its targets' blocks.
#[derive(Debug)]
pub struct UpstreamMetrics {
    cells: Cells,
    workers: usize,
    /// Each known target's block, by address (taken when a target's state is made).
    targets: Mutex<HashMap<SocketAddr, Arc<TargetMetrics>>>,
    /// When discovery last published a target list, in Unix milliseconds (0: never).
    discovered_at_ms: AtomicU64,
}

impl UpstreamMetrics {
    pub fn new(workers: usize) -> UpstreamMetrics {
        UpstreamMetrics {
            cells: Cells::new(UPSTREAM_CELLS, workers),
            workers,
            targets: Mutex::new(HashMap::new()),
            discovered_at_ms: AtomicU64::new(0),
        }
    }

    fn targets(&self) -> MutexGuard<'_, HashMap<SocketAddr, Arc<TargetMetrics>>> {
        self.targets.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The block of the target at `address` (made on first use). Off the hot path.
    pub fn target(&self, address: SocketAddr) -> Arc<TargetMetrics> {
        self.targets().entry(address).or_insert_with(|| Arc::new(TargetMetrics::new(self.workers))).clone()
    }

    /// The block of `address`, if it has one.
    pub fn existing_target(&self, address: SocketAddr) -> Option<Arc<TargetMetrics>> {
        self.targets().get(&address).cloned()
    }

    /// Drops the blocks of targets that are gone (their series disappear).
    pub fn retain_targets(&self, keep: impl Fn(&SocketAddr) -> bool) {
        self.targets().retain(|address, _| keep(address));
    }

    /// A request that reached no target.
    #[inline]
    pub fn unsent(&self, outcome: Outcome) {
        self.cells.add(UNSENT + outcome.cell(), 1);
    }

    /// A target's response head arrived `ns` after the attempt started.
    #[inline]
    pub fn responded(&self, ns: u64) {
        RESPONSE.observe(&self.cells.row(), ns);
    }

    /// A new connection (TLS handshake included) was ready after `took`.
    pub fn connected(&self, took: Duration) {
        CONNECT.observe_duration(&self.cells, took);
    }

    /// Discovery published a new target list.
    pub fn discovered(&self) {
        self.cells.add(DISCOVERY_UPDATES, 1);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        self.discovered_at_ms.store(now, Ordering::Relaxed);
    }

    /// Where a connection made on this thread counts itself.
    pub fn pool_row(&self) -> RowIndex {
        self.cells.row_index()
    }

    /// A pooled connection was opened (`true`) or closed.
    #[inline]
    pub fn pool_open(&self, at: RowIndex, opened: bool) {
        self.cells.add_at(at, POOL_OPEN, if opened { 1 } else { u64::MAX });
    }

    /// A pooled connection went idle (`true`) or was taken (or closed) from idle.
    #[inline]
    pub fn pool_idle(&self, at: RowIndex, idle: bool) {
        self.cells.add_at(at, POOL_IDLE, if idle { 1 } else { u64::MAX });
    }

    /// (open, idle) pooled connections, over every worker.
    pub fn pool(&self) -> (i64, i64) {
        (self.cells.gauge(POOL_OPEN), self.cells.gauge(POOL_IDLE))
    }

    pub fn unsent_count(&self, outcome: Outcome) -> u64 {
        self.cells.sum(UNSENT + outcome.cell())
    }

    pub fn response_durations(&self) -> HistogramSnapshot {
        RESPONSE.snapshot(&self.cells)
    }

    pub fn connect_durations(&self) -> HistogramSnapshot {
        CONNECT.snapshot(&self.cells)
    }

    /// (updates, last update in Unix seconds if any).
    pub fn discovery(&self) -> (u64, Option<f64>) {
        let at = self.discovered_at_ms.load(Ordering::Relaxed);
        (self.cells.sum(DISCOVERY_UPDATES), (at != 0).then(|| at as f64 / 1000.0))
    }
}

// The cells of a target's block.
const SENT: usize = 0;
const BREAKER: usize = SENT + Outcome::SENT.len();
const CHECKS: usize = BREAKER + TRANSITIONS.len();
const TARGET_CELLS: usize = CHECKS + 2;

/// One target of an upstream.
#[derive(Debug)]
pub struct TargetMetrics {
    cells: Cells,
}

impl TargetMetrics {
    pub fn new(workers: usize) -> TargetMetrics {
        TargetMetrics { cells: Cells::new(TARGET_CELLS, workers) }
    }

    /// A request sent here ended with `outcome` (one of `Outcome::SENT`).
    #[inline]
    pub fn sent(&self, outcome: Outcome) {
        self.cells.add(SENT + outcome.cell(), 1);
    }

    /// The target's breaker changed state.
    pub fn breaker(&self, transition: Transition) {
        self.cells.add(BREAKER + transition_index(transition), 1);
    }

    /// An active health check's result.
    pub fn checked(&self, passed: bool) {
        self.cells.add(CHECKS + usize::from(!passed), 1);
    }

    pub fn sent_count(&self, outcome: Outcome) -> u64 {
        self.cells.sum(SENT + outcome.cell())
    }

    /// Transitions by index into `TRANSITIONS`.
    pub fn transitions(&self, index: usize) -> u64 {
        self.cells.sum(BREAKER + index)
    }

    /// (passed, failed) health checks.
    pub fn checks(&self) -> (u64, u64) {
        (self.cells.sum(CHECKS), self.cells.sum(CHECKS + 1))
    }
}
