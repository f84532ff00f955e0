//! Upstream HTTP/1.1 connections the request task drives itself, and this
//! worker's pool of idle ones.
//!
//! A connection here is just the stream and its read buffer: no task of its
//! own, no channel between the request and the socket. The request that owns
//! it writes the head, reads the response head, and its response body reads
//! the rest; when that body ends cleanly the connection goes back to the pool
//! of the worker thread it lives on (`proxy/idle.rs`).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;

use crate::config::UpstreamTls;
use crate::proxy::dial;
use crate::metrics::UpstreamMetrics;
use crate::proxy::idle::{Gauged, Idle, PoolGauge};
use crate::tls::MaybeTls;

/// Read buffer size of a fresh connection; response heads are usually far
/// smaller, bodies are read in pieces of about this size.
const READ_BUFFER: usize = 16 * 1024;

pub struct Conn {
    pub io: MaybeTls,
    /// Bytes read from the upstream and not yet consumed.
    pub buf: BytesMut,
    pub gauge: PoolGauge,
}

impl Gauged for Conn {
    fn gauge(&mut self) -> &mut PoolGauge {
        &mut self.gauge
    }
}

impl Conn {
    /// Opens a connection (TCP_NODELAY; TLS when `tls` says so, with the
    /// target's `authority` as the default server name) within `timeout`,
    /// counted in the pool gauges of `metrics`.
    pub async fn connect(
        target: SocketAddr,
        timeout: Duration,
        tls: Option<(&UpstreamTls, &str)>,
        metrics: Option<&Arc<UpstreamMetrics>>,
    ) -> io::Result<Conn> {
        let io = dial::within(timeout, dial::stream(target, tls)).await?;
        Ok(Conn { io, buf: BytesMut::with_capacity(READ_BUFFER), gauge: PoolGauge::opened(metrics) })
    }

    /// Whether an idle connection still looks usable: the upstream has neither
    /// closed it nor sent anything unasked (a TLS close_notify, a stray
    /// response). Costs one non-blocking `recv(MSG_PEEK)`.
    pub fn looks_alive(&self) -> bool {
        let tcp = match &self.io {
            MaybeTls::Plain(tcp) => tcp,
            MaybeTls::Tls(tls) => tls.get_ref().0,
        };
        let mut probe = [0u8; 1];
        let mut probe = tokio::io::ReadBuf::new(&mut probe);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        matches!(tcp.poll_peek(&mut cx, &mut probe), std::task::Poll::Pending)
    }

    /// Makes room for one more read.
    pub fn reserve(&mut self) {
        if self.buf.capacity() - self.buf.len() < READ_BUFFER / 4 {
            self.buf.reserve(READ_BUFFER);
        }
    }
}

thread_local! {
    static IDLE: Idle<Conn> = const { Idle::new() };
}

/// The newest idle connection to `target` that has not been idle for
/// `max_idle_time`, if this worker has one.
#[cfg(test)]
pub fn take(target: SocketAddr, max_idle_time: Duration) -> Option<Conn> {
    take_at(target, max_idle_time, Instant::now())
}

/// `take`, with the time read once by the caller (who needs it anyway).
pub fn take_at(target: SocketAddr, max_idle_time: Duration, now: Instant) -> Option<Conn> {
    IDLE.with(|idle| idle.take(target, max_idle_time, now, |_| true))
}

/// Where a connection goes when its response is complete.
pub struct Home {
    pub target: SocketAddr,
    /// Most idle connections kept for the target (0: none).
    pub keepalive: usize,
}

impl Home {
    /// Keeps `conn` for the next request to the same target, if there is room
    /// and nothing unread is left on it (bytes after a complete response mean
    /// the upstream broke framing: such a connection is closed).
    pub fn give_back(&self, conn: Conn) {
        if self.keepalive == 0 || !conn.buf.is_empty() {
            return;
        }
        IDLE.with(|idle| idle.put(self.target, conn, self.keepalive));
    }
}
