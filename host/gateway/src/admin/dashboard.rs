//! The live dashboard: `GET /` (for a browser) serves one self-contained page,
//! and `GET /events` streams a JSON snapshot of cumulative counters every
//! second as Server-Sent Events. The page computes rates, error shares and
//! latency quantiles from the differences between two snapshots, so the
//! gateway keeps no per-client state and any number of pages agree.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body::{Body, Frame};
use http_body_util::Full;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};
use wasmgate_metrics::HistogramSnapshot;
use wasmgate_plugin::metrics::{Outcome as PluginOutcome, Phase};

use super::Admin;
use crate::metrics::CLASSES;
use crate::reload::ReloadOutcome;
use crate::state::State;

/// The page: HTML, CSS and JS in one file, embedded in the binary.
const PAGE: &str = include_str!("dashboard.html");

/// How often `/events` sends a snapshot.
const PERIOD: Duration = Duration::from_secs(1);

/// Plugin call outcomes the dashboard counts as faults.
const FAULTS: [PluginOutcome; 5] = [
    PluginOutcome::Trap,
    PluginOutcome::Deadline,
    PluginOutcome::Memory,
    PluginOutcome::InvalidOutput,
    PluginOutcome::StartFailed,
];

/// `GET /` for a browser: the page with a Content-Security-Policy that allows
/// only its own inline script and style (by hash) and connections back here.
pub fn page() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(PAGE.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(csp) = HeaderValue::from_str(csp()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The page's policy: nothing loads but what it carries inline (pinned by
/// SHA-256, so no nonce is needed for a page that never changes) and the
/// event stream from this origin.
fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = |tag: &str| inline(PAGE, tag).map(|text| format!(" 'sha256-{}'", base64(&Sha256::digest(text))));
        format!(
            "default-src 'none'; script-src{}; style-src{}; connect-src 'self'; img-src 'self' data:; \
             base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash("script").unwrap_or_else(|| " 'none'".into()),
            hash("style").unwrap_or_else(|| " 'none'".into()),
        )
    })
}

/// The text of the page's first `<tag>…</tag>` element.
fn inline<'a>(page: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = page.find(&open)? + open.len();
    let end = start + page[start..].find(&format!("</{tag}>"))?;
    Some(&page[start..end])
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The body of `GET /events`: frames a task feeds until the client leaves or
/// the gateway stops (the task then drops its sender and the body ends).
pub struct Events {
    frames: mpsc::Receiver<Bytes>,
}

impl Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.frames.poll_recv(cx).map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }
}

/// `GET /events`: a snapshot now and every `PERIOD` after, until `shutdown`.
pub fn events(admin: Arc<Admin>, mut shutdown: watch::Receiver<bool>) -> Response<Events> {
    let (sender, frames) = mpsc::channel(2);
    tokio::spawn(async move {
        // Ask a browser to reconnect a second after the stream drops.
        if sender.send(Bytes::from_static(b"retry: 1000\n\n")).await.is_err() {
            return;
        }
        let mut tick = tokio::time::interval(PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                biased;
                _ = crate::control::stopped(&mut shutdown) => return,
                _ = tick.tick() => {}
            }
            let state = admin.state.load_full();
            let frame = format!("data: {}\n\n", snapshot(&state, &admin.reloader.recent_reloads()));
            tokio::select! {
                biased;
                _ = crate::control::stopped(&mut shutdown) => return,
                sent = sender.send(Bytes::from(frame)) => if sent.is_err() { return },
            }
        }
    });
    let mut response = Response::new(Events { frames });
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// One snapshot of cumulative counters, as `/events` sends it. Histogram
/// buckets are `[upper bound in seconds (null: +Inf), observations in that
/// bucket only]`.
pub fn snapshot(state: &State, reloads: &[ReloadOutcome]) -> Value {
    let routes: Vec<Value> = state
        .routes()
        .filter_map(|(listener, route)| {
            let block = route.metrics.as_ref()?;
            let mut requests = serde_json::Map::new();
            for (class, name) in CLASSES.iter().enumerate() {
                let n: u64 = crate::metrics::Source::ALL.iter().map(|s| block.requests(class, *s)).sum();
                requests.insert((*name).to_owned(), n.into());
            }
            let in_flight = state.listener_metrics(listener).map_or(0, |l| l.requests_in_flight());
            Some(json!({
                "listener": &*state.listener_name(listener),
                "name": &*route.name,
                "upstream": route.upstream.name(),
                "requests": requests,
                "duration": buckets(&block.duration()),
                "listener_in_flight": in_flight,
            }))
        })
        .collect();
    let upstreams: Vec<Value> = state
        .upstreams
        .iter()
        .map(|u| {
            let (_, targets) = u.status();
            let targets: Vec<Value> = targets
                .iter()
                .map(|t| {
                    json!({
                        "address": t.address.to_string(),
                        "health": t.health.as_str(),
                        "breaker": t.breaker.map(|(state, _, _)| state.as_str()),
                        "in_rotation": t.in_rotation,
                        "drained": t.drained,
                    })
                })
                .collect();
            json!({ "name": u.name(), "targets": targets })
        })
        .collect();
    let mut plugins = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (_, route) in state.routes() {
        for (at, plugin) in route.chain.plugins().iter().enumerate() {
            let Some(block) = route.chain.metrics().and_then(|m| m.get(at)) else { continue };
            if !seen.insert(Arc::as_ptr(block)) {
                continue;
            }
            let mut calls: Option<HistogramSnapshot> = None;
            for phase in Phase::ALL {
                let h = block.durations(phase);
                calls = Some(match calls {
                    None => h,
                    Some(mut sum) => {
                        for (total, (_, n)) in sum.buckets.iter_mut().zip(&h.buckets) {
                            total.1 += n;
                        }
                        sum.count += h.count;
                        sum.sum += h.sum;
                        sum
                    }
                });
            }
            let faults: u64 = Phase::ALL.iter().flat_map(|p| FAULTS.map(|o| block.calls(*p, o))).sum();
            plugins.push(json!({
                "route": &*route.name,
                "plugin": plugin.name(),
                "calls": calls.as_ref().map(buckets),
                "faults": faults,
            }));
        }
    }
    let reloads: Vec<Value> = reloads
        .iter()
        .map(|r| {
            let (ok, detail) = match &r.result {
                Ok(hash) => (true, hash),
                Err(reason) => (false, reason),
            };
            json!({ "at_unix_ms": unix_ms(r.at), "ok": ok, "detail": detail })
        })
        .collect();
    json!({
        "at_unix_ms": unix_ms(SystemTime::now()),
        "routes": routes,
        "upstreams": upstreams,
        "plugins": plugins,
        "reloads": reloads,
    })
}

fn buckets(h: &HistogramSnapshot) -> Value {
    let buckets: Vec<Value> = h.buckets.iter().map(|(le, n)| json!([le.is_finite().then_some(*le), n])).collect();
    json!({ "count": h.count, "buckets": buckets })
}

fn unix_ms(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_carries_its_script_and_style_and_the_policy_pins_them() {
        assert!(inline(PAGE, "script").is_some_and(|s| s.contains("EventSource")));
        assert!(inline(PAGE, "style").is_some());
        let csp = csp();
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"), "{csp}");
        assert!(!csp.contains("'none'; style-src 'none'"), "{csp}");
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"), "the page loads nothing from elsewhere");
    }

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
