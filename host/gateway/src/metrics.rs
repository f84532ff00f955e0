//! Prometheus metrics, served as `GET /metrics` on the admin listener.
//!
//! Recording is built for the hot path (see `wasmgate_metrics`): each block of
//! counters has a row per worker thread, and the request path only adds to its
//! own worker's row with relaxed atomics. Blocks are resolved when a `State` is
//! built: each route, upstream, target and (route, plugin) holds an `Arc` to
//! its own, so a request follows a pointer instead of looking up a label set.
//! A reload hands the blocks of routes, upstreams, targets and route plugins
//! that keep their names over to the new state (their counters go on), and the
//! blocks of those removed are dropped with the old state, so their series
//! disappear from the next scrape.
//!
//! A scrape (`exposition`, on the control thread) sums the rows into a
//! snapshot and has `prometheus-client` write it: Prometheus text format 0.0.4
//! by default, OpenMetrics 1.0 when the scraper's `Accept` asks for it.
//! Label values come only from the config (listener, route, upstream, plugin
//! names and target addresses) and from fixed sets, never from a request.
//! `docs/operations.md` lists every metric.
//!
//! `[metrics] enabled = false` turns the per-request recording off (the
//! benchmark compares both); what the control plane counts (reloads, health
//! checks, the gauges read at scrape time) stays.

mod carry;
mod collect;
mod request;
#[cfg(test)]
mod tests;
mod upstream;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub use carry::{gateway, Carried};
pub use request::{ListenerMetrics, RouteMetrics, Source, CLASSES};
pub use upstream::{Outcome, TargetMetrics, UpstreamMetrics, TRANSITIONS};
pub use wasmgate_plugin::metrics::PluginCalls;

/// The content type of the Prometheus text format (0.0.4).
pub const TEXT: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// The content type of OpenMetrics text (1.0.0).
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `/metrics` exposition for the live state: (content type, body). `accept`: the scraper's Accept header.
pub fn exposition(state: &crate::state::State, accept: Option<&str>) -> (&'static str, String) {
    let openmetrics = accept.is_some_and(wants_openmetrics);
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(collect::Scrape::of(state)));
    let mut body = String::new();
    let written = match openmetrics {
        true => prometheus_client::encoding::text::encode(&mut body, &registry),
        false => prometheus_client::encoding::prometheus_text::encode(&mut body, &registry),
    };
    if written.is_err() {
        // Only a collector can fail a write into a `String`; ours does not.
        tracing::error!("metrics exposition failed");
    }
    (if openmetrics { OPENMETRICS } else { TEXT }, body)
}

/// Whether an `Accept` header prefers OpenMetrics text to the Prometheus text
/// format: an `application/openmetrics-text` range with a quality above zero
/// and at least that of any `text/plain` range.
pub fn wants_openmetrics(accept: &str) -> bool {
    let mut openmetrics: Option<f32> = None;
    let mut text: Option<f32> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let best = match media.as_str() {
            "application/openmetrics-text" => &mut openmetrics,
            "text/plain" => &mut text,
            _ => continue,
        };
        *best = Some(best.map_or(q, |b| b.max(q)));
    }
    matches!(openmetrics, Some(q) if q > 0.0 && q >= text.unwrap_or(0.0))
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// One gateway's metrics that are not a route's, a listener's, an upstream's
/// or a plugin's: reloads, plugin loads. Made with the first state and handed
/// to every state after it.
#[derive(Debug)]
pub struct GatewayMetrics {
    /// Whether requests are recorded (`[metrics] enabled`).
    enabled: bool,
    /// Worker threads: each block gets a row per worker.
    workers: usize,
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    /// Unix ms of the start or the last successful reload.
    applied_at_ms: AtomicU64,
    /// The running config's hash (`config_hash`).
    config_hash: Mutex<String>,
    plugin_loads_ok: AtomicU64,
    plugin_loads_failed: AtomicU64,
}

impl GatewayMetrics {
    pub fn new(enabled: bool, workers: usize, config_hash: String) -> GatewayMetrics {
        GatewayMetrics {
            enabled,
            workers,
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            applied_at_ms: AtomicU64::new(unix_ms()),
            config_hash: Mutex::new(config_hash),
            plugin_loads_ok: AtomicU64::new(0),
            plugin_loads_failed: AtomicU64::new(0),
        }
    }

    /// Whether requests are recorded.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    pub fn workers(&self) -> usize {
        self.workers
    }

    /// A new block when recording is on.
    pub fn block<T>(&self, make: impl FnOnce(usize) -> T) -> Option<Arc<T>> {
        self.enabled.then(|| Arc::new(make(self.workers)))
    }

    /// A reload was applied (`hash`: the new config's) or refused.
    pub fn reloaded(&self, result: Result<String, ()>) {
        match result {
            Ok(hash) => {
                self.reloads_ok.fetch_add(1, Ordering::Relaxed);
                self.applied_at_ms.store(unix_ms(), Ordering::Relaxed);
                *self.config_hash.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = hash;
            }
            Err(()) => {
                self.reloads_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Plugin versions compiled and loaded (`ok`), or a plugin folder that did
    /// not load (`failed`).
    pub fn plugins_loaded(&self, ok: u64, failed: u64) {
        self.plugin_loads_ok.fetch_add(ok, Ordering::Relaxed);
        self.plugin_loads_failed.fetch_add(failed, Ordering::Relaxed);
    }

    fn config_hash(&self) -> String {
        self.config_hash.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}
