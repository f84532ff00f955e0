//! Everything that can go wrong with a request, and the one place that turns it
//! into a status code and a short body naming the reason.

use std::net::SocketAddr;
use std::time::Duration;

use http::{header, Response, StatusCode};

use super::body::ResponseBody;

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The client sent something the gateway will not forward.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("request body is larger than the listener allows")]
    PayloadTooLarge { limit: u64 },
    /// The client stopped sending its body for the listener's `body_timeout`.
    #[error("the request body stalled")]
    BodyTimeout,
    #[error("no route for this host and path")]
    NoRoute,
    /// No target to offer, or the upstream is at its concurrency limit.
    #[error("upstream `{upstream}` {reason}")]
    Unavailable { upstream: String, reason: &'static str, degrade: super::degrade::Degrade },
    #[error("upstream `{upstream}`: cannot connect to {target}: {reason}")]
    Connect { upstream: String, target: SocketAddr, reason: std::io::Error },
    #[error("upstream `{upstream}`: {target} sent no response within {after:?}")]
    Timeout { upstream: String, target: SocketAddr, after: Duration },
    #[error("upstream `{upstream}`: {target} failed: {reason}")]
    Upstream { upstream: String, target: SocketAddr, reason: Box<dyn std::error::Error + Send + Sync> },
    /// The upstream's body broke while the gateway buffered it for a plugin.
    #[error("the upstream response body failed")]
    BadGatewayBody,
    /// A plugin answered the request itself; not an error, but it ends the
    /// request the same way: nothing goes upstream.
    #[error("answered by a plugin with {}", .0.status())]
    Answered(Answer),
}

/// A plugin's answer (a response, carried through the error path).
pub struct Answer(pub Box<Response<ResponseBody>>);

impl Answer {
    pub fn status(&self) -> StatusCode {
        self.0.status()
    }
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Answer({})", self.0.status())
    }
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            ProxyError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ProxyError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ProxyError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ProxyError::NoRoute => StatusCode::NOT_FOUND,
            ProxyError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ProxyError::Connect { .. } | ProxyError::Upstream { .. } | ProxyError::BadGatewayBody => {
                StatusCode::BAD_GATEWAY
            }
            ProxyError::Answered(answer) => answer.status(),
            ProxyError::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// Whether the fault lies with the upstream side (for logs and, later, breakers).
    pub fn is_upstream(&self) -> bool {
        matches!(self, ProxyError::Connect { .. } | ProxyError::Timeout { .. } | ProxyError::Upstream { .. })
    }

    pub fn into_response(self) -> Response<ResponseBody> {
        match self {
            ProxyError::Answered(answer) => *answer.0,
            other => other.made_response(),
        }
    }

    /// A response the gateway makes itself, naming the reason.
    fn made_response(self) -> Response<ResponseBody> {
        if let ProxyError::Unavailable { degrade, .. } = &self {
            if let Some(response) = degrade.response(&self.to_string()) {
                return response;
            }
        }
        let status = self.status();
        let body = format!("{} {}: {}\n", status.as_u16(), status.canonical_reason().unwrap_or(""), self);
        let mut response = Response::new(ResponseBody::full(body));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
        if matches!(self, ProxyError::BadRequest(_) | ProxyError::PayloadTooLarge { .. } | ProxyError::BodyTimeout) {
            response.headers_mut().insert(header::CONNECTION, header::HeaderValue::from_static("close"));
        }
        response
    }
}
