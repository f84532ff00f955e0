//! What a listener speaks (HTTP, HTTPS, raw TCP) and how the gateway talks to an
//! upstream (HTTP/1.1, h2c, h2; TLS).

use std::sync::Arc;

use rustls_pki_types::ServerName;

#[derive(Debug, Clone)]
pub enum ListenerProtocol {
    /// HTTP/1.1 and HTTP/2 with prior knowledge (h2c) on the same port.
    Http,
    /// TLS, then HTTP/1.1 or HTTP/2 as ALPN agreed.
    Https(ServerTls),
    /// A byte pipe to one upstream; no HTTP, no routes.
    Tcp(TcpProxy),
}

impl ListenerProtocol {
    pub fn is_tcp(&self) -> bool {
        matches!(self, ListenerProtocol::Tcp(_))
    }
}

/// A listener's TLS settings, with its certificates loaded.
#[derive(Debug, Clone)]
pub struct ServerTls {
    pub config: Arc<rustls::ServerConfig>,
    /// Each certificate's server names and expiry (Unix seconds), for `/metrics`.
    pub expiries: Vec<(Vec<String>, i64)>,
}

#[derive(Debug, Clone)]
pub struct TcpProxy {
    /// Index into `Config::upstreams`.
    pub upstream: usize,
    /// Sent to the upstream first on each connection, so it sees the real client.
    pub proxy_protocol: Option<ProxyProtocol>,
}

/// The HAProxy PROXY protocol header version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyProtocol {
    /// The text form: `PROXY TCP4 src dst sport dport\r\n`.
    V1,
    /// The binary form.
    V2,
}

/// What the gateway speaks to an upstream's targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UpstreamProtocol {
    /// HTTP/1.1, a pooled connection per request in flight (TLS if `tls` is set).
    #[default]
    Http1,
    /// HTTP/2 without TLS (prior knowledge); many streams share one connection.
    H2c,
    /// HTTP/2 over TLS (ALPN h2).
    H2,
}

impl UpstreamProtocol {
    pub fn is_h2(self) -> bool {
        matches!(self, UpstreamProtocol::H2c | UpstreamProtocol::H2)
    }
}

/// TLS towards an upstream's targets.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    /// Trusts the configured CA bundle; offers ALPN h2 or http/1.1 per the protocol.
    pub client: Arc<rustls::ClientConfig>,
    /// The name to send (SNI) and verify; `None`: each target's host.
    pub server_name: Option<ServerName<'static>>,
}
