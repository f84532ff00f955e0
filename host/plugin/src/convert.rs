//! Between `http` types and the WIT types, and the checks on everything a
//! plugin hands back: it is untrusted input. Each check returns a reason
//! that ends up in the log line; nothing is applied unless all of it is
//! valid.

use std::net::IpAddr;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::uri::PathAndQuery;
use http::{request, response, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};

use crate::bindings::Response;
use crate::context::RequestContext;

/// Most header lines a plugin may return (`HeaderMap` holds at most 32 768).
const MAX_HEADER_LINES: usize = 1000;

/// Size limits on what a plugin returns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_body: usize,
    pub(crate) max_head: usize,
}

/// Appends one `name:value\n` line.
fn line(block: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    block.extend_from_slice(name);
    block.push(b':');
    block.extend_from_slice(value);
    block.push(b'\n');
}

/// Writes `n` (0..=255) in decimal.
fn push_octet(out: &mut Vec<u8>, n: u8) {
    if n >= 100 {
        out.push(b'0' + n / 100);
    }
    if n >= 10 {
        out.push(b'0' + n / 10 % 10);
    }
    out.push(b'0' + n % 10);
}

/// Writes `ip` as `Display` does: an IPv4 address digit by digit (formatting
/// machinery costs more than the rest of the context lines together), an
/// IPv6 one through `Display`.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_octet(out, octet);
            }
        }
        IpAddr::V6(v6) => {
            use std::io::Write;
            // Writing to a Vec cannot fail.
            let _ = write!(out, "{v6}");
        }
    }
}

/// The context lines of the WIT heads (`client-ip`, `route`, `listener`,
/// `upstream`): the same for every call of a request, built once.
pub(crate) fn context_lines(ctx: &RequestContext) -> Vec<u8> {
    let upstream = ctx.upstream.as_deref().unwrap_or_default();
    let mut block = Vec::with_capacity(64 + ctx.route.len() + ctx.listener.len() + upstream.len());
    if let Some(ip) = ctx.client_ip {
        block.extend_from_slice(b"client-ip:");
        push_ip(&mut block, ip);
        block.push(b'\n');
    }
    line(&mut block, b"route", ctx.route.as_bytes());
    line(&mut block, b"listener", ctx.listener.as_bytes());
    if let Some(upstream) = &ctx.upstream {
        line(&mut block, b"upstream", upstream.as_bytes());
    }
    block
}

/// The length of a head field as the WIT length table has it.
fn length(len: usize) -> [u8; 4] {
    // Heads are bounded far below 4 GiB by the gateway's header limits.
    u32::try_from(len).unwrap_or(u32::MAX - 1).to_le_bytes()
}

/// Appends the WIT `header-block`: `name:value\n` per line.
fn push_headers(buf: &mut Vec<u8>, map: &HeaderMap) {
    for (name, value) in map {
        line(buf, name.as_str().as_bytes(), value.as_bytes());
    }
}

/// Bytes the header block of `map` takes.
fn headers_len(map: &HeaderMap) -> usize {
    map.iter()
        .map(|(n, v)| n.as_str().len() + v.len() + 2)
        .sum()
}

/// Writes the WIT `request-head` of `parts` with `context` into `buf`
/// (cleared first; its allocation is reused from call to call).
pub(crate) fn request_head(buf: &mut Vec<u8>, parts: &request::Parts, context: &[u8]) {
    let path = match parts.uri.path() {
        "" => "/",
        path => path,
    };
    let method = parts.method.as_str();
    let query = parts.uri.query();
    let headers = headers_len(&parts.headers);
    buf.clear();
    buf.reserve(
        20 + method.len() + path.len() + query.map_or(0, str::len) + context.len() + headers,
    );
    buf.extend_from_slice(&length(method.len()));
    buf.extend_from_slice(&length(path.len()));
    buf.extend_from_slice(&query.map_or(u32::MAX.to_le_bytes(), |q| length(q.len())));
    buf.extend_from_slice(&length(context.len()));
    buf.extend_from_slice(&length(headers));
    buf.extend_from_slice(method.as_bytes());
    buf.extend_from_slice(path.as_bytes());
    buf.extend_from_slice(query.unwrap_or_default().as_bytes());
    buf.extend_from_slice(context);
    push_headers(buf, &parts.headers);
}

/// Writes the WIT `response-head` of `parts` with `context` into `buf`
/// (cleared first); the status goes as its own argument.
pub(crate) fn response_head(buf: &mut Vec<u8>, parts: &response::Parts, context: &[u8]) {
    let headers = headers_len(&parts.headers);
    buf.clear();
    buf.reserve(8 + context.len() + headers);
    buf.extend_from_slice(&length(context.len()));
    buf.extend_from_slice(&length(headers));
    buf.extend_from_slice(context);
    push_headers(buf, &parts.headers);
}

/// The lines of a block or edit list (each ends with `\n`), checked for
/// size and count. Each item is a line or, once, the reason to refuse all.
fn lines<'a>(
    block: &'a [u8],
    what: &'static str,
    limits: Limits,
) -> Result<impl Iterator<Item = Result<&'a [u8], String>> + 'a, String> {
    if block.len() > limits.max_head {
        return Err(format!("{what} larger than {} bytes", limits.max_head));
    }
    let body = match block.strip_suffix(b"\n") {
        Some(body) => Some(body),
        None if block.is_empty() => None,
        None => return Err(format!("{what} do not end with a newline")),
    };
    // memchr finds the line ends many bytes a step; `split` goes byte by byte.
    let lines = body.into_iter().flat_map(|body| {
        let mut start = 0;
        memchr::memchr_iter(b'\n', body)
            .chain([body.len()])
            .map(move |end| {
                let line = &body[start..end];
                start = end + 1;
                line
            })
    });
    Ok(lines
        .enumerate()
        .map(move |(count, line)| match count < MAX_HEADER_LINES {
            true => Ok(line),
            false => Err(format!("more than {MAX_HEADER_LINES} lines of {what}")),
        }))
}

/// Header names that plugins sent lately, per thread (the oldest replaced
/// first). Plugins send the same few names on every request (a rate
/// limiter's `x-ratelimit-*`, an auth plugin's consumer header); parsing a
/// custom `HeaderName` costs a validating copy and an allocation, a clone of
/// a known one a reference count.
const KNOWN_NAMES: usize = 32;

thread_local! {
    static KNOWN: std::cell::RefCell<(Vec<HeaderName>, usize)> =
        const { std::cell::RefCell::new((Vec::new(), 0)) };
}

fn header_name(name: &[u8]) -> Result<HeaderName, String> {
    let known = KNOWN.with(|known| {
        let known = known.borrow();
        known.0.iter().find(|n| n.as_str().as_bytes() == name).cloned()
    });
    if let Some(known) = known {
        return Ok(known);
    }
    let parsed = HeaderName::from_bytes(name).map_err(|_| {
        format!(
            "header name {:?} is not a valid token",
            String::from_utf8_lossy(name)
        )
    })?;
    // Kept as sent (lower-case), so that the same bytes find it again.
    if parsed.as_str().as_bytes() == name {
        KNOWN.with(|known| {
            let (names, next) = &mut *known.borrow_mut();
            if names.len() < KNOWN_NAMES {
                names.push(parsed.clone());
            } else {
                names[*next] = parsed.clone();
                *next = (*next + 1) % KNOWN_NAMES;
            }
        });
    }
    Ok(parsed)
}

fn header_value(name: &HeaderName, value: &[u8]) -> Result<HeaderValue, String> {
    HeaderValue::from_bytes(value).map_err(|_| {
        format!("value of header `{name}` contains a control character (CR, LF, NUL, ...)")
    })
}

/// Splits `name:value` at the first `:`.
fn split(line: &[u8]) -> Result<(&[u8], &[u8]), String> {
    match memchr::memchr(b':', line) {
        Some(colon) => Ok((&line[..colon], &line[colon + 1..])),
        None => Err(format!(
            "line {:?} has no `:`",
            String::from_utf8_lossy(line)
        )),
    }
}

/// Parses a plugin's `header-block` (a response it made). Every line must be
/// `name:value\n` with a valid token as the name and a value without control
/// characters.
fn header_map(block: &[u8], limits: Limits) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for line in lines(block, "headers", limits)? {
        let (name, value) = split(line?)?;
        let name = header_name(name)?;
        let value = header_value(&name, value)?;
        map.append(name, value);
    }
    Ok(map)
}

/// One checked line of a plugin's `edits`.
#[derive(Debug, Clone)]
pub(crate) enum Edit {
    Set(HeaderName, HeaderValue),
    Append(HeaderName, HeaderValue),
    Remove(HeaderName),
    Method(Method),
    Target(PathAndQuery),
    Status(StatusCode),
}

/// Which pseudo-headers an edit list may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pseudo {
    /// `:method` and `:path`.
    Request,
    /// `:status`.
    Response,
}

fn is_framing(name: &HeaderName) -> bool {
    name == CONTENT_LENGTH || name == TRANSFER_ENCODING
}

/// Checks every line of `edits`; nothing is applied unless all are valid.
/// Edits of the framing headers are dropped here (they stay the host's).
/// A plain loop over the lines (no counting pass, no iterator adapters):
/// this runs for every plugin that changes something, on every request.
pub(crate) fn parse_edits(
    edits: &[u8],
    pseudo: Pseudo,
    limits: Limits,
) -> Result<Vec<Edit>, String> {
    if edits.len() > limits.max_head {
        return Err(format!("edits larger than {} bytes", limits.max_head));
    }
    let Some(mut rest) = edits.strip_suffix(b"\n") else {
        return match edits.is_empty() {
            true => Ok(Vec::new()),
            false => Err("edits do not end with a newline".to_owned()),
        };
    };
    // Plugins send a few lines: one allocation covers the usual case.
    let mut parsed = Vec::with_capacity(4);
    let mut count = 0;
    loop {
        let (line, next) = match memchr::memchr(b'\n', rest) {
            Some(end) => (&rest[..end], Some(&rest[end + 1..])),
            None => (rest, None),
        };
        if count == MAX_HEADER_LINES {
            return Err(format!("more than {MAX_HEADER_LINES} lines of edits"));
        }
        count += 1;
        if let Some(edit) = edit_line(line, pseudo)? {
            parsed.push(edit);
        }
        match next {
            Some(next) => rest = next,
            None => return Ok(parsed),
        }
    }
}

/// One line of `edits`, checked; `None` for an edit of a framing header.
fn edit_line(line: &[u8], pseudo: Pseudo) -> Result<Option<Edit>, String> {
    let Some((&op, rest)) = line.split_first() else {
        return Err("empty edit line".to_owned());
    };
    if !matches!(op, b'=' | b'+' | b'-') {
        return Err(format!(
            "edit line {:?} starts with {:?}, not `=`, `+` or `-`",
            String::from_utf8_lossy(line),
            char::from(op)
        ));
    }
    if rest.first() == Some(&b':') {
        return pseudo_edit(op, &rest[1..], pseudo).map(Some);
    }
    let (name, value) = match op {
        b'-' => (header_name(rest)?, None),
        _ => {
            let (name, value) = split(rest)?;
            let name = header_name(name)?;
            let value = header_value(&name, value)?;
            (name, Some(value))
        }
    };
    if is_framing(&name) {
        return Ok(None);
    }
    Ok(Some(match value {
        Some(value) if op == b'=' => Edit::Set(name, value),
        Some(value) => Edit::Append(name, value),
        None => Edit::Remove(name),
    }))
}

/// `=:method:GET`, `=:path:/a?b` or `=:status:404` (after the `=:`).
fn pseudo_edit(op: u8, rest: &[u8], pseudo: Pseudo) -> Result<Edit, String> {
    let (name, value) = split(rest)?;
    if op != b'=' {
        return Err(format!(
            "pseudo-header `:{}` can only be set (`=`)",
            String::from_utf8_lossy(name)
        ));
    }
    match (name, pseudo) {
        (b"method", Pseudo::Request) => Method::from_bytes(value).map(Edit::Method).map_err(|_| {
            format!(
                "method {:?} is not a valid token",
                String::from_utf8_lossy(value)
            )
        }),
        (b"path", Pseudo::Request) => target(value).map(Edit::Target),
        (b"status", Pseudo::Response) => {
            let code = std::str::from_utf8(value)
                .ok()
                .and_then(|v| v.parse::<u16>().ok())
                .ok_or_else(|| {
                    format!(
                        "status {:?} is not a number",
                        String::from_utf8_lossy(value)
                    )
                })?;
            status(code, None).map(Edit::Status)
        }
        _ => Err(format!(
            "pseudo-header `:{}` cannot be changed here",
            String::from_utf8_lossy(name)
        )),
    }
}

/// A new `path[?query]` from a plugin.
fn target(value: &[u8]) -> Result<PathAndQuery, String> {
    let text = std::str::from_utf8(value)
        .map_err(|_| format!("path {:?} is not UTF-8", String::from_utf8_lossy(value)))?;
    let (path, query) = match text.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (text, None),
    };
    check_path(path)?;
    if let Some(query) = query {
        check_query(query)?;
    }
    PathAndQuery::try_from(text)
        .map_err(|e| format!("path and query are not a valid URI part: {e}"))
}

fn apply_header_edit(headers: &mut HeaderMap, edit: Edit) {
    match edit {
        Edit::Set(name, value) => {
            headers.insert(name, value);
        }
        Edit::Append(name, value) => {
            headers.append(name, value);
        }
        Edit::Remove(name) => {
            headers.remove(name);
        }
        Edit::Method(_) | Edit::Target(_) | Edit::Status(_) => {}
    }
}

/// Applies a plugin's request edits to `parts`, or changes nothing.
pub(crate) fn apply_request_edits(
    parts: &mut request::Parts,
    edits: &[u8],
    limits: Limits,
) -> Result<(), String> {
    if edits.is_empty() {
        return Ok(());
    }
    let edits = parse_edits(edits, Pseudo::Request, limits)?;
    parts.headers.reserve(edits.len());
    let mut uri = None;
    for edit in &edits {
        if let Edit::Target(target) = edit {
            let mut new = parts.uri.clone().into_parts();
            new.path_and_query = Some(target.clone());
            uri = Some(Uri::from_parts(new).map_err(|e| format!("the new URI is not valid: {e}"))?);
        }
    }
    if let Some(uri) = uri {
        parts.uri = uri;
    }
    for edit in edits {
        match edit {
            Edit::Method(method) => parts.method = method,
            Edit::Target(_) => {}
            edit => apply_header_edit(&mut parts.headers, edit),
        }
    }
    Ok(())
}

/// Applies checked response edits (from `parse_edits` with
/// `Pseudo::Response`) to `parts`.
pub(crate) fn apply_response_edits(parts: &mut response::Parts, edits: Vec<Edit>) {
    parts.headers.reserve(edits.len());
    for edit in edits {
        match edit {
            Edit::Status(status) => parts.status = status,
            edit => apply_header_edit(&mut parts.headers, edit),
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
    let mut headers = header_map(&response.headers, limits)?;
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

/// Body of the 503 answered while a fail-closed entry's global state is unreachable.
pub(crate) const STATE_UNAVAILABLE_BODY: &str = "global state unavailable\n";

/// The 503 answered when a fail-closed `state = "global"` plugin entry
/// cannot reach Redis: the limit cannot be kept, so the request is refused.
pub(crate) fn state_unavailable() -> http::Response<bytes::Bytes> {
    let (_, mut headers) = failure_head();
    set_content_length(&mut headers, STATE_UNAVAILABLE_BODY.len());
    headers.insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    let mut response = http::Response::new(bytes::Bytes::from_static(STATE_UNAVAILABLE_BODY.as_bytes()));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    *response.headers_mut() = headers;
    response
}

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
