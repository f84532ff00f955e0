//! Degradation: what a client gets when an upstream has nothing to offer (every
//! target unhealthy, open or undiscovered, or the upstream at its concurrency
//! limit). A gRPC request gets a gRPC `UNAVAILABLE`; otherwise the route's
//! configured fallback answers, if it has one, else a plain `503`.

use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Response};

use super::body::ResponseBody;
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

/// gRPC's status code for "the service is currently unavailable".
const GRPC_UNAVAILABLE: HeaderValue = HeaderValue::from_static("14");

/// The error for a request that found no target on `route`'s upstream.
pub fn unavailable(route: &Route, headers: &HeaderMap, reason: &'static str) -> ProxyError {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"));
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
            let mut response = Response::new(ResponseBody::Full(None));
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
            headers.insert("grpc-status", GRPC_UNAVAILABLE);
            if let Ok(message) = HeaderValue::from_str(&percent_encode(message)) {
                headers.insert("grpc-message", message);
            }
            return Some(response);
        }
        let fallback = self.fallback.as_ref()?;
        let mut response = Response::new(ResponseBody::full(fallback.body.clone()));
        *response.status_mut() = fallback.status;
        *response.headers_mut() = fallback.headers.clone();
        Some(response)
    }
}

/// gRPC's `grpc-message` encoding: printable ASCII except `%` as is, the rest `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
