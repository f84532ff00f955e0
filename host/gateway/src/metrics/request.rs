//! What the proxy records per request: one `RouteMetrics` block per route (and
//! one per listener for requests that matched no route), one `ListenerMetrics`
//! block per listener for what is in flight.

use std::sync::Arc;

use wasmgate_metrics::{Cells, Histogram, HistogramSnapshot, FAST, SLOW};

/// Who made the response the client got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The upstream's response (possibly edited by response-phase plugins).
    Upstream,
    /// The gateway's own answer: no route, a refused request, an upstream
    /// that failed, timed out or had no target (or the route's fallback).
    Gateway,
    /// A plugin answered in the request phase (or failed closed there: a 500).
    Plugin,
}

impl Source {
    pub const ALL: [Source; 3] = [Source::Upstream, Source::Gateway, Source::Plugin];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Upstream => "upstream",
            Source::Gateway => "gateway",
            Source::Plugin => "plugin",
        }
    }
}

/// Status classes `1xx` … `5xx` (a status outside 100–599 counts in the nearest).
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

// The cells of a route's block.
const REQUESTS: usize = 0;
const DURATION: Histogram = Histogram::at(REQUESTS + CLASSES.len() * Source::ALL.len(), &SLOW);
const OWN: Histogram = Histogram::at(DURATION.end(), &FAST);
const BYTES_IN: usize = OWN.end();
const BYTES_OUT: usize = BYTES_IN + 1;
const ROUTE_CELLS: usize = BYTES_OUT + 1;

/// One route's requests (or a listener's unrouted ones).
#[derive(Debug)]
pub struct RouteMetrics {
    cells: Cells,
}

impl RouteMetrics {
    pub fn new(workers: usize) -> RouteMetrics {
        RouteMetrics { cells: Cells::new(ROUTE_CELLS, workers) }
    }

    /// A request answered with `status`: its response head took `took_ns`
    /// from the request's arrival, of which `upstream_ns` waiting on upstreams.
    #[inline]
    pub fn request(&self, status: u16, source: Source, took_ns: u64, upstream_ns: u64) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        let row = self.cells.row();
        row.add(REQUESTS + class * Source::ALL.len() + source as usize, 1);
        DURATION.observe(&row, took_ns);
        OWN.observe(&row, took_ns.saturating_sub(upstream_ns));
    }

    /// Request body bytes read from the client.
    #[inline]
    pub fn bytes_in(&self, n: u64) {
        self.cells.add(BYTES_IN, n);
    }

    /// Response body bytes handed to the client's connection.
    #[inline]
    pub fn bytes_out(&self, n: u64) {
        self.cells.add(BYTES_OUT, n);
    }

    /// Requests by status class (index into `CLASSES`) and source.
    pub fn requests(&self, class: usize, source: Source) -> u64 {
        self.cells.sum(REQUESTS + class * Source::ALL.len() + source as usize)
    }

    pub fn duration(&self) -> HistogramSnapshot {
        DURATION.snapshot(&self.cells)
    }

    pub fn own_time(&self) -> HistogramSnapshot {
        OWN.snapshot(&self.cells)
    }

    /// (request body bytes in, response body bytes out).
    pub fn bytes(&self) -> (u64, u64) {
        (self.cells.sum(BYTES_IN), self.cells.sum(BYTES_OUT))
    }
}

// The cells of a listener's block.
const REQUESTS_IN_FLIGHT: usize = 0;
const CONNECTIONS_OPEN: usize = 1;
const CONNECTIONS: usize = 2;
const LISTENER_CELLS: usize = 3;

/// One listener: what is in flight on it, and its requests that matched no route.
#[derive(Debug)]
pub struct ListenerMetrics {
    cells: Cells,
    /// Requests no route took (`route=""`).
    pub unrouted: Arc<RouteMetrics>,
}

impl ListenerMetrics {
    pub fn new(workers: usize) -> ListenerMetrics {
        ListenerMetrics { cells: Cells::new(LISTENER_CELLS, workers), unrouted: Arc::new(RouteMetrics::new(workers)) }
    }

    #[inline]
    pub fn request_started(&self) {
        self.cells.add(REQUESTS_IN_FLIGHT, 1);
    }

    /// The request's response was sent (or abandoned).
    #[inline]
    pub fn request_finished(&self) {
        self.cells.sub(REQUESTS_IN_FLIGHT, 1);
    }

    pub fn connection_opened(&self) {
        self.cells.add(CONNECTIONS, 1);
        self.cells.add(CONNECTIONS_OPEN, 1);
    }

    pub fn connection_closed(&self) {
        self.cells.sub(CONNECTIONS_OPEN, 1);
    }

    pub fn requests_in_flight(&self) -> i64 {
        self.cells.gauge(REQUESTS_IN_FLIGHT)
    }

    pub fn connections_open(&self) -> i64 {
        self.cells.gauge(CONNECTIONS_OPEN)
    }

    /// Connections accepted since start.
    pub fn connections(&self) -> u64 {
        self.cells.sum(CONNECTIONS)
    }
}
