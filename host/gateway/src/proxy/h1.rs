//! Our own HTTP/1.1 exchange with upstreams, for requests without a body (the
//! bulk of API traffic: GET, HEAD, DELETE, ...).
//!
//! hyper's client runs every upstream connection as a task of its own and
//! hands each request to it over a channel, and the response back over
//! another: two task wake-ups and a few allocations per request, about 40%
//! of the proxy's instructions on a keep-alive GET (measured with callgrind).
//! Here the request's own task writes the head (one `write`), reads the
//! response head (parsed by `httparse`) and its body then reads straight off
//! the socket. Requests with a body, upgrades (WebSocket) and h2 upstreams
//! stay on hyper's client (`pool.rs`, `pool_h2.rs`).

mod body;
mod conn;
mod head;

pub use body::H1Body;

use std::time::Instant;

use http::{Method, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::body::{RequestBody, ResponseBody};
use super::error::ProxyError;
use super::headers::Forwarded;
use super::pool::MAX_RESPONSE_HEAD;
use super::Failed;
use crate::upstream::{Target, Upstream};
use conn::{Conn, Home};

/// Whether `req` takes this path: no body, no upgrade. (The hop-by-hop
/// headers are gone by now: `Connection` is back only for an upgrade, and
/// `Transfer-Encoding` never.)
pub fn fits(req: &Request<RequestBody>, upgrading: bool) -> bool {
    http_body::Body::is_end_stream(req.body()) && !upgrading
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why reading a response head failed.
enum Attempt {
    /// The connection was dead before anything came back: for a pooled
    /// connection the upstream most likely closed it while it was idle.
    Stale(std::io::Error),
    /// A broken or truncated response.
    Broken(BoxError),
}

/// Sends a bodyless request to `target` and waits for the response head.
/// `forwarded` goes into the request head as it is written.
pub async fn send(
    upstream: &Upstream,
    target: &Target,
    req: Request<RequestBody>,
    forwarded: &Forwarded<'_>,
) -> Result<Response<ResponseBody>, Failed> {
    let timeouts = upstream.config.timeouts;
    let tls = upstream.config.tls.as_ref().map(|tls| (tls, target.authority.to_str().unwrap_or_default()));
    let address = target.address;
    let (parts, _) = req.into_parts();
    let wire = head::encode_request(&parts, forwarded);
    // A request on a pooled connection that the upstream had already closed
    // is tried again on another one, when that cannot repeat an effect: the
    // method is idempotent, or nothing at all could be written.
    let retry_safe = parts.method.is_idempotent();
    let back = |parts: &http::request::Parts| Box::new(Request::from_parts(parts.clone(), RequestBody::empty()));
    loop {
        // One clock read serves the idle check and, on a pooled connection,
        // the response deadline (a fresh one reads it again after connecting).
        let now = Instant::now();
        let (mut conn, reused) = match conn::take_at(address, timeouts.idle, now) {
            // A request that must not be repeated checks first that the idle
            // connection was not closed under it (an idempotent one is simply
            // tried again if it was).
            Some(conn) if !retry_safe && !conn.looks_alive() => continue,
            Some(conn) => (conn, true),
            // Boxed: connecting (TLS handshakes included) is the rare case, and
            // its state would otherwise bloat every request's future.
            None => match Box::pin(super::timed_connect(upstream, Conn::connect(address, timeouts.connect, tls, upstream.metrics()))).await {
                Ok(conn) => (conn, false),
                Err(e) => return Err(Failed::Connect(e, back(&parts))),
            },
        };
        if let Err(e) = write(&mut conn, &wire).await {
            if reused {
                continue;
            }
            return Err(Failed::Connect(e, back(&parts)));
        }
        let sent = if reused { now } else { Instant::now() };
        let deadline = tokio::time::Instant::from_std(deadline(sent, timeouts.response));
        let outcome = match tokio::time::timeout_at(deadline, read_head(&mut conn, &parts.method)).await {
            Ok(outcome) => outcome,
            Err(_) => {
                return Err(Failed::Other(ProxyError::Timeout {
                    upstream: upstream.name().to_owned(),
                    target: address,
                    after: timeouts.response,
                }))
            }
        };
        let reason: BoxError = match outcome {
            Ok(head) => {
                // `parse_response` left the hop-by-hop headers out.
                let parts = head.parts;
                let home = head.reusable.then_some(Home { target: address, keepalive: upstream.config.keepalive });
                let body = H1Body::new(conn, head.framing, home);
                return Ok(Response::from_parts(parts, ResponseBody::H1(body)));
            }
            Err(Attempt::Stale(_)) if reused && retry_safe => continue,
            Err(Attempt::Stale(e)) => Box::new(e),
            Err(Attempt::Broken(e)) => e,
        };
        return Err(Failed::Other(ProxyError::Upstream { upstream: upstream.name().to_owned(), target: address, reason }));
    }
}

/// `from + after`, without overflowing on an absurdly long timeout (the
/// config does not cap them): past 30 years it may as well be never.
fn deadline(from: Instant, after: std::time::Duration) -> Instant {
    const NEVER: std::time::Duration = std::time::Duration::from_secs(30 * 365 * 24 * 3600);
    from.checked_add(after.min(NEVER)).unwrap_or(from)
}

async fn write(conn: &mut Conn, wire: &[u8]) -> std::io::Result<()> {
    conn.io.write_all(wire).await?;
    conn.io.flush().await
}

/// Reads until a whole response head is in, skipping 1xx responses.
async fn read_head(conn: &mut Conn, method: &Method) -> Result<head::Head, Attempt> {
    let mut received = false;
    loop {
        if !conn.buf.is_empty() {
            received = true;
            match head::parse_response(&mut conn.buf, method, MAX_RESPONSE_HEAD) {
                Ok(Some(head)) => return Ok(head),
                Ok(None) => {}
                Err(e) => return Err(Attempt::Broken(Box::new(e))),
            }
        }
        conn.reserve();
        match conn.io.read_buf(&mut conn.buf).await {
            Ok(0) if !received => {
                return Err(Attempt::Stale(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                )))
            }
            Ok(0) => return Err(Attempt::Broken("connection closed in the middle of the response head".into())),
            Ok(_) => {}
            Err(e) if !received => return Err(Attempt::Stale(e)),
            Err(e) => return Err(Attempt::Broken(Box::new(e))),
        }
    }
}
