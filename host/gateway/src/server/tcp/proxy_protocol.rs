//! The PROXY protocol header (HAProxy's spec, versions 1 and 2) that tells an
//! upstream who the client really is.

use std::net::{IpAddr, SocketAddr};

use crate::config::ProxyProtocol;

/// The v2 signature: `\r\n\r\n\0\r\nQUIT\n`.
const V2_SIGNATURE: [u8; 12] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A];

/// The header for a connection from `source` (the client) to `destination` (the
/// gateway's listening address). Mixed families are sent as IPv6 (v4-mapped).
pub fn header(version: ProxyProtocol, source: SocketAddr, destination: SocketAddr) -> Vec<u8> {
    let (src, dst) = match (source.ip(), destination.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => (IpAddr::V4(s), IpAddr::V4(d)),
        (s, d) => (IpAddr::V6(to_v6(s)), IpAddr::V6(to_v6(d))),
    };
    match version {
        ProxyProtocol::V1 => {
            let family = if src.is_ipv4() { "TCP4" } else { "TCP6" };
            format!("PROXY {family} {src} {dst} {} {}\r\n", source.port(), destination.port()).into_bytes()
        }
        ProxyProtocol::V2 => {
            let mut out = Vec::with_capacity(16 + 36);
            out.extend_from_slice(&V2_SIGNATURE);
            out.push(0x21); // version 2, command PROXY
            match (src, dst) {
                (IpAddr::V4(s), IpAddr::V4(d)) => {
                    out.push(0x11); // AF_INET, STREAM
                    out.extend_from_slice(&12u16.to_be_bytes());
                    out.extend_from_slice(&s.octets());
                    out.extend_from_slice(&d.octets());
                }
                (s, d) => {
                    out.push(0x21); // AF_INET6, STREAM
                    out.extend_from_slice(&36u16.to_be_bytes());
                    out.extend_from_slice(&to_v6(s).octets());
                    out.extend_from_slice(&to_v6(d).octets());
                }
            }
            out.extend_from_slice(&source.port().to_be_bytes());
            out.extend_from_slice(&destination.port().to_be_bytes());
            out
        }
    }
}

fn to_v6(ip: IpAddr) -> std::net::Ipv6Addr {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_text() {
        let h = header(ProxyProtocol::V1, "192.0.2.1:5000".parse().unwrap(), "198.51.100.2:6379".parse().unwrap());
        assert_eq!(h, b"PROXY TCP4 192.0.2.1 198.51.100.2 5000 6379\r\n");
        let h = header(ProxyProtocol::V1, "[2001:db8::1]:5000".parse().unwrap(), "127.0.0.1:80".parse().unwrap());
        assert_eq!(h, b"PROXY TCP6 2001:db8::1 ::ffff:127.0.0.1 5000 80\r\n");
    }

    #[test]
    fn v2_binary() {
        let h = header(ProxyProtocol::V2, "192.0.2.1:5000".parse().unwrap(), "198.51.100.2:6379".parse().unwrap());
        assert_eq!(&h[..12], &V2_SIGNATURE);
        assert_eq!(&h[12..16], &[0x21, 0x11, 0, 12]);
        assert_eq!(&h[16..20], &[192, 0, 2, 1]);
        assert_eq!(&h[20..24], &[198, 51, 100, 2]);
        assert_eq!(&h[24..], &[0x13, 0x88, 0x18, 0xEB]);
        let h = header(ProxyProtocol::V2, "[::1]:1".parse().unwrap(), "[::2]:2".parse().unwrap());
        assert_eq!(h.len(), 16 + 36);
        assert_eq!(&h[13..16], &[0x21, 0, 36]);
    }
}
