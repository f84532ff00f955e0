//! Header rewriting between client and upstream.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The fixed hop-by-hop headers (and `Connection`, which names more).
const FIXED: [&HeaderName; 6] =
    [&KEEP_ALIVE, &PROXY_CONNECTION, &header::TE, &header::TRAILER, &header::TRANSFER_ENCODING, &header::UPGRADE];

/// Whether `name` is one of the fixed hop-by-hop headers (`Connection`, which
/// names more, aside).
pub fn is_fixed_hop_by_hop(name: &HeaderName) -> bool {
    FIXED.contains(&name)
}

/// Which hop-by-hop headers a message has: found in one pass over its header
/// names, which also answers whether an upgrade is asked for without looking
/// it up again.
#[derive(Debug, Default, Clone, Copy)]
pub struct HopByHop {
    present: [bool; 6],
    connection: bool,
}

impl HopByHop {
    pub fn scan(headers: &HeaderMap) -> HopByHop {
        let mut found = HopByHop::default();
        for name in headers.keys() {
            if name == header::CONNECTION {
                found.connection = true;
            } else if let Some(i) = FIXED.iter().position(|fixed| name == *fixed) {
                found.present[i] = true;
            }
        }
        found
    }

    pub fn upgrade(&self) -> bool {
        self.present[5]
    }
}

/// Removes the headers that describe one connection, not the message (RFC 9110
/// §7.6.1): the fixed set, and every header that `Connection` names. One pass over
/// the names finds out whether there is anything to do (usually not).
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let found = HopByHop::scan(headers);
    remove_found(headers, found);
}

/// `remove_hop_by_hop` for a message already scanned.
pub fn remove_found(headers: &mut HeaderMap, found: HopByHop) {
    let HopByHop { present, connection } = found;
    if connection {
        // `keep-alive` and `close` are the usual values and name no header we
        // would forward anyway (Keep-Alive is in the fixed set).
        let named: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|list| list.split(','))
            .map(str::trim)
            .filter(|name| !name.eq_ignore_ascii_case("keep-alive") && !name.eq_ignore_ascii_case("close"))
            .filter_map(|name| HeaderName::from_bytes(name.as_bytes()).ok())
            .collect();
        headers.remove(header::CONNECTION);
        for name in named {
            headers.remove(name);
        }
    }
    for (name, present) in FIXED.iter().zip(present) {
        if present && !(*name == header::TE && te_is_trailers(headers)) {
            headers.remove(*name);
        }
    }
}

/// `TE: trailers` is kept: gRPC servers require it, and it only says the client
/// takes trailers, which the gateway passes on (any other `TE` is dropped).
fn te_is_trailers(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::TE).iter();
    let kept = values.next().is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"trailers"));
    kept && values.next().is_none()
}

/// The client's address as a header value, made once per connection.
pub fn ip_value(ip: IpAddr) -> HeaderValue {
    let mut text = [0u8; 48];
    HeaderValue::from_str(format_ip(ip, &mut text)).unwrap_or_else(|_| HeaderValue::from_static("unknown"))
}

/// What tells the upstream who the client is: `X-Forwarded-For` appended to
/// (the chain it already has is kept), `X-Real-IP`, `X-Forwarded-Proto` and
/// `X-Forwarded-Host` set. Either put into a header map (`apply`) or, on our
/// own HTTP/1.1 path, written straight into the request head while it is
/// encoded (`skips` and `write`): four map insertions were about 5% of the
/// proxy's instructions per request.
pub struct Forwarded<'a> {
    /// The client's address as made by `ip_value`.
    pub client: &'a HeaderValue,
    pub proto: &'static str,
    /// The host the client asked for, when it named one.
    pub host: Option<&'a HeaderValue>,
}

impl Forwarded<'_> {
    pub fn apply(&self, headers: &mut HeaderMap) {
        let forwarded_for = match headers.get(&X_FORWARDED_FOR) {
            None => Ok(self.client.clone()),
            Some(_) => {
                let mut chain = Vec::with_capacity(64);
                self.chain(headers, &mut chain);
                HeaderValue::from_bytes(&chain)
            }
        };
        if let Ok(value) = forwarded_for {
            headers.insert(X_FORWARDED_FOR.clone(), value);
        }
        headers.insert(X_REAL_IP.clone(), self.client.clone());
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(self.proto));
        if let Some(host) = self.host {
            headers.insert(X_FORWARDED_HOST.clone(), host.clone());
        }
    }

    /// Appends the gateway's element to the client's `Forwarded` chain (RFC
    /// 7239), like `X-Forwarded-For`: the last element is always the gateway's
    /// view of the client. Only called when the client sent one.
    pub fn extend_rfc7239(&self, headers: &mut HeaderMap) {
        let mut chain = Vec::with_capacity(96);
        for value in headers.get_all(header::FORWARDED) {
            chain.extend_from_slice(value.as_bytes());
            chain.extend_from_slice(b", ");
        }
        chain.extend_from_slice(b"for=");
        let client = self.client.as_bytes();
        // An IPv6 address is written `"[::1]"` (a quoted string: `:` is not a token character).
        if client.contains(&b':') {
            chain.extend_from_slice(b"\"[");
            chain.extend_from_slice(client);
            chain.extend_from_slice(b"]\"");
        } else {
            chain.extend_from_slice(client);
        }
        if let Some(host) = self.host {
            chain.extend_from_slice(b";host=\"");
            chain.extend_from_slice(host.as_bytes());
            chain.push(b'"');
        }
        chain.extend_from_slice(b";proto=");
        chain.extend_from_slice(self.proto.as_bytes());
        if let Ok(value) = HeaderValue::from_bytes(&chain) {
            headers.insert(header::FORWARDED, value);
        }
    }

    /// Whether the header `name` of the client's request is left out of the
    /// head because `write` puts its own in.
    pub fn skips(&self, name: &HeaderName) -> bool {
        *name == X_FORWARDED_FOR
            || *name == X_REAL_IP
            || *name == X_FORWARDED_PROTO
            || (*name == X_FORWARDED_HOST && self.host.is_some())
    }

    /// Whether `name` is `X-Forwarded-For` (whose values `write` needs).
    pub fn is_chain(name: &HeaderName) -> bool {
        *name == X_FORWARDED_FOR
    }

    /// The header lines, as HTTP/1.1 puts them on the wire; `chain`: the
    /// request's headers when it has an `X-Forwarded-For` to append to.
    pub fn write(&self, chain: Option<&HeaderMap>, out: &mut Vec<u8>) {
        out.extend_from_slice(b"x-forwarded-for: ");
        match chain {
            Some(headers) => self.chain(headers, out),
            None => out.extend_from_slice(self.client.as_bytes()),
        }
        out.extend_from_slice(b"\r\nx-real-ip: ");
        out.extend_from_slice(self.client.as_bytes());
        out.extend_from_slice(b"\r\nx-forwarded-proto: ");
        out.extend_from_slice(self.proto.as_bytes());
        out.extend_from_slice(b"\r\n");
        if let Some(host) = self.host {
            out.extend_from_slice(b"x-forwarded-host: ");
            out.extend_from_slice(host.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The `X-Forwarded-For` chain the request came with, then the client.
    fn chain(&self, headers: &HeaderMap, out: &mut Vec<u8>) {
        for value in headers.get_all(&X_FORWARDED_FOR) {
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(self.client.as_bytes());
    }
}

fn format_ip(ip: IpAddr, buf: &mut [u8; 48]) -> &str {
    use std::io::Write;
    let mut cursor = std::io::Cursor::new(&mut buf[..]);
    let _ = write!(cursor, "{ip}");
    let len = cursor.position() as usize;
    std::str::from_utf8(&buf[..len]).unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_named_headers_go_too() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert(header::TRANSFER_ENCODING, "chunked".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn te_trailers_is_kept_for_grpc() {
        let mut h = HeaderMap::new();
        h.insert(header::TE, "trailers".parse().unwrap());
        remove_hop_by_hop(&mut h);
        assert_eq!(h[header::TE], "trailers");
        h.insert(header::TE, "gzip, trailers".parse().unwrap());
        remove_hop_by_hop(&mut h);
        assert!(!h.contains_key(header::TE));
    }

    #[test]
    fn forwarded_for_chain_is_kept() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "1.1.1.1".parse().unwrap());
        h.append("x-forwarded-for", "2.2.2.2, 3.3.3.3".parse().unwrap());
        h.insert("x-real-ip", "6.6.6.6".parse().unwrap());
        let (client, host) = (ip_value("127.0.0.1".parse().unwrap()), "a.test".parse().unwrap());
        let forwarded = Forwarded { client: &client, proto: "http", host: Some(&host) };
        let mut wire = Vec::new();
        forwarded.write(Some(&h), &mut wire);
        assert!(h.keys().all(|name| forwarded.skips(name)));
        forwarded.apply(&mut h);
        assert_eq!(h["x-forwarded-for"], "1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1");
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h["x-real-ip"], "127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "a.test");
        // The same headers, written straight to the wire.
        assert_eq!(
            String::from_utf8(wire).unwrap(),
            "x-forwarded-for: 1.1.1.1, 2.2.2.2, 3.3.3.3, 127.0.0.1\r\nx-real-ip: 127.0.0.1\r\n\
             x-forwarded-proto: http\r\nx-forwarded-host: a.test\r\n"
        );
    }

    #[test]
    fn the_forwarded_chain_gets_the_gateways_element() {
        let (client, host) = (ip_value("::1".parse().unwrap()), "a.test:8080".parse().unwrap());
        let forwarded = Forwarded { client: &client, proto: "https", host: Some(&host) };
        let mut h = HeaderMap::new();
        h.append(header::FORWARDED, "for=1.2.3.4".parse().unwrap());
        h.append(header::FORWARDED, "for=5.6.7.8;proto=http".parse().unwrap());
        forwarded.extend_rfc7239(&mut h);
        assert_eq!(h.get_all(header::FORWARDED).iter().count(), 1);
        assert_eq!(h[header::FORWARDED], r#"for=1.2.3.4, for=5.6.7.8;proto=http, for="[::1]";host="a.test:8080";proto=https"#);
    }

    #[test]
    fn a_forwarded_host_from_the_client_stays_when_there_is_no_host() {
        let client = ip_value("::1".parse().unwrap());
        let forwarded = Forwarded { client: &client, proto: "https", host: None };
        assert!(!forwarded.skips(&HeaderName::from_static("x-forwarded-host")));
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-host", "kept".parse().unwrap());
        forwarded.apply(&mut h);
        assert_eq!(h["x-forwarded-host"], "kept");
        assert_eq!(h["x-forwarded-for"], "::1");
    }
}
