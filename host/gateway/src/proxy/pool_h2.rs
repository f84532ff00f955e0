//! HTTP/2 towards upstream targets (`protocol = "h2c"` or `"h2"`): one shared
//! connection per target and worker, every request a stream on it. hyper's
//! `SendRequest` is a cheap clone of a handle to that connection; the
//! connection's own task multiplexes the streams and applies flow control (each
//! stream's window bounds what is buffered, so a slow reader holds back its sender).

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::header::{self, HeaderValue};
use http::uri::{PathAndQuery, Scheme};
use http::{Request, Response, Uri, Version};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};

use super::body::{RequestBody, ResponseBody, UpstreamBody};
use super::error::ProxyError;
use super::pool::MAX_RESPONSE_HEAD;
use super::{dial, exchange_failed, grpc, headers, Failed};
use crate::config::UpstreamProtocol;
use crate::upstream::{Target, Upstream};

pub type Sender = http2::SendRequest<RequestBody>;

struct Shared {
    target: SocketAddr,
    sender: Sender,
    last_used: Instant,
}

thread_local! {
    /// This worker's connection to each h2 target.
    static CONNECTIONS: RefCell<Vec<Shared>> = const { RefCell::new(Vec::new()) };
}

/// This worker's open connection to `target`, unless closed or idle too long.
fn take(target: SocketAddr, max_idle: Duration) -> Option<Sender> {
    CONNECTIONS.with(|all| {
        let mut all = all.borrow_mut();
        let at = all.iter().position(|c| c.target == target)?;
        let shared = &mut all[at];
        if shared.sender.is_closed() || shared.last_used.elapsed() >= max_idle {
            all.swap_remove(at);
            return None;
        }
        shared.last_used = Instant::now();
        Some(shared.sender.clone())
    })
}

fn keep(target: SocketAddr, sender: &Sender) {
    CONNECTIONS.with(|all| {
        let mut all = all.borrow_mut();
        let fresh = Shared { target, sender: sender.clone(), last_used: Instant::now() };
        match all.iter_mut().find(|c| c.target == target) {
            Some(existing) => *existing = fresh,
            None => all.push(fresh),
        }
    });
}

fn forget(target: SocketAddr) {
    CONNECTIONS.with(|all| all.borrow_mut().retain(|c| c.target != target));
}

/// Opens an HTTP/2 connection (TLS with ALPN h2 for `h2`) within the connect timeout.
async fn connect(upstream: &Upstream, target: &Target) -> io::Result<Sender> {
    let config = &upstream.config;
    let address = target.address;
    let handshake = async {
        let tls = config.tls.as_ref().map(|tls| (tls, target.authority.to_str().unwrap_or_default()));
        let io = dial::stream(address, tls).await?;
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .max_header_list_size(MAX_RESPONSE_HEAD as u32)
            .initial_stream_window_size(1024 * 1024)
            .initial_connection_window_size(4 * 1024 * 1024)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(10))
            .handshake(TokioIo::new(io))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(target = %address, error = %e, "upstream h2 connection ended");
            }
        });
        Ok(sender)
    };
    dial::within(config.timeouts.connect, handshake).await
}

/// Sends `req` as a stream on this worker's connection to `target` (opening one
/// if needed) and waits for the response head: within the upstream's response
/// timeout, or a gRPC call's `grpc-timeout` when sooner.
pub(super) async fn send(upstream: &Upstream, target: &Target, mut req: Request<RequestBody>) -> Result<Response<ResponseBody>, Failed> {
    let config = &upstream.config;
    let address = target.address;
    let deadline = grpc::response_deadline(req.headers(), config.timeouts.response);
    // HTTP/2 names the host in `:authority`, and every request needs `:scheme`.
    let authority = req.headers_mut().remove(header::HOST).unwrap_or_else(|| target.authority.clone());
    let scheme = if config.protocol == UpstreamProtocol::H2 { Scheme::HTTPS } else { Scheme::HTTP };
    *req.uri_mut() = absolute(scheme, &authority, req.uri().path_and_query())
        .map_err(|_| Failed::Other(ProxyError::BadRequest("invalid host for HTTP/2")))?;
    *req.version_mut() = Version::HTTP_2;
    let fault = req.body().fault_probe();
    loop {
        let (mut sender, reused) = match take(address, config.timeouts.idle) {
            Some(sender) => (sender, true),
            None => match super::timed_connect(upstream, connect(upstream, target)).await {
                Ok(sender) => {
                    keep(address, &sender);
                    (sender, false)
                }
                Err(e) => return Err(Failed::Connect(e, Box::new(req))),
            },
        };
        if sender.ready().await.is_err() {
            forget(address);
            if reused {
                continue;
            }
            let e = io::Error::new(io::ErrorKind::ConnectionAborted, "connection closed before use");
            return Err(Failed::Connect(e, Box::new(req)));
        }
        let response = match tokio::time::timeout(deadline, sender.try_send_request(req)).await {
            Ok(Ok(response)) => response,
            Ok(Err(mut e)) => match e.take_message() {
                Some(back) if reused => {
                    forget(address);
                    req = back;
                    continue;
                }
                Some(back) => return Err(Failed::Connect(io::Error::other(e.into_error()), Box::new(back))),
                None => return Err(Failed::Other(exchange_failed(upstream, address, &fault, e.into_error()))),
            },
            Err(_) => {
                return Err(Failed::Other(ProxyError::Timeout {
                    upstream: upstream.name().to_owned(),
                    target: address,
                    after: deadline,
                }))
            }
        };
        fault.answered();
        let (mut parts, body) = response.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers);
        return Ok(Response::from_parts(parts, ResponseBody::Upstream(UpstreamBody::unpooled(body))));
    }
}

fn absolute(scheme: Scheme, authority: &HeaderValue, path: Option<&PathAndQuery>) -> Result<Uri, http::Error> {
    Uri::builder()
        .scheme(scheme)
        .authority(authority.as_bytes())
        .path_and_query(path.cloned().unwrap_or_else(|| PathAndQuery::from_static("/")))
        .build()
}
