//! Keep-alive connections to upstream targets, one pool per worker thread.
//!
//! Thread-local (`idle.rs`): idle connections are reused newest first; past
//! `keepalive` per target the extra ones are closed.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

use super::body::RequestBody;
use super::dial;
use super::idle::{Gauged, Idle, PoolGauge};
use crate::metrics::UpstreamMetrics;
use crate::config::UpstreamTls;

/// The largest upstream response head accepted.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

pub type Sender = http1::SendRequest<RequestBody>;

/// A connection's request sender with its pool gauge.
pub struct Pooled {
    pub sender: Sender,
    pub gauge: PoolGauge,
}

impl Gauged for Pooled {
    fn gauge(&mut self) -> &mut PoolGauge {
        &mut self.gauge
    }
}

thread_local! {
    static IDLE: Idle<Pooled> = const { Idle::new() };
}

/// A reusable idle connection to `target`, if this worker has one.
pub fn take(target: SocketAddr, max_idle_time: Duration) -> Option<Pooled> {
    IDLE.with(|idle| idle.take(target, max_idle_time, std::time::Instant::now(), |pooled| !pooled.sender.is_closed()))
}

/// Opens a new connection (TCP_NODELAY, HTTP/1.1, TLS when `tls` says so with the
/// target's `authority` as the default server name) within `timeout`,
/// counted in the pool gauges of `metrics`.
pub async fn connect(
    target: SocketAddr,
    timeout: Duration,
    tls: Option<(&UpstreamTls, &str)>,
    metrics: Option<&Arc<UpstreamMetrics>>,
) -> io::Result<Pooled> {
    let handshake = async {
        let io = dial::stream(target, tls).await?;
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
    let sender = dial::within(timeout, handshake).await?;
    Ok(Pooled { sender, gauge: PoolGauge::opened(metrics) })
}

/// A connection lent to one request, given back when its response body ends.
pub struct Release {
    pub target: SocketAddr,
    pub pooled: Pooled,
    pub keepalive: usize,
}

impl Release {
    pub fn release(self) {
        if self.pooled.sender.is_closed() || self.keepalive == 0 {
            return;
        }
        IDLE.with(|idle| idle.put(self.target, self.pooled, self.keepalive));
    }
}
