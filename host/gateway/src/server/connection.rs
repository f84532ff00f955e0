//! One downstream connection: serving it, and closing it when the client is too
//! slow to send a request head, idle past the limit, or when we shut down.
//!
//! hyper's own header-read timer also runs while a keep-alive connection merely
//! waits for its next request, which would make every idle connection close after
//! `header_timeout`. So the timing lives here instead, fed by the strict HTTP/1
//! reader (which sees where each head starts and ends) and by the service (which
//! counts requests in flight until their response body is done).

use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::watch;

use hyper_util::server::graceful::GracefulConnection;

use crate::config::Limits;

/// Milliseconds since the process started: cheap to store in an atomic.
pub fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64 + 1
}

/// What the watchdog needs to know about a connection, written from the reader
/// and the service, read by the watchdog.
#[derive(Debug)]
pub struct Activity {
    /// When the request head now being read began (0: none is being read).
    head_started: AtomicU64,
    /// Requests whose response has not been fully sent.
    in_flight: AtomicUsize,
    /// When the connection last became idle (no head being read, nothing in flight).
    idle_since: AtomicU64,
    /// The connection switched protocols (we answered `101`, or 2xx to `CONNECT`):
    /// the strict HTTP/1 reader stops watching its bytes.
    upgraded: AtomicBool,
    /// The listener's metrics, which count the requests in flight (none: not
    /// a listener's connection, or metrics are off).
    listener: Option<Arc<crate::metrics::ListenerMetrics>>,
}

impl Activity {
    /// A fresh connection counts as reading its first head: a client that connects
    /// and sends nothing gets `header_timeout`, not `idle_timeout`.
    pub fn new() -> Arc<Activity> {
        Activity::counted(None)
    }

    /// A listener's connection, whose requests in flight `listener` counts.
    pub fn counted(listener: Option<Arc<crate::metrics::ListenerMetrics>>) -> Arc<Activity> {
        let now = now_ms();
        Arc::new(Activity {
            head_started: AtomicU64::new(now),
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(now),
            upgraded: AtomicBool::new(false),
            listener,
        })
    }

    /// The service is answering with a protocol switch. Called before the answer
    /// is written, so before the client can send a byte of the new protocol.
    pub fn switch(&self) {
        self.upgraded.store(true, Ordering::Release);
    }

    pub fn switched(&self) -> bool {
        self.upgraded.load(Ordering::Acquire)
    }

    /// A request head began to arrive; keeps the earlier start if one is running.
    pub fn head_started(&self) {
        let _ = self.head_started.compare_exchange(0, now_ms(), Ordering::Relaxed, Ordering::Relaxed);
    }

    pub fn head_finished(&self) {
        self.head_started.store(0, Ordering::Relaxed);
    }

    /// Marks a request in flight until the returned guard is dropped.
    pub fn request(self: &Arc<Self>) -> InFlight {
        self.head_started.store(0, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        if let Some(listener) = &self.listener {
            listener.request_started();
        }
        InFlight(self.clone())
    }

    /// When the connection is next due for a check, and what would be due then.
    fn deadline(&self, limits: &Limits) -> (u64, Due) {
        let head = self.head_started.load(Ordering::Relaxed);
        if head != 0 {
            return (head + limits.header_timeout.as_millis() as u64, Due::HeaderTimeout);
        }
        if self.in_flight.load(Ordering::Relaxed) == 0 {
            return (self.idle_since.load(Ordering::Relaxed) + limits.idle_timeout.as_millis() as u64, Due::Idle);
        }
        (u64::MAX, Due::Nothing)
    }
}

pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(listener) = &self.0.listener {
            listener.request_finished();
        }
        if self.0.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            self.0.idle_since.store(now_ms(), Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Due {
    HeaderTimeout,
    Idle,
    Nothing,
}

/// Drives `connection` to the end, closing it on header timeout (at once: the
/// client has not sent a request we could answer), on idle timeout and on
/// shutdown (gracefully: requests in flight finish).
pub async fn serve<C: GracefulConnection>(
    connection: C,
    activity: Arc<Activity>,
    limits: Limits,
    mut shutdown: watch::Receiver<bool>,
) -> Option<C::Output> {
    let mut connection = pin!(connection);
    let mut closing = *shutdown.borrow();
    if closing {
        connection.as_mut().graceful_shutdown();
    }
    // Nothing wakes us when a request starts or ends, so never sleep past the
    // shorter timeout: a deadline that moved earlier is seen at most that late.
    let longest = limits.header_timeout.min(limits.idle_timeout);
    let next = |activity: &Activity| {
        let (due_at, due) = activity.deadline(&limits);
        let wait = Duration::from_millis(due_at.saturating_sub(now_ms())).min(longest);
        (tokio::time::Instant::now() + wait, due)
    };
    let (at, mut due) = next(&activity);
    let mut timer = pin!(tokio::time::sleep_until(at));
    let mut changed = pin!(shutdown.changed());
    // The connection wakes the task for every read and write; the shutdown
    // signal and the timer go through `alarm`, and are polled only when it rang.
    let alarm = Arc::new(Alarm { rang: AtomicBool::new(true), task: Mutex::new(None) });
    let alarm_waker = Waker::from(alarm.clone());
    let mut task: Option<Waker> = None;
    std::future::poll_fn(|cx| loop {
        if let Poll::Ready(output) = connection.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        if !task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
            let waker = cx.waker().clone();
            *alarm.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker.clone());
            task = Some(waker);
        }
        if !alarm.rang.load(Ordering::Acquire) || !alarm.rang.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let mut alarm_cx = Context::from_waker(&alarm_waker);
        if !closing && changed.as_mut().poll(&mut alarm_cx).is_ready() {
            closing = true;
            connection.as_mut().graceful_shutdown();
        } else if (!closing || due == Due::HeaderTimeout) && timer.as_mut().poll(&mut alarm_cx).is_ready() {
            let (now_due_at, now_due) = activity.deadline(&limits);
            // Otherwise something happened meanwhile.
            if now_due == due && now_due_at <= now_ms() {
                match due {
                    Due::HeaderTimeout => {
                        tracing::debug!(timeout = ?limits.header_timeout, "request head too slow: closing");
                        return Poll::Ready(None);
                    }
                    Due::Idle => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                    Due::Nothing => {}
                }
            }
        } else {
            return Poll::Pending;
        }
        // Re-armed: poll the connection again (it may be closing now), and
        // the timer, to register it.
        let (at, now_due) = next(&activity);
        due = now_due;
        timer.as_mut().reset(at);
        alarm.rang.store(true, Ordering::Release);
    })
    .await
}

/// Wakes a connection's task for its watchdog (`serve`), noting that the
/// shutdown signal or the timer is due a poll.
struct Alarm {
    rang: AtomicBool,
    /// The connection's task.
    task: Mutex<Option<Waker>>,
}

impl Wake for Alarm {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.rang.store(true, Ordering::Release);
        if let Some(task) = &*self.task.lock().unwrap_or_else(PoisonError::into_inner) {
            task.wake_by_ref();
        }
    }
}

/// A response body that keeps its request counted as in flight until it is
/// done, and counts the bytes it sends when asked to.
pub struct Tracked<B> {
    body: B,
    _in_flight: InFlight,
    sent: Option<Sent>,
}

/// Bytes of a body sent so far, added to a route's count when it is dropped.
struct Sent {
    route: Arc<crate::metrics::RouteMetrics>,
    bytes: u64,
}

impl Drop for Sent {
    fn drop(&mut self) {
        self.route.bytes_out(self.bytes);
    }
}

impl<B> Tracked<B> {
    pub fn new(body: B, in_flight: InFlight) -> Tracked<B> {
        Tracked { body, _in_flight: in_flight, sent: None }
    }

    /// Counts the body's bytes into `route`, when given one.
    pub fn counting(mut self, route: Option<Arc<crate::metrics::RouteMetrics>>) -> Tracked<B> {
        self.sent = route.map(|route| Sent { route, bytes: 0 });
        self
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Tracked<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let (Some(sent), Poll::Ready(Some(Ok(frame)))) = (&mut self.sent, &polled) {
            sent.bytes += frame.data_ref().map_or(0, |data| data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
