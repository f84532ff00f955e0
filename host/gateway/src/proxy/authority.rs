//! The one authority of a request: decided once, from the request target or
//! `Host`, normalised, and then used for routing, for `Host` upstream and for
//! `X-Forwarded-Host` alike. A backend that picks its virtual host by `Host`
//! thus always sees the host the gateway routed by.

#[cfg(test)]
mod tests;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::Version;

use super::ProxyError;

/// A request's authority, `host[:port]`, lower case, without a trailing dot.
#[derive(Debug, Clone)]
pub struct Authority {
    pub value: HeaderValue,
    /// Length of the host part (`value` without `:port`).
    host_len: usize,
    /// The request's `Host` header already holds exactly `value` (found while
    /// reading it, so the proxy need not look it up again).
    pub in_host: bool,
}

impl Authority {
    /// The host without its port, for routing.
    pub fn host(&self) -> &str {
        // `value` is checked ASCII by `normalize`.
        std::str::from_utf8(&self.value.as_bytes()[..self.host_len]).unwrap_or_default()
    }
}

/// The authority the client asked for: from an absolute-form target if there
/// is one (it replaces `Host`, RFC 9112 §3.2.2), over HTTP/2 from `:authority`
/// (a `host` header that says otherwise is refused), else the single `Host`
/// header. `None` only for HTTP/1.0 (and HTTP/2 without either), which may
/// omit it. Refuses targets that are not a path.
pub fn of_request(parts: &Parts) -> Result<Option<Authority>, ProxyError> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(ProxyError::BadRequest("more than one Host header"));
    }
    if !parts.uri.path().starts_with('/') {
        return Err(ProxyError::BadRequest("request target is not a path"));
    }
    if let Some(target) = parts.uri.authority() {
        if parts.uri.scheme().is_none() && parts.version != Version::HTTP_2 {
            return Err(ProxyError::BadRequest("request target is not a path"));
        }
        let mut authority = normalize(target.as_str().as_bytes(), None)?;
        if parts.version == Version::HTTP_2 {
            if let Some(host) = host {
                if normalize(host.as_bytes(), Some(host))?.value != authority.value {
                    return Err(ProxyError::BadRequest("the host header and :authority differ"));
                }
            }
        }
        authority.in_host = host == Some(&authority.value);
        return Ok(Some(authority));
    }
    match host {
        Some(host) => {
            let mut authority = normalize(host.as_bytes(), Some(host))?;
            authority.in_host = authority.value == host;
            Ok(Some(authority))
        }
        None if parts.version == Version::HTTP_11 => Err(ProxyError::BadRequest("HTTP/1.1 request without Host")),
        None => Ok(None),
    }
}

/// Checks `host[:port]` (a reg-name or an IP literal, RFC 3986 §3.2.2) and
/// lower-cases it, dropping a trailing dot from the host (`example.com.` and
/// `example.com` are one name to DNS and to most servers). `original`: the
/// header `text` came from, shared (not copied) when `text` is already normal.
pub fn normalize(text: &[u8], original: Option<&HeaderValue>) -> Result<Authority, ProxyError> {
    const INVALID: ProxyError = ProxyError::BadRequest("invalid host");
    if let (Some(host_len), Some(original)) = (plain_len(text), original) {
        return Ok(Authority { value: original.clone(), host_len, in_host: false });
    }
    let (host, port) = split_port(text).ok_or(INVALID)?;
    if host.is_empty() {
        return Err(INVALID);
    }
    if host[0] == b'[' {
        let literal = &host[1..host.len() - 1];
        if literal.is_empty() || !literal.iter().all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.') {
            return Err(INVALID);
        }
    } else if !valid_name(host)? {
        return Err(INVALID);
    }
    let trailing_dot = host.len() > 1 && host[host.len() - 1] == b'.';
    let host_len = host.len() - usize::from(trailing_dot);
    let normal = !trailing_dot && !text.iter().any(u8::is_ascii_uppercase);
    let value = match original {
        Some(original) if normal => original.clone(),
        _ if normal => HeaderValue::from_bytes(text).map_err(|_| INVALID)?,
        _ => {
            let mut out = Vec::with_capacity(text.len());
            out.extend(host[..host_len].iter().map(u8::to_ascii_lowercase));
            if let Some(port) = port {
                out.push(b':');
                out.extend_from_slice(port);
            }
            HeaderValue::from_bytes(&out).map_err(|_| INVALID)?
        }
    };
    Ok(Authority { value, host_len, in_host: false })
}

/// The usual authority, in one pass: a lower-case name or IPv4 address
/// without a trailing dot and with an optional port of 1–5 digits. Its host's
/// length, or `None` for anything else (which `normalize` then looks at
/// closely: upper case, IP literals, a trailing dot, or an error).
fn plain_len(text: &[u8]) -> Option<usize> {
    let mut label = 0usize;
    for (i, &b) in text.iter().enumerate() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => label += 1,
            b'.' if label > 0 => label = 0,
            b':' if label > 0 => {
                let port = &text[i + 1..];
                return ((1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit)).then_some(i);
            }
            _ => return None,
        }
    }
    (label > 0).then_some(text.len())
}

/// Whether `host` is a DNS name (letters, digits, `-`, `_`, no empty label;
/// one trailing dot allowed); refuses user information outright.
fn valid_name(host: &[u8]) -> Result<bool, ProxyError> {
    let name = host.strip_suffix(b".").unwrap_or(host);
    let mut label = 0;
    for &b in name {
        match b {
            b'.' if label == 0 => return Ok(false),
            b'.' => label = 0,
            b'@' => return Err(ProxyError::BadRequest("user information in the authority")),
            _ if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' => label += 1,
            _ => return Ok(false),
        }
    }
    Ok(label > 0)
}

/// `host` and `port` of `host[:port]`; `None` when the port is not 1–5 digits
/// or an IP literal is not closed.
fn split_port(text: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let host_end = if text.first() == Some(&b'[') {
        text.iter().position(|&b| b == b']')? + 1
    } else {
        text.iter().position(|&b| b == b':').unwrap_or(text.len())
    };
    let (host, rest) = text.split_at(host_end);
    match rest {
        [] => Some((host, None)),
        [b':', port @ ..] if (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit) => Some((host, Some(port))),
        _ => None,
    }
}
