//! A worker thread's idle upstream connections, by target: the shape shared by
//! the hyper-driven pool (`pool.rs`) and our own HTTP/1.1 connections
//! (`h1/conn.rs`). Each worker runs its own event loop, so a thread-local
//! list needs no lock and keeps a connection on the core that made it.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmgate_metrics::RowIndex;

use crate::metrics::UpstreamMetrics;

/// Counts one upstream connection in its upstream's pool gauges (open, and
/// idle while it waits in a pool) from when it is made until it is dropped.
/// Made once per connection, with the row of the worker it lives on: a
/// request only moves it in and out of a pool (a load and a store).
pub struct PoolGauge {
    metrics: Option<(Arc<UpstreamMetrics>, RowIndex)>,
    idle: bool,
}

impl PoolGauge {
    /// A new connection of the upstream whose block is `metrics` (none: not counted).
    pub fn opened(metrics: Option<&Arc<UpstreamMetrics>>) -> PoolGauge {
        let metrics = metrics.map(|m| (m.clone(), m.pool_row()));
        if let Some((metrics, row)) = &metrics {
            metrics.pool_open(*row, true);
        }
        PoolGauge { metrics, idle: false }
    }

    #[inline]
    fn park(&mut self, idle: bool) {
        if self.idle != idle {
            self.idle = idle;
            if let Some((metrics, row)) = &self.metrics {
                metrics.pool_idle(*row, idle);
            }
        }
    }
}

impl Drop for PoolGauge {
    fn drop(&mut self) {
        self.park(false);
        if let Some((metrics, row)) = &self.metrics {
            metrics.pool_open(*row, false);
        }
    }
}

/// A connection that carries its pool gauge.
pub trait Gauged {
    fn gauge(&mut self) -> &mut PoolGauge;
}

/// Idle connections by target, newest last. A handful of targets per worker
/// is the norm, so a linear scan beats hashing the address on every request.
pub struct Idle<C> {
    by_target: RefCell<Vec<(SocketAddr, Vec<Parked<C>>)>>,
}

/// An idle connection and when it was parked.
type Parked<C> = (C, Instant);

impl<C: Gauged> Idle<C> {
    pub const fn new() -> Self {
        Self { by_target: RefCell::new(Vec::new()) }
    }

    /// The newest connection to `target` idle for less than `max_idle_time`
    /// at `now` that `usable` accepts; older or unusable ones met on the way
    /// are closed.
    pub fn take(&self, target: SocketAddr, max_idle_time: Duration, now: Instant, usable: impl Fn(&C) -> bool) -> Option<C> {
        let mut by_target = self.by_target.borrow_mut();
        let (_, list) = by_target.iter_mut().find(|(addr, _)| *addr == target)?;
        while let Some((mut conn, since)) = list.pop() {
            conn.gauge().park(false);
            if now.saturating_duration_since(since) < max_idle_time && usable(&conn) {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next request to `target` if fewer than `keep` are
    /// idle there; otherwise it is closed.
    pub fn put(&self, target: SocketAddr, mut conn: C, keep: usize) {
        let mut by_target = self.by_target.borrow_mut();
        let at = match by_target.iter().position(|(addr, _)| *addr == target) {
            Some(at) => at,
            None => {
                by_target.push((target, Vec::new()));
                by_target.len() - 1
            }
        };
        let list = &mut by_target[at].1;
        if list.len() < keep {
            conn.gauge().park(true);
            list.push((conn, Instant::now()));
        }
    }
}
