//! Body types on both sides of the proxy. Bodies stream frame by frame; nothing
//! here buffers a whole body.

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::Sleep;

use super::pool::Release;

/// What goes to the upstream: the client's body, streamed and counted against the
/// listener's limit, or nothing.
pub struct RequestBody {
    kind: Kind,
    /// Bytes the client may still send.
    remaining: u64,
    /// Where the body records why it failed, for the status the client gets
    /// (none for an empty body: nothing can fail).
    fault: Option<Arc<AtomicU8>>,
    /// The limit `remaining` started from: what was read is the difference.
    limit: u64,
    /// The route block the bytes read count into, when the body is dropped.
    counted: Option<Arc<crate::metrics::RouteMetrics>>,
}

enum Kind {
    Incoming { body: Incoming, first: Option<Frame<Bytes>>, stall: Stall },
    Empty,
}

/// The body timeout: the longest the client may send nothing while the body is
/// read. The timer exists only once a read had to wait (most bodies arrive with
/// their head and never need one) and is re-armed after each frame.
struct Stall {
    timeout: Duration,
    timer: Option<Pin<Box<Sleep>>>,
    /// A frame arrived since the timer was last armed.
    progressed: bool,
}

/// Why a request body stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    TooLarge,
    Malformed,
    /// The client sent nothing for the listener's `body_timeout`.
    Stalled,
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    #[error("request body: {0}")]
    Client(#[from] hyper::Error),
    #[error("request body: nothing received for {0:?}")]
    Stalled(Duration),
}

impl RequestBody {
    /// `timeout`: the listener's `body_timeout`, between reads.
    pub fn new(body: Incoming, limit: u64, timeout: Duration) -> RequestBody {
        let stall = Stall { timeout, timer: None, progressed: false };
        let kind = Kind::Incoming { body, first: None, stall };
        RequestBody { kind, remaining: limit, fault: Some(Arc::default()), limit, counted: None }
    }

    pub fn empty() -> RequestBody {
        RequestBody { kind: Kind::Empty, remaining: 0, fault: None, limit: 0, counted: None }
    }

    /// Counts the bytes read from the client into `route` (as request body
    /// bytes) once the body is dropped. An empty body has none to count.
    pub fn count_into(&mut self, route: &Arc<crate::metrics::RouteMetrics>) {
        if matches!(self.kind, Kind::Incoming { .. }) {
            self.counted = Some(route.clone());
        }
    }

    /// Reads the first frame now, before anything is sent upstream, so a body that
    /// is broken from its first bytes (a bad chunk size) or never starts is
    /// refused before any upstream (or an upstream's concurrency slot) is taken.
    pub async fn prefetch(&mut self) -> Result<(), BodyError> {
        if !matches!(self.kind, Kind::Incoming { first: None, .. }) {
            return Ok(());
        }
        let Some(frame) = std::future::poll_fn(|cx| self.poll_incoming(cx)).await else {
            return Ok(());
        };
        let frame = frame?;
        if let Kind::Incoming { first, .. } = &mut self.kind {
            *first = Some(frame);
        }
        Ok(())
    }

    /// The next frame of the client's body, counted against the limit and
    /// under the body timeout.
    fn poll_incoming(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let Kind::Incoming { body, stall, .. } = &mut self.kind else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        let frame = match polled {
            Poll::Pending => {
                let answered = self.fault.as_ref().is_some_and(|cell| cell.load(Ordering::Relaxed) & ANSWERED != 0);
                if !answered && stall.waited(cx).is_ready() {
                    let timeout = stall.timeout;
                    self.record(BodyFault::Stalled);
                    return Poll::Ready(Some(Err(BodyError::Stalled(timeout))));
                }
                return Poll::Pending;
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Ready(Some(Err(e))) => {
                self.record(BodyFault::Malformed);
                return Poll::Ready(Some(Err(BodyError::Client(e))));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        stall.progressed = true;
        let len = frame.data_ref().map_or(0, |d| d.len() as u64);
        if len > self.remaining {
            self.record(BodyFault::TooLarge);
            return Poll::Ready(Some(Err(BodyError::TooLarge(len))));
        }
        self.remaining -= len;
        Poll::Ready(Some(Ok(frame)))
    }

    /// A handle that tells, after the body was handed to the upstream connection,
    /// whether it failed and why.
    pub fn fault_probe(&self) -> FaultProbe {
        FaultProbe(self.fault.clone())
    }

    fn record(&self, fault: BodyFault) {
        if let Some(cell) = &self.fault {
            cell.fetch_or(fault.bit(), Ordering::Relaxed);
        }
    }

}

impl Drop for RequestBody {
    fn drop(&mut self) {
        if let Some(route) = self.counted.take() {
            route.bytes_in(self.limit - self.remaining);
        }
    }
}

impl Stall {
    /// Polls the timer, arming it (again) when the body waits for the first
    /// time or for the first time since a frame arrived.
    fn waited(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        match &mut self.timer {
            None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            Some(timer) if self.progressed => timer.as_mut().reset(deadline),
            Some(_) => {}
        }
        self.progressed = false;
        match &mut self.timer {
            Some(timer) => timer.as_mut().poll(cx),
            None => Poll::Pending,
        }
    }
}

/// Reads the fault a `RequestBody` recorded; tells it when the upstream answered.
pub struct FaultProbe(Option<Arc<AtomicU8>>);

/// The upstream's response head arrived: what is left of the request body
/// belongs to a streaming exchange (a gRPC bidirectional stream, an upload the
/// server answered early) and is no longer under the body timeout.
const ANSWERED: u8 = 0x80;

impl FaultProbe {
    pub fn get(&self) -> Option<BodyFault> {
        let bits = self.0.as_ref()?.load(Ordering::Relaxed);
        [BodyFault::TooLarge, BodyFault::Malformed, BodyFault::Stalled].into_iter().find(|f| bits & f.bit() != 0)
    }

    pub fn answered(&self) {
        if let Some(cell) = &self.0 {
            cell.fetch_or(ANSWERED, Ordering::Relaxed);
        }
    }
}

impl BodyFault {
    fn bit(self) -> u8 {
        match self {
            BodyFault::TooLarge => 1,
            BodyFault::Malformed => 2,
            BodyFault::Stalled => 4,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if let Kind::Incoming { first, .. } = &mut this.kind {
            if let Some(frame) = first.take() {
                return Poll::Ready(Some(Ok(frame)));
            }
        }
        this.poll_incoming(cx)
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Incoming { body, first, .. } => first.is_none() && body.is_end_stream(),
            Kind::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Incoming { body, first: None, .. } => body.size_hint(),
            Kind::Incoming { body, first: Some(frame), .. } => {
                let extra = frame.data_ref().map_or(0, |d| d.len() as u64);
                let inner = body.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(inner.lower() + extra);
                if let Some(upper) = inner.upper() {
                    hint.set_upper(upper + extra);
                }
                hint
            }
            Kind::Empty => SizeHint::with_exact(0),
        }
    }
}

/// What goes to the client: the upstream's body, streamed, or one the gateway made.
pub enum ResponseBody {
    Upstream(UpstreamBody),
    /// Read straight off an upstream HTTP/1.1 connection (`h1.rs`).
    H1(super::h1::H1Body),
    Full(Option<Bytes>),
    /// Bytes already read (for a plugin that then declined them), then the rest.
    Chained(Option<Bytes>, Box<ResponseBody>),
}

impl ResponseBody {
    pub fn full(bytes: impl Into<Bytes>) -> ResponseBody {
        ResponseBody::Full(Some(bytes.into()))
    }

    pub fn chained(head: Bytes, rest: ResponseBody) -> ResponseBody {
        ResponseBody::Chained(Some(head), Box::new(rest))
    }
}

/// Why a response body broke off (the client sees the connection or stream cut).
pub type ResponseBodyError = Box<dyn std::error::Error + Send + Sync>;

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = ResponseBodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, ResponseBodyError>>> {
        match self.get_mut() {
            ResponseBody::Upstream(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ResponseBody::H1(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            ResponseBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Chained(head, rest) => match head.take() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None => Pin::new(rest.as_mut()).poll_frame(cx),
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Upstream(body) => body.is_end_stream(),
            ResponseBody::H1(body) => body.is_end_stream(),
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::Chained(head, rest) => head.is_none() && rest.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Upstream(body) => body.size_hint(),
            ResponseBody::H1(body) => body.size_hint(),
            ResponseBody::Full(Some(bytes)) => SizeHint::with_exact(bytes.len() as u64),
            ResponseBody::Full(None) => SizeHint::with_exact(0),
            ResponseBody::Chained(..) => SizeHint::default(),
        }
    }
}

/// An upstream response body that hands its connection back to the pool once the
/// body has been read to the end. Dropped early (client went away), the
/// connection is closed instead: its state is unknown.
pub struct UpstreamBody {
    inner: Incoming,
    release: Option<Release>,
}

impl UpstreamBody {
    pub fn new(inner: Incoming, release: Release) -> UpstreamBody {
        UpstreamBody { inner, release: Some(release) }
    }

    /// A body whose connection is not pooled per request (HTTP/2: it is shared).
    pub fn unpooled(inner: Incoming) -> UpstreamBody {
        UpstreamBody { inner, release: None }
    }

    fn finish(&mut self) {
        if let Some(release) = self.release.take() {
            release.release();
        }
    }
}

impl Body for UpstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(None) => self.finish(),
            Poll::Ready(Some(Err(_))) => self.release = None,
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for UpstreamBody {
    fn drop(&mut self) {
        if self.inner.is_end_stream() {
            self.finish();
        }
    }
}
