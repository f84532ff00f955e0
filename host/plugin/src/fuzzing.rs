//! The host's checks on what a plugin returns, callable without a plugin, for
//! the fuzz target in `host/plugin/fuzz`. Not part of the stable API.

use http::{Request, Response};

use crate::bindings::Response as WitResponse;
use crate::convert::{self, Limits, Pseudo};

const LIMITS: Limits = Limits { max_body: 1 << 20, max_head: 64 << 10 };

/// A plugin's request edits, applied to a plain GET: they either apply in
/// full or change nothing.
pub fn request_edits(edits: &[u8]) -> Result<(), String> {
    let (mut parts, ()) = Request::new(()).into_parts();
    let before = format!("{parts:?}");
    let result = convert::apply_request_edits(&mut parts, edits, LIMITS);
    if result.is_err() {
        assert_eq!(before, format!("{parts:?}"), "refused edits changed the request");
    } else {
        assert!(parts.uri.path().starts_with('/'));
    }
    result
}

/// A plugin's response edits applied to a 200, and a plugin's own response.
pub fn response(status: u16, block: Vec<u8>, body: Vec<u8>) -> Result<(), String> {
    let (mut parts, ()) = Response::new(()).into_parts();
    if let Ok(edits) = convert::parse_edits(&block, Pseudo::Response, LIMITS) {
        convert::apply_response_edits(&mut parts, edits);
        assert!((200..=599).contains(&parts.status.as_u16()));
    }
    let answer = WitResponse { status, headers: block, body };
    convert::complete_response(answer, LIMITS).map(|(status, headers, body)| {
        assert!((200..=599).contains(&status.as_u16()));
        assert_eq!(headers.get(http::header::CONTENT_LENGTH).map(|v| v.as_bytes().to_vec()), Some(body.len().to_string().into_bytes()));
    })
}
