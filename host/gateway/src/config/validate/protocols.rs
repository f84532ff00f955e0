//! Listener protocols (http, https, tcp) and upstream protocols (http1, h2c, h2,
//! TLS): raw → validated. Certificate, key and CA files are read here, so a config
//! that validates can serve TLS.

use std::path::Path;

use rustls_pki_types::ServerName;

use super::super::protocols::*;
use super::super::raw::{RawListener, RawUpstream, RawUpstreamTls};
use super::super::{ListenerConfig, RouteConfig, UpstreamConfig};
use super::{invalid, Invalid};
use crate::tls;

pub fn listener(l: &RawListener, key: &str, upstreams: &[UpstreamConfig], base: &Path) -> Result<ListenerProtocol, Invalid> {
    let k = |field: &str| format!("{key}.{field}");
    let only = |field: &str, what: &str| invalid(k(field), format!("only applies to protocol = \"{what}\""));
    let protocol = l.protocol.as_str();
    if protocol != "https" && !l.certificates.is_empty() {
        return Err(only("certificates", "https"));
    }
    if protocol != "tcp" {
        if l.upstream.is_some() {
            return Err(only("upstream", "tcp"));
        }
        if l.proxy_protocol.is_some() {
            return Err(only("proxy_protocol", "tcp"));
        }
    }
    match protocol {
        "http" => Ok(ListenerProtocol::Http),
        "https" => https(l, key, base),
        "tcp" => {
            let name = l.upstream.as_deref().ok_or_else(|| {
                invalid(k("upstream"), "a tcp listener needs `upstream = \"<name>\"`: where its connections go")
            })?;
            let upstream = upstreams
                .iter()
                .position(|u| u.name == name)
                .ok_or_else(|| invalid(k("upstream"), format!("unknown upstream `{name}`")))?;
            let proxy_protocol = match l.proxy_protocol.as_deref() {
                None => None,
                Some("v1") => Some(ProxyProtocol::V1),
                Some("v2") => Some(ProxyProtocol::V2),
                Some(other) => return Err(invalid(k("proxy_protocol"), format!("`{other}` is not one of: v1, v2"))),
            };
            Ok(ListenerProtocol::Tcp(TcpProxy { upstream, proxy_protocol }))
        }
        other => Err(invalid(k("protocol"), format!("`{other}` is not one of: http, https, tcp"))),
    }
}

fn https(l: &RawListener, key: &str, base: &Path) -> Result<ListenerProtocol, Invalid> {
    if l.certificates.is_empty() {
        return Err(invalid(
            format!("{key}.certificates"),
            "an https listener needs at least one `{ cert = \"...pem\", key = \"...pem\" }`",
        ));
    }
    let mut loaded = Vec::with_capacity(l.certificates.len());
    for (i, c) in l.certificates.iter().enumerate() {
        let k = |field: &str| format!("{key}.certificates[{i}].{field}");
        if let Some(names) = &c.server_names {
            if let Some(bad) = names.iter().find(|n| !valid_name(n)) {
                return Err(invalid(k("server_names"), format!("`{bad}` is not a host name or `*.domain` pattern")));
            }
        }
        let cert = tls::load_cert(&base.join(&c.cert), &base.join(&c.key), c.server_names.as_deref())
            .map_err(|(field, reason)| invalid(k(field), reason))?;
        loaded.push(cert);
    }
    let expiries = loaded.iter().filter_map(|c| Some((c.names.clone(), c.not_after?))).collect();
    let config = tls::server_config(loaded).map_err(|reason| invalid(format!("{key}.certificates"), reason))?;
    Ok(ListenerProtocol::Https(ServerTls { config, expiries }))
}

fn valid_name(name: &str) -> bool {
    let name = name.strip_prefix("*.").unwrap_or(name);
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// A route cannot belong to a tcp listener: it has no requests to route.
pub fn check_routes(routes: &[RouteConfig], listeners: &[ListenerConfig]) -> Result<(), Invalid> {
    for route in routes {
        let listener = &listeners[route.listener];
        if listener.protocol.is_tcp() {
            return Err(invalid(
                crate::config::route_key(&route.label, "listener"),
                format!("`{}` is a tcp listener: it has no routes (its `upstream` says where bytes go)", listener.name),
            ));
        }
    }
    Ok(())
}

pub fn upstream(u: &RawUpstream, key: &str, base: &Path) -> Result<(UpstreamProtocol, Option<UpstreamTls>), Invalid> {
    let k = |field: &str| format!("{key}.{field}");
    let protocol = match u.protocol.as_deref().unwrap_or("http1") {
        "http1" => UpstreamProtocol::Http1,
        "h2c" => UpstreamProtocol::H2c,
        "h2" => UpstreamProtocol::H2,
        other => return Err(invalid(k("protocol"), format!("`{other}` is not one of: http1, h2c, h2"))),
    };
    let default_tls = RawUpstreamTls::default();
    let raw = match (&u.tls, protocol) {
        (Some(_), UpstreamProtocol::H2c) => {
            return Err(invalid(k("tls"), "h2c is HTTP/2 without TLS; use protocol = \"h2\" for HTTP/2 over TLS"))
        }
        (None, UpstreamProtocol::H2) => &default_tls,
        (None, _) => return Ok((protocol, None)),
        (Some(tls), _) => tls,
    };
    let alpn: &[&[u8]] = if protocol == UpstreamProtocol::H2 { &[b"h2"] } else { &[b"http/1.1"] };
    let ca_file = raw.ca_file.as_ref().map(|f| base.join(f));
    let client = tls::client_config(ca_file.as_deref(), alpn).map_err(|reason| {
        let field = if raw.ca_file.is_some() { "tls.ca_file" } else { "tls" };
        invalid(k(field), reason)
    })?;
    let server_name = raw
        .server_name
        .as_ref()
        .map(|name| {
            ServerName::try_from(name.clone())
                .map_err(|_| invalid(k("tls.server_name"), format!("`{name}` is not a DNS name or IP address")))
        })
        .transpose()?;
    Ok((protocol, Some(UpstreamTls { client, server_name })))
}
