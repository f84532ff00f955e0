//! Keep-alive connections to upstream targets, one pool per worker thread.
//!
//! Each worker runs its own event loop, so a thread-local pool needs no lock and
//! keeps a connection on the core that made it. Idle connections are reused
//! newest first; past `keepalive` per target the extra ones are closed.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::RequestBody;
use crate::config::UpstreamTls;
use crate::tls::MaybeTls;

/// The largest upstream response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

pub type Sender = http1::SendRequest<RequestBody>;

struct Idle {
    sender: Sender,
    since: Instant,
}

thread_local! {
    /// Idle connections by target. A handful of targets per worker is the norm,
    /// so a linear scan beats hashing the address on every request.
    static IDLE: RefCell<Vec<(SocketAddr, Vec<Idle>)>> = const { RefCell::new(Vec::new()) };
}

/// A reusable idle connection to `target`, if this worker has one.
pub fn take(target: SocketAddr, max_idle_time: Duration) -> Option<Sender> {
    IDLE.with(|idle| {
        let mut idle = idle.borrow_mut();
        let (_, list) = idle.iter_mut().find(|(addr, _)| *addr == target)?;
        while let Some(entry) = list.pop() {
            if !entry.sender.is_closed() && entry.since.elapsed() < max_idle_time {
                return Some(entry.sender);
            }
        }
        None
    })
}

/// Opens a new connection (TCP_NODELAY, HTTP/1.1, TLS when `tls` says so with the
/// target's `authority` as the default server name) within `timeout`.
pub async fn connect(target: SocketAddr, timeout: Duration, tls: Option<(&UpstreamTls, &str)>) -> io::Result<Sender> {
    let handshake = async {
        let stream = TcpStream::connect(target).await?;
        stream.set_nodelay(true)?;
        let io = match tls {
            Some((tls, authority)) => crate::tls::connect(stream, tls, authority).await?,
            None => MaybeTls::Plain(stream),
        };
        let (sender, connection) = http1::Builder::new()
            // A response head larger than this is refused (502), not buffered.
            .max_header_size(MAX_RESPONSE_HEAD)
            .handshake(TokioIo::new(io))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            // With upgrades: after a `101` the connection is handed to the relay.
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(%target, error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    };
    match tokio::time::timeout(timeout, handshake).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("no connection within {timeout:?}"))),
    }
}

/// A connection lent to one request, given back when its response body ends.
pub struct Release {
    pub target: SocketAddr,
    pub sender: Sender,
    pub keepalive: usize,
}

impl Release {
    pub fn release(self) {
        if self.sender.is_closed() || self.keepalive == 0 {
            return;
        }
        IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let at = match idle.iter().position(|(addr, _)| *addr == self.target) {
                Some(at) => at,
                None => {
                    idle.push((self.target, Vec::new()));
                    idle.len() - 1
                }
            };
            let list = &mut idle[at].1;
            if list.len() < self.keepalive {
                list.push(Idle { sender: self.sender, since: Instant::now() });
            }
        });
    }
}
