//! Distributed tracing: W3C trace context in, OpenTelemetry spans out.
//!
//! Without `[tracing]` nothing here runs: a request's `traceparent` and
//! `tracestate` reach the upstream untouched. With it, each request is
//! sampled or not as it arrives ([`Tracer::start`]):
//!
//! - a valid `traceparent` with its sampled flag set is continued (the
//!   caller decided; parent-based sampling), one without the flag is not;
//! - a request without a valid `traceparent` starts a new trace with
//!   probability `sample_ratio` (an invalid one is replaced, and its
//!   `tracestate` dropped, as W3C Trace Context says).
//!
//! A request that is not sampled costs one header lookup (and a random
//! number when it has no parent): no clock, no allocation, no span. A sampled
//! one carries a [`Trace`] that records the upstream exchange and every
//! plugin call; the upstream gets the same trace id with the exchange's own
//! span id as its parent. When the response head is ready the spans (the
//! request, the upstream exchange, one per plugin call) go to a background
//! exporter thread ([`export`]) that posts them in batches to the collector
//! over OTLP/HTTP (protobuf).

mod context;
mod encode;
mod export;
mod trace;

use std::sync::Arc;

use http::header::HeaderName;
use http::{HeaderMap, Method, Uri};

use crate::config::TracingConfig;
pub use context::{parse_traceparent, to_hex, Parent};
pub use export::Exporter;
pub use trace::{End, Trace};

/// Looked up as a ready `HeaderName`: a `&str` key is parsed and checked on every lookup.
static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The sampling rule and exporter of one state; a reload that keeps the
/// endpoint and service name keeps the exporter (and its queue).
pub struct Tracer {
    /// A request without a sampled parent is recorded when a random `u64`
    /// is below this (`sample_ratio` × 2⁶⁴).
    threshold: u64,
    always: bool,
    exporter: Arc<Exporter>,
}

impl Tracer {
    /// The tracer for `config`; `previous` lends its exporter when it sends
    /// to the same place.
    pub fn from_config(config: &TracingConfig, previous: Option<&Tracer>) -> Tracer {
        let exporter = match previous {
            Some(p) if p.exporter.sends_like(config) => p.exporter.clone(),
            _ => Arc::new(Exporter::new(config)),
        };
        let always = config.sample_ratio >= 1.0;
        // `as` saturates: 1.0 × 2⁶⁴ would be u64::MAX + 1.
        let threshold = (config.sample_ratio * 18_446_744_073_709_551_616.0) as u64;
        Tracer { threshold, always, exporter }
    }

    /// Whether to record this request, and if so its trace.
    #[inline]
    pub fn start(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Box<Trace>> {
        let parent = match headers.get(&TRACEPARENT) {
            Some(value) => parse_traceparent(value.as_bytes()),
            None => None,
        };
        match parent {
            Some(parent) if parent.sampled => Some(Box::new(Trace::new(Some(parent), method, uri))),
            Some(_) => None,
            None if self.always || fastrand::u64(..) < self.threshold => Some(Box::new(Trace::new(None, method, uri))),
            None => None,
        }
    }

    /// The request's response head is ready: its spans go to the exporter.
    pub fn finish(&self, trace: Box<Trace>, end: End<'_>) {
        self.exporter.send(trace.into_spans(end));
    }

    pub fn exporter(&self) -> &Exporter {
        &self.exporter
    }
}
