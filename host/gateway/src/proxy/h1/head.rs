//! The request head as bytes on the wire, and the response head read back:
//! status, headers and how the body is framed (RFC 9112 §6.3).

use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{request, response, HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::proxy::headers::{is_fixed_hop_by_hop, Forwarded};

/// Most header lines accepted in a response head (as hyper's default).
const MAX_HEADERS: usize = 100;

/// `METHOD path HTTP/1.1`, the headers, the `X-Forwarded-*` headers, the
/// blank line. Header values cannot hold CR or LF (`HeaderValue` refuses
/// them), so nothing can be injected.
pub fn encode_request(parts: &request::Parts, forwarded: &Forwarded<'_>) -> Vec<u8> {
    let target = parts.uri.path_and_query().map_or("/", |pq| pq.as_str());
    let size = parts.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 4).sum::<usize>();
    // The forwarded headers' names and fixed parts take about 80 bytes.
    let mut out = Vec::with_capacity(parts.method.as_str().len() + target.len() + size + 192);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let mut chain = None;
    for (name, value) in &parts.headers {
        if forwarded.skips(name) {
            if Forwarded::is_chain(name) {
                chain = Some(&parts.headers);
            }
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    forwarded.write(chain, &mut out);
    out.extend_from_slice(b"\r\n");
    out
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (a response to HEAD, 204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Until the upstream closes the connection.
    UntilClose,
}

#[derive(Debug)]
pub struct Head {
    pub parts: response::Parts,
    pub framing: Framing,
    /// Whether the connection may carry another request after this response.
    pub reusable: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HeadError {
    #[error("malformed response head: {0}")]
    Malformed(&'static str),
    #[error("response head larger than {0} bytes")]
    TooLarge(usize),
}

fn malformed(e: httparse::Error) -> HeadError {
    HeadError::Malformed(match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "not HTTP/1.x",
    })
}

/// Parses a response head from the front of `buf`, taking its bytes out of
/// `buf` when it is complete. `Ok(None)`: not complete yet (read more).
/// Informational responses (1xx) are skipped; a `101` is refused, since
/// upgrade requests do not come this way.
pub fn parse_response(buf: &mut BytesMut, method: &Method, max: usize) -> Result<Option<Head>, HeadError> {
    loop {
        // Offsets of names and values inside the head, so the values can share
        // its bytes instead of being copied one by one. (The header slots are
        // left uninitialised: zeroing 100 of them costs more than the parse.)
        let (len, code, minor, spans) = {
            let mut slots = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
            let mut response = httparse::Response::new(&mut []);
            let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut response, buf, &mut slots) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if buf.len() > max => return Err(HeadError::TooLarge(max)),
                Ok(httparse::Status::Partial) => return Ok(None),
                Err(e) => return Err(malformed(e)),
            };
            if len > max {
                return Err(HeadError::TooLarge(max));
            }
            let base = buf.as_ptr() as usize;
            let spans: Vec<(usize, usize, usize, usize)> = response
                .headers
                .iter()
                .map(|header| {
                    let name = header.name.as_ptr() as usize - base;
                    let value = header.value.as_ptr() as usize - base;
                    (name, name + header.name.len(), value, value + header.value.len())
                })
                .collect();
            let code = response.code.ok_or(HeadError::Malformed("no status"))?;
            let minor = response.version.ok_or(HeadError::Malformed("no version"))?;
            (len, code, minor, spans)
        };
        let head = buf.split_to(len).freeze();
        let status = StatusCode::from_u16(code).map_err(|_| HeadError::Malformed("status out of range"))?;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(HeadError::Malformed("101 Switching Protocols without an upgrade request"));
        }
        if status.is_informational() {
            continue;
        }
        // Room for a few more (plugins, the gateway) without growing the map.
        let mut headers = HeaderMap::with_capacity(spans.len() + 4);
        let mut connection = Connection::default();
        let (mut transfer_encoding, mut content_length) = (false, false);
        for &(name_start, name_end, value_start, value_end) in &spans {
            let name = HeaderName::from_bytes(&head[name_start..name_end])
                .map_err(|_| HeadError::Malformed("invalid header name"))?;
            // Hop-by-hop headers (RFC 9110 §7.6.1) never reach the map: cheaper
            // than inserting and removing them again on every response.
            if name == CONNECTION {
                connection.read(&head[value_start..value_end]);
                continue;
            }
            // `Transfer-Encoding` stays for the framing (taken out there).
            if name != TRANSFER_ENCODING && is_fixed_hop_by_hop(&name) {
                continue;
            }
            transfer_encoding |= name == TRANSFER_ENCODING;
            content_length |= name == CONTENT_LENGTH;
            let value = HeaderValue::from_maybe_shared(head.slice(value_start..value_end))
                .map_err(|_| HeadError::Malformed("invalid header value"))?;
            headers.append(name, value);
        }
        for name in connection.named {
            headers.remove(name);
        }
        let seen = Seen { close: connection.close, keep_alive: connection.keep_alive, transfer_encoding, content_length };
        return framing(status, minor, seen, headers, method).map(Some);
    }
}

/// What the head's header lines said about framing and the connection, as
/// noted while they were read (cheaper than looking each up again).
struct Seen {
    close: bool,
    keep_alive: bool,
    transfer_encoding: bool,
    content_length: bool,
}

/// What the response's `Connection` headers say.
#[derive(Default)]
struct Connection {
    close: bool,
    keep_alive: bool,
    /// Other headers it names: hop-by-hop for this response, dropped too.
    named: Vec<HeaderName>,
}

impl Connection {
    fn read(&mut self, value: &[u8]) {
        for token in value.split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                self.close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.keep_alive = true;
            } else if let Ok(name) = HeaderName::from_bytes(token) {
                self.named.push(name);
            }
        }
    }
}

/// Body framing and connection reuse from the status and headers; takes the
/// framing headers out where the gateway re-frames the body itself.
fn framing(status: StatusCode, minor: u8, seen: Seen, mut headers: HeaderMap, method: &Method) -> Result<Head, HeadError> {
    let Seen { close, keep_alive, transfer_encoding, content_length } = seen;
    let mut reusable = !close && (minor == 1 || keep_alive);
    let framing = if *method == Method::HEAD || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        Framing::Empty
    } else if transfer_encoding {
        let chunked = minor == 1
            && headers
                .get_all(TRANSFER_ENCODING)
                .iter()
                .next_back()
                .and_then(|v| v.as_bytes().rsplit(|&b| b == b',').next())
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        if content_length {
            // Both: Transfer-Encoding wins, and the connection is not trusted again.
            headers.remove(CONTENT_LENGTH);
            reusable = false;
        }
        if chunked {
            Framing::Chunked
        } else {
            reusable = false;
            Framing::UntilClose
        }
    } else if content_length {
        let mut length = None;
        for value in headers.get_all(CONTENT_LENGTH) {
            let n = parse_length(value.as_bytes()).ok_or(HeadError::Malformed("invalid Content-Length"))?;
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::Malformed("conflicting Content-Length values"));
            }
            length = Some(n);
        }
        Framing::Length(length.unwrap_or(0))
    } else {
        reusable = false;
        Framing::UntilClose
    };
    if transfer_encoding {
        // Hop-by-hop: the gateway frames the body to its client itself.
        headers.remove(TRANSFER_ENCODING);
    }
    let mut parts = http::Response::new(()).into_parts().0;
    parts.status = status;
    // The upstream's version decided reuse and framing above; the client is
    // answered in the gateway's own version (RFC 9110 §6.2: an intermediary
    // sends its own), which hyper lowers to 1.0 for a 1.0 client by itself.
    parts.version = Version::HTTP_11;
    parts.headers = headers;
    Ok(Head { parts, framing, reusable })
}

/// A Content-Length: digits only (a list of equal values counts as one).
fn parse_length(value: &[u8]) -> Option<u64> {
    let mut result: Option<u64> = None;
    for part in value.split(|&b| b == b',') {
        let part = part.trim_ascii();
        if part.is_empty() || part.len() > 19 || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let n: u64 = std::str::from_utf8(part).ok()?.parse().ok()?;
        if result.is_some_and(|r| r != n) {
            return None;
        }
        result = Some(n);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(text: &str) -> BytesMut {
        BytesMut::from(text.as_bytes())
    }

    fn parse(text: &str) -> Result<Option<Head>, HeadError> {
        parse_response(&mut bytes(text), &Method::GET, 64 * 1024)
    }

    #[test]
    fn the_request_head_is_written_as_http_1_1() {
        let (parts, ()) = http::Request::get("/a/b?c=d")
            .header("host", "up")
            .header("x-real-ip", "spoofed")
            .header("x-two", "1")
            .body(())
            .unwrap()
            .into_parts();
        let client = HeaderValue::from_static("10.0.0.1");
        let forwarded = Forwarded { client: &client, proto: "http", host: None };
        assert_eq!(
            String::from_utf8(encode_request(&parts, &forwarded)).unwrap(),
            "GET /a/b?c=d HTTP/1.1\r\nhost: up\r\nx-two: 1\r\n\
             x-forwarded-for: 10.0.0.1\r\nx-real-ip: 10.0.0.1\r\nx-forwarded-proto: http\r\n\r\n"
        );
    }

    #[test]
    fn a_forwarded_for_chain_is_appended_to_on_the_wire() {
        let (parts, ()) = http::Request::get("/").header("x-forwarded-for", "1.1.1.1").body(()).unwrap().into_parts();
        let client = HeaderValue::from_static("10.0.0.1");
        let forwarded = Forwarded { client: &client, proto: "https", host: None };
        assert_eq!(
            String::from_utf8(encode_request(&parts, &forwarded)).unwrap(),
            "GET / HTTP/1.1\r\nx-forwarded-for: 1.1.1.1, 10.0.0.1\r\nx-real-ip: 10.0.0.1\r\nx-forwarded-proto: https\r\n\r\n"
        );
    }

    #[test]
    fn lengths_chunks_and_close_delimited_bodies_are_told_apart() {
        let head = parse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nX-A: b\r\n\r\nbody").unwrap().unwrap();
        assert_eq!((head.framing, head.reusable), (Framing::Length(12), true));
        assert_eq!(head.parts.headers["x-a"], "b");

        let head = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.framing, head.reusable), (Framing::Chunked, true));

        let head = parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.framing, head.reusable), (Framing::Chunked, false), "TE wins over CL, no reuse");
        assert!(!head.parts.headers.contains_key(CONTENT_LENGTH));

        let head = parse("HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.framing, head.reusable), (Framing::UntilClose, false));

        let head = parse("HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.framing, Framing::Empty);

        let head = parse("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(!head.reusable);

        let head = parse("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n").unwrap().unwrap();
        assert!(!head.reusable, "HTTP/1.0 without keep-alive");
    }

    #[test]
    fn heads_arrive_in_pieces_and_informational_responses_are_skipped() {
        let mut buf = bytes("HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le");
        assert!(matches!(parse_response(&mut buf, &Method::GET, 1024), Ok(None)));
        buf.extend_from_slice(b"ngth: 2\r\n\r\nhi");
        let head = parse_response(&mut buf, &Method::GET, 1024).unwrap().unwrap();
        assert_eq!(head.parts.status, 200);
        assert_eq!(&buf[..], b"hi", "the body's bytes stay in the buffer");
    }

    #[test]
    fn hop_by_hop_headers_are_left_out() {
        let head = parse(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Secret\r\nKeep-Alive: timeout=5\r\nX-Secret: 1\r\n\
             Transfer-Encoding: chunked\r\nUpgrade: h2c\r\nTrailer: x-t\r\nProxy-Connection: close\r\nX-Kept: 1\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((head.framing, head.reusable), (Framing::Chunked, true));
        let names: Vec<&str> = head.parts.headers.keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["x-kept"]);

        let head = parse("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(head.reusable, "HTTP/1.0 with keep-alive");
        let head = parse("HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").unwrap().unwrap();
        assert!(!head.reusable, "close wins");
        let mut buf = bytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        let head = parse_response(&mut buf, &Method::HEAD, 1024).unwrap().unwrap();
        assert_eq!(head.framing, Framing::Empty);
        assert!(head.parts.headers.is_empty(), "no Transfer-Encoding on a HEAD answer either");
    }

    #[test]
    fn bad_heads_are_refused() {
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 101 Switching Protocols\r\n\r\n").is_err());
        assert!(parse("HTTP/1.1 20 OK\r\n\r\n").is_err());
        assert!(parse("SSH-2.0-OpenSSH\r\n\r\n").is_err());
        let big = format!("HTTP/1.1 200 OK\r\nX: {}\r\n", "a".repeat(2000));
        assert_eq!(parse_response(&mut bytes(&big), &Method::GET, 1024).unwrap_err(), HeadError::TooLarge(1024));
        let same = parse("HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n").unwrap().unwrap();
        assert_eq!(same.framing, Framing::Length(3));
    }
}
