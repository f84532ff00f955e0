//! The host's checks on what a plugin returns, callable without a plugin, for
//! the fuzz target in `host/plugin/fuzz`. Not part of the stable API.

use http::{Request, Response};

use crate::bindings::{RequestHead, Response as WitResponse, ResponseHead};
use crate::convert::{self, Limits};

const LIMITS: Limits = Limits { max_body: 1 << 20, max_head: 64 << 10 };

/// A plugin's new request head, applied to a plain GET: the result either
/// applies in full or changes nothing.
pub fn request_head(
    method: String,
    path: String,
    query: Option<String>,
    header_block: Vec<u8>,
) -> Result<(), String> {
    let (mut parts, ()) = Request::new(()).into_parts();
    let before = format!("{parts:?}");
    let head = RequestHead { method, path, query, headers: header_block };
    let result = convert::apply_request_head(&mut parts, head, LIMITS);
    if result.is_err() {
        assert_eq!(before, format!("{parts:?}"), "a refused head changed the request");
    } else {
        assert!(parts.uri.path().starts_with('/'));
    }
    result
}

/// A plugin's new response head applied to a 200, and a plugin's own response.
pub fn response(status: u16, header_block: Vec<u8>, body: Vec<u8>) -> Result<(), String> {
    let (mut parts, ()) = Response::new(()).into_parts();
    let head = ResponseHead { status, headers: header_block.clone() };
    let _ = convert::apply_response_head(&mut parts, head, LIMITS);
    let answer = WitResponse { status, headers: header_block, body };
    convert::complete_response(answer, LIMITS).map(|(status, headers, body)| {
        assert!((200..=599).contains(&status.as_u16()));
        assert_eq!(headers.get(http::header::CONTENT_LENGTH).map(|v| v.as_bytes().to_vec()), Some(body.len().to_string().into_bytes()));
    })
}
