//! gRPC through the proxy. Calls stream frame by frame like any request (trailers
//! included); what is gRPC-specific is here: recognising a call, honouring its
//! `grpc-timeout`, and reporting the gateway's own failures the way gRPC clients
//! understand them — an HTTP `200` "trailers-only" response whose headers carry
//! `grpc-status` and `grpc-message` — instead of a bare `502`/`504`/`429`.

use std::time::Duration;

use http::{header, HeaderMap, HeaderValue, Response, StatusCode};

use super::body::ResponseBody;
use super::error::ProxyError;

/// gRPC status codes the gateway produces.
pub mod code {
    pub const UNKNOWN: u8 = 2;
    pub const DEADLINE_EXCEEDED: u8 = 4;
    pub const PERMISSION_DENIED: u8 = 7;
    pub const RESOURCE_EXHAUSTED: u8 = 8;
    pub const UNIMPLEMENTED: u8 = 12;
    pub const INTERNAL: u8 = 13;
    pub const UNAVAILABLE: u8 = 14;
    pub const UNAUTHENTICATED: u8 = 16;
}

/// Whether a request is a gRPC call (`content-type: application/grpc[+proto|...]`).
#[inline]
pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).is_some_and(|ct| ct.as_bytes().starts_with(b"application/grpc"))
}

/// The call's `grpc-timeout` (1–8 digits and a unit: `H M S m u n`), when valid.
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.as_bytes();
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = std::str::from_utf8(digits).ok()?.parse::<u64>().ok()?;
    Some(match unit[0] {
        b'H' => Duration::from_secs(n * 3600),
        b'M' => Duration::from_secs(n * 60),
        b'S' => Duration::from_secs(n),
        b'm' => Duration::from_millis(n),
        b'u' => Duration::from_micros(n),
        b'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// How long to wait for the response head of a call: the upstream's response
/// timeout, or the call's own deadline when that is sooner.
pub fn response_deadline(headers: &HeaderMap, configured: Duration) -> Duration {
    match timeout(headers) {
        Some(deadline) if is_grpc(headers) => deadline.min(configured),
        _ => configured,
    }
}

/// The gRPC status for a status the gateway itself answers with. A gateway's
/// `429` is a quota (`RESOURCE_EXHAUSTED`), its `504` a deadline; the rest follows
/// gRPC's HTTP-to-gRPC mapping.
pub fn status_for(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 => code::INTERNAL,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 => code::UNIMPLEMENTED,
        408 | 504 => code::DEADLINE_EXCEEDED,
        413 | 429 | 431 => code::RESOURCE_EXHAUSTED,
        502 | 503 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// A trailers-only gRPC answer: HTTP `200`, no body, the status in the headers.
pub fn trailers_only(code: u8, message: &str) -> Response<ResponseBody> {
    let mut response = Response::new(ResponseBody::Full(None));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert("grpc-status", HeaderValue::from(u16::from(code)));
    if let Ok(message) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", message);
    }
    response
}

/// The gateway's failure as a gRPC client expects it.
pub fn error_response(e: &ProxyError) -> Response<ResponseBody> {
    trailers_only(status_for(e.status()), &e.to_string())
}

/// A plugin's answer to a gRPC call. An answer that is already gRPC (HTTP
/// `200`, or carrying `grpc-status`) goes out as the plugin made it. Any other
/// status becomes a trailers-only response with the mapped code (a rate
/// limiter's `429` is `RESOURCE_EXHAUSTED`, an auth plugin's `401`
/// `UNAUTHENTICATED`); the plugin's headers (`retry-after`, `x-ratelimit-*`,
/// `www-authenticate`) are kept as metadata, and a short text body becomes the
/// `grpc-message`.
pub fn plugin_answer(answer: Response<ResponseBody>) -> Response<ResponseBody> {
    if answer.status() == StatusCode::OK || answer.headers().contains_key("grpc-status") {
        return answer;
    }
    let (parts, body) = answer.into_parts();
    let text = match &body {
        ResponseBody::Full(Some(bytes)) => std::str::from_utf8(bytes).ok().map(str::trim),
        _ => None,
    };
    let message = match text {
        Some(text) if !text.is_empty() && text.len() <= 256 => text.to_owned(),
        _ => parts.status.canonical_reason().unwrap_or("refused by the gateway").to_owned(),
    };
    let mut response = trailers_only(status_for(parts.status), &message);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH && !response.headers().contains_key(name) {
            response.headers_mut().append(name, value.clone());
        }
    }
    response
}

/// gRPC's `grpc-message` encoding: printable ASCII except `%` as is, the rest `%XX`.
pub fn percent_encode(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_statuses_map_to_grpc_codes() {
        assert_eq!(status_for(StatusCode::TOO_MANY_REQUESTS), code::RESOURCE_EXHAUSTED);
        assert_eq!(status_for(StatusCode::SERVICE_UNAVAILABLE), code::UNAVAILABLE);
        assert_eq!(status_for(StatusCode::BAD_GATEWAY), code::UNAVAILABLE);
        assert_eq!(status_for(StatusCode::GATEWAY_TIMEOUT), code::DEADLINE_EXCEEDED);
        assert_eq!(status_for(StatusCode::UNAUTHORIZED), code::UNAUTHENTICATED);
        assert_eq!(status_for(StatusCode::NOT_FOUND), code::UNIMPLEMENTED);
        let r = trailers_only(status_for(StatusCode::TOO_MANY_REQUESTS), "rate limited: 100%");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "8");
        assert_eq!(r.headers()["grpc-message"], "rate limited: 100%25");
        assert_eq!(r.headers()["content-type"], "application/grpc");
    }

    #[test]
    fn a_plugins_refusal_becomes_a_grpc_status_with_its_headers() {
        let mut refusal = Response::new(ResponseBody::full("rate limit exceeded\n"));
        *refusal.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        refusal.headers_mut().insert("retry-after", HeaderValue::from_static("1"));
        refusal.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        let r = plugin_answer(refusal);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "8");
        assert_eq!(r.headers()["grpc-message"], "rate limit exceeded");
        assert_eq!(r.headers()["retry-after"], "1");
        assert_eq!(r.headers()["content-type"], "application/grpc");

        let mut already = Response::new(ResponseBody::Full(None));
        already.headers_mut().insert("grpc-status", HeaderValue::from_static("5"));
        *already.status_mut() = StatusCode::OK;
        assert_eq!(plugin_answer(already).headers()["grpc-status"], "5");
    }

    #[test]
    fn grpc_timeout_parses() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        for (text, expect) in [
            ("100m", Some(Duration::from_millis(100))),
            ("2S", Some(Duration::from_secs(2))),
            ("1H", Some(Duration::from_secs(3600))),
            ("5u", Some(Duration::from_micros(5))),
            ("123456789S", None),
            ("10x", None),
            ("S", None),
            ("", None),
        ] {
            h.insert("grpc-timeout", HeaderValue::from_static(text));
            assert_eq!(timeout(&h), expect, "{text}");
        }
        h.insert("grpc-timeout", HeaderValue::from_static("100m"));
        assert_eq!(response_deadline(&h, Duration::from_secs(60)), Duration::from_millis(100));
        assert_eq!(response_deadline(&h, Duration::from_millis(10)), Duration::from_millis(10));
    }
}
