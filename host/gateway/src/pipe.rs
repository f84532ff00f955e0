//! A byte pipe between two connections, for TCP listeners and upgraded
//! (WebSocket) connections: both directions at once, each with a bounded buffer so
//! a slow reader holds back its writer (backpressure); one side's end of input is
//! passed on as a half-close while the other direction keeps flowing; and the pipe
//! is closed when neither side has sent a byte for `idle`.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::server::now_ms;

/// Bytes buffered per direction.
const BUFFER: usize = 64 * 1024;

/// How a pipe ended.
#[derive(Debug)]
pub enum PipeEnd {
    /// Both sides closed their sending half: `(a → b bytes, b → a bytes)`.
    Closed(u64, u64),
    /// Nothing moved for the idle timeout.
    Idle,
    Failed(io::Error),
}

/// Copies `a → b` and `b → a` until both directions have ended, one fails, or
/// the pipe has been idle for `idle`.
pub async fn pipe<A, B>(a: A, b: B, idle: Duration) -> PipeEnd
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let last = Arc::new(AtomicU64::new(now_ms()));
    let mut a = Watched { inner: a, last: last.clone() };
    let mut b = Watched { inner: b, last: last.clone() };
    let copy = tokio::io::copy_bidirectional_with_sizes(&mut a, &mut b, BUFFER, BUFFER);
    tokio::pin!(copy);
    let idle_ms = idle.as_millis() as u64;
    loop {
        let due = last.load(Ordering::Relaxed) + idle_ms;
        let wait = Duration::from_millis(due.saturating_sub(now_ms()));
        tokio::select! {
            done = &mut copy => return match done {
                Ok((ab, ba)) => PipeEnd::Closed(ab, ba),
                Err(e) => PipeEnd::Failed(e),
            },
            _ = tokio::time::sleep(wait) => {
                if now_ms() >= last.load(Ordering::Relaxed) + idle_ms {
                    return PipeEnd::Idle;
                }
            }
        }
    }
}

/// A connection that notes when it last read something.
struct Watched<T> {
    inner: T,
    last: Arc<AtomicU64>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last.store(now_ms(), Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
