//! Body types on both sides of the proxy. Bodies stream frame by frame; nothing
//! here buffers a whole body.

use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::ready;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

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
}

enum Kind {
    Incoming { body: Incoming, first: Option<Frame<Bytes>> },
    Empty,
}

/// Why a request body stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    TooLarge,
    Malformed,
}

#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than {0} bytes")]
    TooLarge(u64),
    #[error("request body: {0}")]
    Client(#[from] hyper::Error),
}

impl RequestBody {
    pub fn new(body: Incoming, limit: u64) -> RequestBody {
        RequestBody { kind: Kind::Incoming { body, first: None }, remaining: limit, fault: Some(Arc::default()) }
    }

    pub fn empty() -> RequestBody {
        RequestBody { kind: Kind::Empty, remaining: 0, fault: None }
    }

    /// Reads the first frame now, before anything is sent upstream, so a body that
    /// is broken from its first bytes (a bad chunk size) is refused before any
    /// upstream sees the request.
    pub async fn prefetch(&mut self) -> Result<(), BodyError> {
        let Kind::Incoming { body, first: None } = &mut self.kind else {
            return Ok(());
        };
        let Some(frame) = body.frame().await else {
            return Ok(());
        };
        let frame = match frame {
            Ok(frame) => frame,
            Err(e) => {
                self.record(BodyFault::Malformed);
                return Err(BodyError::Client(e));
            }
        };
        let len = frame.data_ref().map_or(0, |d| d.len() as u64);
        if len > self.remaining {
            self.record(BodyFault::TooLarge);
            return Err(BodyError::TooLarge(len));
        }
        self.remaining -= len;
        if let Kind::Incoming { first, .. } = &mut self.kind {
            *first = Some(frame);
        }
        Ok(())
    }

    /// A handle that tells, after the body was handed to the upstream connection,
    /// whether it failed and why.
    pub fn fault_probe(&self) -> FaultProbe {
        FaultProbe(self.fault.clone())
    }

    fn record(&self, fault: BodyFault) {
        if let Some(cell) = &self.fault {
            cell.store(fault as u8 + 1, Ordering::Relaxed);
        }
    }
}

/// Reads the fault a `RequestBody` recorded.
pub struct FaultProbe(Option<Arc<AtomicU8>>);

impl FaultProbe {
    pub fn get(&self) -> Option<BodyFault> {
        match self.0.as_ref()?.load(Ordering::Relaxed) {
            1 => Some(BodyFault::TooLarge),
            2 => Some(BodyFault::Malformed),
            _ => None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        let Kind::Incoming { body, first } = &mut this.kind else {
            return Poll::Ready(None);
        };
        if let Some(frame) = first.take() {
            return Poll::Ready(Some(Ok(frame)));
        }
        match ready!(Pin::new(body).poll_frame(cx)) {
            None => Poll::Ready(None),
            Some(Err(e)) => {
                this.record(BodyFault::Malformed);
                Poll::Ready(Some(Err(BodyError::Client(e))))
            }
            Some(Ok(frame)) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                if len > this.remaining {
                    this.record(BodyFault::TooLarge);
                    return Poll::Ready(Some(Err(BodyError::TooLarge(len))));
                }
                this.remaining -= len;
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Incoming { body, first } => first.is_none() && body.is_end_stream(),
            Kind::Empty => true,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Incoming { body, first: None } => body.size_hint(),
            Kind::Incoming { body, first: Some(frame) } => {
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
