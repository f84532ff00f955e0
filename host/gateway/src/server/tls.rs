//! `protocol = "https"` listeners: the TLS handshake (bounded by the listener's
//! `header_timeout`), then the connection is served like a plain HTTP one, over
//! [`MaybeTls`]. ALPN picks h2 or http/1.1; hyper's auto builder then sees the h2
//! preface or an HTTP/1.1 request as on a plain listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsStream};

use crate::tls::MaybeTls;

/// Runs the TLS handshake; `None` (logged) when it fails or takes longer than `timeout`.
pub async fn handshake(
    config: Arc<rustls::ServerConfig>,
    stream: TcpStream,
    client: SocketAddr,
    timeout: Duration,
) -> Option<MaybeTls> {
    match tokio::time::timeout(timeout, TlsAcceptor::from(config).accept(stream)).await {
        Ok(Ok(tls)) => Some(MaybeTls::Tls(Box::new(TlsStream::Server(tls)))),
        Ok(Err(e)) => {
            tracing::debug!(%client, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%client, ?timeout, "TLS handshake too slow: closing");
            None
        }
    }
}
