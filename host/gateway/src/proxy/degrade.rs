//! Degradation: what a client gets when an upstream has nothing to offer (every
//! target unhealthy, open or undiscovered, or the upstream at its concurrency
//! limit). A gRPC request gets a gRPC `UNAVAILABLE`; otherwise the route's
//! configured fallback answers, if it has one, else a plain `503`.

use std::sync::Arc;

use http::{HeaderMap, Response};

use super::body::ResponseBody;
use super::grpc;
use super::error::ProxyError;
use crate::config::FallbackConfig;
use crate::router::Route;

/// How to answer instead of a plain `503`.
#[derive(Debug, Clone, Default)]
pub struct Degrade {
    pub fallback: Option<Arc<FallbackConfig>>,
    /// The request is gRPC (`content-type: application/grpc...`).
    pub grpc: bool,
}

/// The error for a request that found no target on `route`'s upstream.
pub fn unavailable(route: &Route, headers: &HeaderMap, reason: &'static str) -> ProxyError {
    let grpc = grpc::is_grpc(headers);
    ProxyError::Unavailable {
        upstream: route.upstream.name().to_owned(),
        reason,
        degrade: Degrade { fallback: route.fallback.clone(), grpc },
    }
}

impl Degrade {
    /// The degraded answer, or `None` for the gateway's usual `503`.
    pub fn response(&self, message: &str) -> Option<Response<ResponseBody>> {
        if self.grpc {
            // Trailers-only: the status travels in the headers of an empty 200.
            return Some(grpc::trailers_only(grpc::code::UNAVAILABLE, message));
        }
        let fallback = self.fallback.as_ref()?;
        let mut response = Response::new(ResponseBody::full(fallback.body.clone()));
        *response.status_mut() = fallback.status;
        *response.headers_mut() = fallback.headers.clone();
        Some(response)
    }
}
