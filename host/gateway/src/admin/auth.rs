//! The admin API's bearer token check (RFC 6750). A request without the right
//! token learns nothing: `401`, `WWW-Authenticate: Bearer`, an empty body, the
//! same for every path and method, whether the header was missing, malformed or
//! wrong.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::Full;

use crate::config::AdminToken;

/// Whether the request carries exactly one `Authorization: Bearer <token>` with `token`.
pub fn authorized(token: &AdminToken, headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    match credentials(value.as_bytes()) {
        Some(presented) => token.matches(presented),
        None => false,
    }
}

/// The token of a `Bearer` credential: the scheme matched without regard to
/// case, then at least one space.
fn credentials(value: &[u8]) -> Option<&[u8]> {
    const SCHEME: &[u8] = b"bearer ";
    let scheme = value.get(..SCHEME.len())?;
    if !scheme.eq_ignore_ascii_case(SCHEME) {
        return None;
    }
    let token = value[SCHEME.len()..].trim_ascii();
    (!token.is_empty()).then_some(token)
}

pub fn unauthorized() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}
