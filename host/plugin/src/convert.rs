//! Between `http` types and the WIT types, and the checks on everything a
//! plugin hands back: it is untrusted input. Each check returns a reason
//! that ends up in the log line; nothing is applied unless all of it is
//! valid.

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::uri::PathAndQuery;
use http::{request, response, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::bindings::{RequestHead, Response, ResponseHead};

/// Most header lines a plugin may return (`HeaderMap` holds at most 32 768).
const MAX_HEADER_LINES: usize = 1000;

/// Size limits on what a plugin returns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_body: usize,
    pub(crate) max_head: usize,
}

/// The WIT `header-block`: `name:value\n` per line.
fn headers_to_wit(map: &HeaderMap) -> Vec<u8> {
    let size = map.iter().map(|(n, v)| n.as_str().len() + v.len() + 2).sum();
    let mut block = Vec::with_capacity(size);
    for (name, value) in map {
        block.extend_from_slice(name.as_str().as_bytes());
        block.push(b':');
        block.extend_from_slice(value.as_bytes());
        block.push(b'\n');
    }
    block
}

pub(crate) fn request_head(parts: &request::Parts) -> RequestHead {
    let path = parts.uri.path();
    RequestHead {
        method: parts.method.as_str().to_owned(),
        path: if path.is_empty() {
            "/".to_owned()
        } else {
            path.to_owned()
        },
        query: parts.uri.query().map(str::to_owned),
        headers: headers_to_wit(&parts.headers),
    }
}

pub(crate) fn response_head(parts: &response::Parts) -> ResponseHead {
    ResponseHead {
        status: parts.status.as_u16(),
        headers: headers_to_wit(&parts.headers),
    }
}

/// Parses a plugin's `header-block`. Every line must be `name:value\n` with a
/// valid token as the name and a value without control characters.
fn header_map(block: Vec<u8>, limits: Limits) -> Result<HeaderMap, String> {
    if block.len() > limits.max_head {
        return Err(format!("headers larger than {} bytes", limits.max_head));
    }
    let Some(body) = block.strip_suffix(b"\n") else {
        return match block.is_empty() {
            true => Ok(HeaderMap::new()),
            false => Err("header block does not end with a newline".to_owned()),
        };
    };
    let lines = body.split(|&b| b == b'\n');
    let mut map = HeaderMap::new();
    for (count, line) in lines.enumerate() {
        if count >= MAX_HEADER_LINES {
            return Err(format!("more than {MAX_HEADER_LINES} header lines"));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(format!(
                "header line {:?} has no `:`",
                String::from_utf8_lossy(line)
            ));
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let name = HeaderName::from_bytes(name).map_err(|_| {
            format!(
                "header name {:?} is not a valid token",
                String::from_utf8_lossy(name)
            )
        })?;
        let value = HeaderValue::from_bytes(value).map_err(|_| {
            format!("value of header `{name}` contains a control character (CR, LF, NUL, ...)")
        })?;
        map.append(name, value);
    }
    Ok(map)
}

/// Puts the framing headers of `old` (the host's business) into `new`,
/// replacing whatever the plugin set for them.
fn keep_framing(old: &HeaderMap, new: &mut HeaderMap) {
    for name in [CONTENT_LENGTH, TRANSFER_ENCODING] {
        new.remove(&name);
        for value in old.get_all(&name) {
            new.append(name.clone(), value.clone());
        }
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err(format!("path {path:?} does not start with `/`"));
    }
    if path
        .bytes()
        .any(|b| b <= b' ' || b == 0x7f || b == b'?' || b == b'#')
    {
        return Err(format!(
            "path {path:?} contains a space, a control character, `?` or `#`"
        ));
    }
    Ok(())
}

fn check_query(query: &str) -> Result<(), String> {
    if query.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'#') {
        return Err(format!(
            "query {query:?} contains a space, a control character or `#`"
        ));
    }
    Ok(())
}

/// A status a plugin asks for: unchanged, or a final status (200..=599; a
/// 1xx is never a complete response).
fn status(code: u16, current: Option<StatusCode>) -> Result<StatusCode, String> {
    if let Some(current) = current.filter(|c| c.as_u16() == code) {
        return Ok(current);
    }
    if !(200..=599).contains(&code) {
        return Err(format!(
            "status {code} is not a final HTTP status (200..=599)"
        ));
    }
    StatusCode::from_u16(code).map_err(|_| format!("status {code} is not valid"))
}

/// Applies a plugin's new request head to `parts`, or changes nothing.
pub(crate) fn apply_request_head(
    parts: &mut request::Parts,
    head: RequestHead,
    limits: Limits,
) -> Result<(), String> {
    let method = if head.method == parts.method.as_str() {
        parts.method.clone()
    } else {
        Method::from_bytes(head.method.as_bytes())
            .map_err(|_| format!("method {:?} is not a valid token", head.method))?
    };
    check_path(&head.path)?;
    let path_and_query = match &head.query {
        Some(query) => {
            check_query(query)?;
            format!("{}?{query}", head.path)
        }
        None => head.path,
    };
    let path_and_query = PathAndQuery::try_from(path_and_query)
        .map_err(|e| format!("path and query are not a valid URI part: {e}"))?;
    let mut uri = parts.uri.clone().into_parts();
    uri.path_and_query = Some(path_and_query);
    let uri = Uri::from_parts(uri).map_err(|e| format!("the new URI is not valid: {e}"))?;
    let mut headers = header_map(head.headers, limits)?;
    keep_framing(&parts.headers, &mut headers);

    parts.method = method;
    parts.uri = uri;
    parts.headers = headers;
    Ok(())
}

/// Applies a plugin's new response head to `parts`, or changes nothing.
pub(crate) fn apply_response_head(
    parts: &mut response::Parts,
    head: ResponseHead,
    limits: Limits,
) -> Result<(), String> {
    let status = status(head.status, Some(parts.status))?;
    let mut headers = header_map(head.headers, limits)?;
    keep_framing(&parts.headers, &mut headers);
    parts.status = status;
    parts.headers = headers;
    Ok(())
}

/// A complete response from a plugin, checked, with `content-length` set.
pub(crate) fn complete_response(
    response: Response,
    limits: Limits,
) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let status = status(response.status, None)?;
    if response.body.len() > limits.max_body {
        return Err(format!(
            "body of {} bytes, more than {}",
            response.body.len(),
            limits.max_body
        ));
    }
    let mut headers = header_map(response.headers, limits)?;
    set_content_length(&mut headers, response.body.len());
    Ok((status, headers, Bytes::from(response.body)))
}

/// Replaces the framing headers with a `content-length` for `len` bytes.
pub(crate) fn set_content_length(headers: &mut HeaderMap, len: usize) {
    headers.remove(TRANSFER_ENCODING);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
}

/// The body of the 500 answered for a fail-closed plugin.
pub(crate) const FAILURE_BODY: &str = "plugin failed\n";

/// Status and headers of the 500 answered for a fail-closed plugin.
pub(crate) fn failure_head() -> (StatusCode, HeaderMap) {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    set_content_length(&mut headers, FAILURE_BODY.len());
    (StatusCode::INTERNAL_SERVER_ERROR, headers)
}

#[cfg(test)]
mod tests;
