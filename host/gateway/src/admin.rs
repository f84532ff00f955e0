//! The admin listener: `GET /status/upstreams` answers a JSON picture of every
//! upstream (its discovery source, each target's health, rotation and breaker).
//! It runs on the control thread, never on a request worker.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::accept;
use crate::config::{AdminLimits, DiscoveryConfig, Limits};
use crate::server::connection::{self, Activity, Tracked};
use crate::server::strict_http1::StrictHttp1;
use crate::state::State;
use crate::upstream::Upstream;

/// Serves the admin listener until `shutdown`. Its connections are bounded like a
/// listener's: `max_connections` at once (more wait in the accept backlog, which
/// costs this process no file descriptor), a header timeout and an idle timeout,
/// so admin clients cannot take the descriptors the listeners need.
pub async fn serve(
    listener: std::net::TcpListener,
    limits: AdminLimits,
    state: Arc<ArcSwap<State>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "cannot register the admin listener");
            return;
        }
    };
    // The timing of `connection::serve`; the other fields do not apply here.
    let timing = Limits {
        header_timeout: limits.header_timeout,
        idle_timeout: limits.idle_timeout,
        max_connections: limits.max_connections,
        ..Limits::default()
    };
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let errors = accept::ErrorLog::new("admin");
    let mut backoff = accept::backoff();
    loop {
        let permit = tokio::select! {
            biased;
            _ = crate::control::stopped(&mut shutdown) => return,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let stream = tokio::select! {
            biased;
            _ = crate::control::stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    errors.failed(&e);
                    tokio::select! {
                        _ = crate::control::stopped(&mut shutdown) => return,
                        _ = tokio::time::sleep(backoff.next()) => continue,
                    }
                }
            },
        };
        backoff.reset();
        let activity = Activity::new();
        let service = {
            let (state, activity) = (state.clone(), activity.clone());
            service_fn(move |req| {
                let in_flight = activity.request();
                let state = state.load_full();
                async move { Ok::<_, Infallible>(answer(&state, &req).map(|body| Tracked::new(body, in_flight))) }
            })
        };
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(StrictHttp1::new(stream, activity.clone()));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                // Header and idle timing is done by `connection::serve`.
                .header_read_timeout(None)
                .max_buf_size(timing.max_header_bytes)
                .serve_connection(io, service);
            let _ = connection::serve(connection, activity, timing, shutdown).await;
            drop(permit);
        });
    }
}

fn answer(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/status/upstreams") => (StatusCode::OK, upstreams(state)),
        (_, "/status/upstreams") => (StatusCode::METHOD_NOT_ALLOWED, json!({ "error": "use GET" })),
        _ => (StatusCode::NOT_FOUND, json!({ "error": "not found; try GET /status/upstreams" })),
    };
    let mut response = Response::new(Full::new(Bytes::from(body.to_string() + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    response
}

/// The JSON of `GET /status/upstreams`.
pub fn upstreams(state: &State) -> Value {
    json!({ "upstreams": state.upstreams.iter().map(|u| upstream(u)).collect::<Vec<_>>() })
}

fn upstream(upstream: &Upstream) -> Value {
    let (source, targets) = upstream.status();
    let discovery = upstream.config.discovery.as_ref().map(|d| match d {
        DiscoveryConfig::ZooKeeper(zk) => json!({
            "kind": "zookeeper",
            "hosts": zk.hosts,
            "path": zk.path,
            "connected": source.as_ref().map(|s| s.connected),
            "since_unix_ms": source.as_ref().and_then(|s| s.since.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_millis() as u64),
            "error": source.as_ref().and_then(|s| s.error.clone()),
        }),
    });
    let targets: Vec<Value> = targets
        .iter()
        .map(|t| {
            json!({
                "address": t.address.to_string(),
                "weight": t.weight,
                "in_rotation": t.in_rotation,
                "health": t.health.as_str(),
                "breaker": t.breaker.map(|(state, requests, failures)| json!({
                    "state": state.as_str(),
                    "requests": requests,
                    "failures": failures,
                })),
            })
        })
        .collect();
    json!({
        "name": upstream.name(),
        "discovery": discovery,
        "health_check": upstream.config.health_check.is_some(),
        "max_concurrent_requests": upstream.config.max_concurrent_requests,
        "in_flight": upstream.config.max_concurrent_requests.map(|_| upstream.in_flight()),
        "available": targets.iter().filter(|t| t["in_rotation"] == true).count(),
        "targets": targets,
    })
}
