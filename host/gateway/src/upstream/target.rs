//! What a target carries across snapshots: its circuit breaker. The hot path
//! asks it `admit()` when picking and tells it `report()` after the exchange.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::breaker::{Breaker, Transition};
use crate::config::BreakerConfig;

pub struct TargetState {
    /// The upstream's name, for the log lines of state changes.
    upstream: Arc<str>,
    pub address: SocketAddr,
    breaker: Option<Breaker>,
    /// Where requests sent here are counted (none: metrics are off).
    pub metrics: Option<Arc<crate::metrics::TargetMetrics>>,
}

impl TargetState {
    pub fn new(upstream: Arc<str>, address: SocketAddr, breaker: Option<BreakerConfig>) -> TargetState {
        TargetState { upstream, address, breaker: breaker.map(Breaker::new), metrics: None }
    }

    pub fn with_metrics(self, metrics: Option<Arc<crate::metrics::TargetMetrics>>) -> TargetState {
        TargetState { metrics, ..self }
    }

    pub fn breaker(&self) -> Option<&Breaker> {
        self.breaker.as_ref()
    }

    /// Whether the balancer may send a request here now.
    #[inline]
    pub fn admit(&self) -> bool {
        let Some(breaker) = &self.breaker else { return true };
        let (admitted, transition) = breaker.admit();
        if let Some(transition) = transition {
            self.log(transition);
        }
        admitted
    }

    /// The outcome of a request sent here: `failed` for a connect error, a
    /// timeout, a broken exchange or a 5xx status.
    #[inline]
    pub fn report(&self, failed: bool) {
        if let Some(transition) = self.breaker.as_ref().and_then(|b| b.record(failed)) {
            self.log(transition);
        }
    }

    fn log(&self, transition: Transition) {
        if let Some(metrics) = &self.metrics {
            metrics.breaker(transition);
        }
        let (upstream, target) = (&*self.upstream, self.address);
        match transition {
            Transition::Opened { requests, failures } => tracing::warn!(
                target: "state", change = "breaker_opened", upstream, target = %target, requests, failures,
                "circuit breaker opened: target out of rotation"
            ),
            Transition::HalfOpened => tracing::info!(
                target: "state", change = "breaker_half_opened", upstream, target = %target,
                "circuit breaker half-open: probing"
            ),
            Transition::Reopened => tracing::warn!(
                target: "state", change = "breaker_reopened", upstream, target = %target,
                "circuit breaker reopened: probe failed"
            ),
            Transition::Closed => tracing::info!(
                target: "state", change = "breaker_closed", upstream, target = %target,
                "circuit breaker closed: target back in rotation"
            ),
        }
    }
}
