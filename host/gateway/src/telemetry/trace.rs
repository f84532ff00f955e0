//! What a sampled request records while it is handled: its ids, when it
//! began, the upstream exchange and each plugin call. Turned into spans once
//! its response head is ready.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::header::HeaderValue;
use http::{HeaderMap, Method, Uri};
use opentelemetry_proto::tonic::trace::v1::Span;
use wasmgate_metrics::clock::now_ns;
use wasmgate_plugin::metrics::{Outcome, Phase};
use wasmgate_plugin::{CallRecord, Chain};

use super::context::{to_hex, Parent};
use super::encode;

/// The longest path a span carries.
const MAX_PATH: usize = 256;
/// The most plugin calls one trace records (a chain calls each plugin at
/// most three times).
const MAX_CALLS: usize = 64;

pub struct Trace {
    pub(super) trace_id: [u8; 16],
    /// The caller's span, when the trace was continued.
    pub(super) parent: Option<[u8; 8]>,
    /// The request's own (server) span.
    pub(super) span_id: [u8; 8],
    /// The upstream exchange's (client) span: the parent the upstream sees.
    pub(super) exchange_id: [u8; 8],
    /// Wall-clock nanoseconds at `started`, to place monotonic readings.
    unix_ns: u64,
    started: u64,
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) route: Option<Arc<str>>,
    pub(super) exchange: Option<Exchange>,
    pub(super) calls: Vec<PluginCall>,
}

/// The upstream exchange: from the first attempt's start to the last one's end.
pub(super) struct Exchange {
    pub upstream: Arc<str>,
    pub target: Option<SocketAddr>,
    pub attempts: u32,
    pub started: u64,
    pub ended: u64,
}

pub(super) struct PluginCall {
    pub plugin: Arc<str>,
    pub phase: Phase,
    pub outcome: Outcome,
    pub started: u64,
    pub ended: u64,
}

/// What the request ended as, for its span.
pub struct End<'a> {
    pub status: u16,
    pub listener: &'a str,
    pub client: IpAddr,
    /// The response came from the upstream (not the gateway or a plugin).
    pub from_upstream: bool,
}

impl Trace {
    pub(super) fn new(parent: Option<Parent>, method: &Method, uri: &Uri) -> Trace {
        let trace_id = match parent {
            Some(p) => p.trace_id,
            None => nonzero_id(),
        };
        let unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        let mut path = uri.path().to_owned();
        if path.len() > MAX_PATH {
            let mut end = MAX_PATH;
            while !path.is_char_boundary(end) {
                end -= 1;
            }
            path.truncate(end);
        }
        Trace {
            trace_id,
            parent: parent.map(|p| p.span_id),
            span_id: nonzero_id(),
            exchange_id: nonzero_id(),
            unix_ns,
            started: now_ns(),
            method: method.clone(),
            path,
            route: None,
            exchange: None,
            calls: Vec::new(),
        }
    }

    /// The trace id as 32 hex digits (for the access log).
    pub fn trace_hex(&self) -> String {
        to_hex(&self.trace_id)
    }

    pub fn routed(&mut self, route: &Arc<str>) {
        self.route = Some(route.clone());
    }

    /// Tells the upstream it is called from this request's exchange span. A
    /// new trace (no valid parent) drops the client's `tracestate`, which
    /// belonged to a trace that no longer goes on.
    pub fn propagate(&self, headers: &mut HeaderMap) {
        let value = format!("00-{}-{}-01", to_hex(&self.trace_id), to_hex(&self.exchange_id));
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert("traceparent", value);
        }
        if self.parent.is_none() {
            headers.remove("tracestate");
        }
    }

    /// An upstream attempt on `target` ran from `started` to now.
    pub fn attempted(&mut self, upstream: &str, target: SocketAddr, started: u64) {
        let ended = now_ns();
        match &mut self.exchange {
            Some(e) => {
                e.attempts += 1;
                e.target = Some(target);
                e.ended = ended;
            }
            None => {
                self.exchange = Some(Exchange { upstream: upstream.into(), target: Some(target), attempts: 1, started, ended })
            }
        }
    }

    /// The plugin calls `chain` recorded (drained from the request context).
    pub fn plugin_calls(&mut self, chain: &Chain, calls: &mut Vec<CallRecord>) {
        for call in calls.drain(..) {
            if self.calls.len() >= MAX_CALLS {
                break;
            }
            let Some(plugin) = chain.plugins().get(call.plugin) else { continue };
            self.calls.push(PluginCall {
                plugin: plugin.name().into(),
                phase: call.phase,
                outcome: call.outcome,
                started: call.started_ns,
                ended: call.ended_ns,
            });
        }
    }

    /// A monotonic reading as Unix nanoseconds.
    pub(super) fn unix(&self, mono: u64) -> u64 {
        self.unix_ns.saturating_add(mono.saturating_sub(self.started))
    }

    pub(super) fn started(&self) -> u64 {
        self.started
    }

    pub(super) fn into_spans(self: Box<Self>, end: End<'_>) -> Vec<Span> {
        encode::spans(&self, &end, now_ns())
    }
}

/// A new span id.
pub(super) fn span_id() -> [u8; 8] {
    nonzero_id()
}

/// A random id that is not all zeros (which W3C and OTLP read as "none").
fn nonzero_id<const N: usize>() -> [u8; N] {
    loop {
        let mut id = [0u8; N];
        for chunk in id.chunks_mut(8) {
            let bytes = fastrand::u64(..).to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        if id != [0; N] {
            return id;
        }
    }
}
