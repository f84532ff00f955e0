//! Opening a connection to an upstream target, shared by the three upstream
//! clients (our HTTP/1.1 exchange, hyper's HTTP/1.1 and HTTP/2 clients).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::config::UpstreamTls;
use crate::tls::MaybeTls;

/// TCP with TCP_NODELAY, then TLS when `tls` says so (with the target's
/// `authority` as the default server name).
pub async fn stream(target: SocketAddr, tls: Option<(&UpstreamTls, &str)>) -> io::Result<MaybeTls> {
    let stream = TcpStream::connect(target).await?;
    stream.set_nodelay(true)?;
    match tls {
        Some((tls, authority)) => crate::tls::connect(stream, tls, authority).await,
        None => Ok(MaybeTls::Plain(stream)),
    }
}

/// Runs a whole connection set-up (dial, TLS, protocol handshake) within the
/// connect timeout.
pub async fn within<T>(timeout: Duration, setup: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match tokio::time::timeout(timeout, setup).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {timeout:?}"))),
    }
}
