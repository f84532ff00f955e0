//! What `handle` records about a request into the blocks `State::build`
//! resolved (`crate::metrics`): which route's block it counts in, how long it
//! waited on upstreams, who made its response, and each upstream attempt's
//! outcome. With metrics off, nothing reads the clock for them.

use std::sync::Arc;

use http::Response;
use wasmgate_metrics::clock::{now_ns, since_ns};

use super::body::ResponseBody;
use super::error::ProxyError;
use super::Failed;
use crate::metrics::{Outcome, RouteMetrics, Source};
use crate::state::State;
use crate::telemetry::Trace;
use crate::upstream::{Target, Upstream};

pub struct Meter<'s> {
    /// When the request arrived, in `clock::now_ns` time (read when metrics
    /// or the access log want it).
    pub started: Option<u64>,
    /// Whether metrics are on.
    on: bool,
    /// The matched route's block (none: no route yet, or metrics are off).
    pub route: Option<&'s Arc<RouteMetrics>>,
    /// Time spent on upstream attempts, in nanoseconds.
    upstream_ns: u64,
    pub source: Source,
    /// The request's trace, when it is sampled (`crate::telemetry`).
    pub trace: Option<Box<Trace>>,
}

impl<'s> Meter<'s> {
    pub fn new(state: &State) -> Meter<'s> {
        let on = state.metrics.enabled();
        Meter {
            started: (on || state.access_log).then(now_ns),
            on,
            route: None,
            upstream_ns: 0,
            source: Source::Gateway,
            trace: None,
        }
    }

    /// An upstream attempt begins.
    #[inline]
    pub fn attempt(&self) -> Option<u64> {
        (self.on || self.trace.is_some()).then(now_ns)
    }

    /// An upstream attempt on `target` ended: its time in nanoseconds (0
    /// with metrics and tracing off).
    #[inline]
    pub fn attempted(&mut self, started: Option<u64>, upstream: &Upstream, target: &Target) -> u64 {
        let Some(started) = started else { return 0 };
        if let Some(trace) = self.trace.as_deref_mut() {
            trace.attempted(upstream.name(), target.address, started);
        }
        let ns = since_ns(started);
        self.upstream_ns = self.upstream_ns.saturating_add(ns);
        ns
    }

    /// The request's response head is ready: counts it on its route (or its
    /// listener's unrouted block). A body whose length is known is counted now;
    /// for one that is not, returns the block its frames count into as they go.
    pub fn finish(
        &self,
        state: &State,
        listener: usize,
        response: &Response<ResponseBody>,
    ) -> Option<Arc<RouteMetrics>> {
        let started = self.started.filter(|_| self.on)?;
        let route = match self.route {
            Some(route) => route,
            None => &state.listener_metrics(listener)?.unrouted,
        };
        route.request(response.status().as_u16(), self.source, since_ns(started), self.upstream_ns);
        match http_body::Body::size_hint(response.body()).exact() {
            Some(length) => {
                route.bytes_out(length);
                None
            }
            None => Some(route.clone()),
        }
    }
}

/// Who made the response for a request that ended in `e`.
pub fn source_of(e: &ProxyError) -> Source {
    match e {
        ProxyError::Answered(_) => Source::Plugin,
        _ => Source::Gateway,
    }
}

/// A request that went to no target of `upstream`.
#[inline]
pub fn unsent(upstream: &Upstream, outcome: Outcome) {
    if let Some(metrics) = upstream.metrics() {
        metrics.unsent(outcome);
    }
}

/// An attempt on `target` ended after `ns` nanoseconds. A request body the
/// client broke is not the target's doing and is not counted.
#[inline]
pub fn attempted(upstream: &Upstream, target: &Target, result: &Result<Response<ResponseBody>, Failed>, ns: u64) {
    let Some(metrics) = &target.state.metrics else { return };
    let outcome = match result {
        Ok(response) if response.status().is_server_error() => Outcome::Http5xx,
        Ok(_) => Outcome::Ok,
        Err(Failed::Connect(..)) => Outcome::ConnectError,
        Err(Failed::Other(ProxyError::Timeout { .. })) => Outcome::Timeout,
        Err(Failed::Other(ProxyError::Upstream { .. })) => Outcome::Reset,
        Err(Failed::Other(_)) => return,
    };
    metrics.sent(outcome);
    if let (Outcome::Ok | Outcome::Http5xx, Some(upstream)) = (outcome, upstream.metrics()) {
        upstream.responded(ns);
    }
}
