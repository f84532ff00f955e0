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
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::DiscoveryConfig;
use crate::state::State;
use crate::upstream::Upstream;

pub async fn serve(listener: std::net::TcpListener, state: Arc<ArcSwap<State>>, mut shutdown: watch::Receiver<bool>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "cannot register the admin listener");
            return;
        }
    };
    loop {
        let (stream, _) = tokio::select! {
            _ = crate::control::stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let state = state.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let state = state.load_full();
                async move { Ok::<_, Infallible>(answer(&state, &req)) }
            });
            let connection = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = crate::control::stopped(&mut stop) => {}
            }
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
