//! The HTTP reverse proxy: route → pick a target → forward → stream back.

mod access;
mod authority;
mod body;
mod degrade;
mod dial;
mod error;
mod h1;
mod idle;
mod inbound;
pub mod grpc;
mod meter;
mod middleware;
pub mod headers;
mod pool;
mod pool_h2;
mod upgrade;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use http::header::{self, HeaderValue};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, Uri, Version};
use hyper::body::Incoming;

pub use body::{BodyError, BodyFault, RequestBody, ResponseBody, UpstreamBody};
pub use error::ProxyError;

use crate::balance::PickContext;
use authority::Authority;
use crate::config::HostHeader;
use crate::metrics::{Outcome, RouteMetrics, Source};
use meter::Meter;
use crate::request_target;
use crate::router;
use crate::state::State;
use crate::telemetry;
use crate::upstream::{Target, Upstream};

/// Who is on the other end of a downstream connection (made once per connection).
#[derive(Clone, Debug)]
pub struct Peer {
    pub addr: SocketAddr,
    /// `addr`'s ip as a header value, for `X-Forwarded-For` and `X-Real-IP`.
    pub ip_value: HeaderValue,
    /// Index of the listener that accepted the connection.
    pub listener: usize,
    /// `http` or `https`, for `X-Forwarded-Proto`.
    pub scheme: &'static str,
    /// The listener's request body limit.
    pub max_body_bytes: u64,
    /// The listener's idle timeout, also for upgraded (WebSocket) connections.
    pub idle_timeout: std::time::Duration,
    /// The listener's body timeout: the longest a request body may send nothing.
    pub body_timeout: std::time::Duration,
}

/// Serves one request; never fails: errors become responses. Also returns,
/// when metrics are on and the response body's length is not known yet, the
/// route block its body's bytes are to be counted into as they are sent.
pub async fn handle(state: Arc<State>, peer: Arc<Peer>, req: Request<Incoming>) -> (Response<ResponseBody>, Option<Arc<RouteMetrics>>) {
    let grpc = grpc::is_grpc(req.headers());
    let head = req.method() == Method::HEAD;
    let mut meter = Meter::new(&state);
    if let Some(tracer) = &state.tracer {
        meter.trace = tracer.start(req.method(), req.uri(), req.headers());
    }
    if !state.access_log {
        let response = match forward(&state, &peer, req, grpc, &mut meter).await {
            Ok((response, target)) => {
                if target.is_some() {
                    meter.source = Source::Upstream;
                }
                response
            }
            Err(e) => {
                meter.source = meter::source_of(&e);
                error_response(e, grpc)
            }
        };
        let response = if head { without_content(response) } else { response };
        let counting = meter.finish(&state, peer.listener, &response);
        traced(&state, &peer, &mut meter, &response);
        return (response, counting);
    }
    let started = meter.started.unwrap_or_else(wasmgate_metrics::clock::now_ns);
    let method = req.method().clone();
    let uri = req.uri().clone();
    let trace = match meter.trace.as_deref() {
        Some(trace) => Some(trace.trace_hex()),
        None => access::trace_id(req.headers()),
    };
    let mut answered_by = None;
    let (response, target) = match forward(&state, &peer, req, grpc, &mut meter).await {
        Ok((response, target)) => {
            if target.is_some() {
                meter.source = Source::Upstream;
            }
            (response, target)
        }
        Err(e) => {
            meter.source = meter::source_of(&e);
            answered_by = access::answered_by(&e);
            (error_response(e, grpc), None)
        }
    };
    let response = if head { without_content(response) } else { response };
    let counting = meter.finish(&state, peer.listener, &response);
    traced(&state, &peer, &mut meter, &response);
    tracing::info!(
        target: "access",
        client = %peer.addr.ip(),
        method = %method,
        path = %access::bounded(uri.path_and_query().map(PathAndQuery::as_str).unwrap_or("/")),
        status = response.status().as_u16(),
        upstream = %target.map_or_else(|| "-".to_owned(), |t| t.to_string()),
        answered_by = %answered_by.as_deref().unwrap_or("-"),
        duration_us = wasmgate_metrics::clock::since_ns(started) / 1000,
        trace_id = trace.as_deref().unwrap_or("-"),
    );
    (response, counting)
}

/// Hands a sampled request's spans to the exporter.
fn traced(state: &State, peer: &Peer, meter: &mut Meter<'_>, response: &Response<ResponseBody>) {
    if let (Some(tracer), Some(trace)) = (&state.tracer, meter.trace.take()) {
        let end = telemetry::End {
            status: response.status().as_u16(),
            listener: &state.listener_name(peer.listener),
            client: peer.addr.ip(),
            from_upstream: meter.source == Source::Upstream,
        };
        tracer.finish(trace, end);
    }
}

/// An answer to HEAD has no content (RFC 9110 §9.3.2), whatever the upstream
/// (hyper's HTTP/2 server sends one) or the gateway's own error put in it:
/// over HTTP/2 it would go out as DATA frames, a protocol error for the
/// client. The length a GET would get stays in Content-Length. A body that
/// is already at its end is left alone, so that an upstream connection
/// still goes back to its pool.
fn without_content(response: Response<ResponseBody>) -> Response<ResponseBody> {
    if http_body::Body::is_end_stream(response.body()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    if let Some(length) = http_body::Body::size_hint(&body).exact() {
        parts.headers.entry(header::CONTENT_LENGTH).or_insert_with(|| HeaderValue::from(length));
    }
    Response::from_parts(parts, ResponseBody::Full(None))
}

/// The body to stream upstream; refuses a declared length over the limit up
/// front and writes the length canonically (`005` → `5`).
fn request_body(parts: &mut http::request::Parts, body: Incoming, peer: &Peer) -> Result<RequestBody, ProxyError> {
    if let Some(length) = parts.headers.get(header::CONTENT_LENGTH) {
        let text = length.as_bytes();
        match length.to_str().ok().and_then(|l| l.parse::<u64>().ok()) {
            Some(n) if n > peer.max_body_bytes => return Err(ProxyError::PayloadTooLarge { limit: peer.max_body_bytes }),
            Some(n) if text.len() > 1 && text[0] == b'0' => {
                parts.headers.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
            }
            Some(_) => {}
            None => return Err(ProxyError::BadRequest("invalid Content-Length")),
        }
    }
    Ok(if http_body::Body::is_end_stream(&body) {
        RequestBody::empty()
    } else {
        RequestBody::new(body, peer.max_body_bytes, peer.body_timeout)
    })
}

/// `path?query` as a request target.
fn origin_form(path: &str, query: Option<&str>) -> Result<Uri, ProxyError> {
    let target = match query {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    Uri::try_from(target).map_err(|_| ProxyError::BadRequest("invalid path"))
}

fn body_error(e: BodyError) -> ProxyError {
    match e {
        BodyError::TooLarge(_) => ProxyError::PayloadTooLarge { limit: 0 },
        BodyError::Client(_) => ProxyError::BadRequest("malformed request body"),
        BodyError::Stalled(_) => ProxyError::BodyTimeout,
    }
}

/// The gateway's answer for `e`; a gRPC call gets it the gRPC way (`grpc.rs`).
fn error_response(e: ProxyError, grpc: bool) -> Response<ResponseBody> {
    if e.is_upstream() {
        tracing::warn!(error = %e, "upstream request failed");
    } else {
        tracing::debug!(error = %e, "request refused");
    }
    if grpc {
        match e {
            ProxyError::Answered(answer) => return grpc::plugin_answer(*answer.0),
            ProxyError::Unavailable { .. } => {}
            e => return grpc::error_response(&e),
        }
    }
    e.into_response()
}

/// Routes, runs the plugins and exchanges with the upstream. The target that
/// answered, if one did, is for the access log. `meter` learns the route and
/// the time spent on upstreams.
async fn forward<'s>(
    state: &'s State,
    peer: &Peer,
    req: Request<Incoming>,
    grpc: bool,
    meter: &mut Meter<'s>,
) -> Result<(Response<ResponseBody>, Option<SocketAddr>), ProxyError> {
    let (mut parts, body) = req.into_parts();
    // One authority: routed by, sent as `Host` and as `X-Forwarded-Host`.
    let authority = authority::of_request(&parts)?;
    if let Some(authority) = authority.as_ref().filter(|a| !a.in_host) {
        parts.headers.insert(header::HOST, authority.value.clone());
    }
    let mut body = request_body(&mut parts, body, peer)?;

    // One path: normalised once, then routed by, seen by the plugins and
    // forwarded (a backend that normalises finds nothing left to resolve).
    let rules = state.path_rules(peer.listener);
    match request_target::normalize_path(parts.uri.path(), &rules) {
        Ok(Cow::Borrowed(_)) => {}
        Ok(Cow::Owned(path)) => parts.uri = origin_form(&path, parts.uri.query())?,
        Err(e) => return Err(ProxyError::BadRequest(e.reason())),
    }
    let router = state.router(peer.listener);
    let host = authority.as_ref().map(Authority::host);
    let route = router.find(host, parts.uri.path()).ok_or(ProxyError::NoRoute)?;
    if let Some(metrics) = &route.metrics {
        meter.route = Some(metrics);
        body.count_into(metrics);
    }
    if let Some(trace) = meter.trace.as_deref_mut() {
        trace.routed(&route.name);
    }
    // A servlet container reads `/a;x/b` as `/a/b`, nginx as it is: when the
    // two readings take different routes, no route's policy fits both.
    if let Some(plain) = request_target::without_parameters(parts.uri.path()) {
        if !router.find(host, &plain).is_some_and(|other| std::ptr::eq(other, route)) {
            return Err(ProxyError::BadRequest("path parameters change the route"));
        }
    }
    let host_value = authority.map(|a| a.value);
    let upstream: &Upstream = &route.upstream;
    let inbound = inbound::settle(&mut parts.headers, &route.identity_headers)?;
    // The client's hop-by-hop headers describe its connection, not the request:
    // they go before the plugins see it, so that a client cannot have a header
    // a plugin adds (a consumer id, say) removed by naming it in `Connection`.
    let hop_by_hop = headers::HopByHop::scan(&parts.headers);
    let upgrade = if hop_by_hop.upgrade() {
        upgrade::requested(parts.version, &parts.headers).and_then(|asked| upgrade::allowed(&asked, &route.upgrades))
    } else {
        None
    };
    headers::remove_found(&mut parts.headers, hop_by_hop);
    // Plugins see the request as the client sent it and may change it (or answer).
    let mut phase = middleware::request(route, state, peer, &mut parts, meter.trace.as_deref_mut())?;
    if phase.is_some() {
        // Connection-level headers a plugin set are not forwarded either.
        headers::remove_hop_by_hop(&mut parts.headers);
    }
    // From here on, a failure is still a response that goes back through
    // the plugins that ran (CORS or request-id headers on a 502, say).
    // A labeled block, not an async one: a nested future would be moved
    // around (memcpy) on every request, with or without plugins.
    let exchanged: Result<(Response<ResponseBody>, SocketAddr), ProxyError> = 'exchange: {
        let original = parts.uri.path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
        parts.uri = if route.strip_prefix {
            match origin_form(&router::strip(&route.path_prefix, original.path()), original.query()) {
                Ok(uri) => uri,
                Err(e) => break 'exchange Err(e),
            }
        } else {
            Uri::from(original.clone())
        };
        parts.version = Version::HTTP_11;
        // An upgrade (WebSocket) takes this same path; only what follows a 101 differs.
        let mut client_upgrade = None;
        if let Some(value) = upgrade {
            upgrade::restore(&mut parts.headers, value);
            client_upgrade = parts.extensions.remove::<hyper::upgrade::OnUpgrade>();
        }
        let forwarded = headers::Forwarded { client: &peer.ip_value, proto: peer.scheme, host: host_value.as_ref() };
        if inbound.forwarded {
            forwarded.extend_rfc7239(&mut parts.headers);
        }
        if let (HostHeader::Pass, Some(host)) = (&upstream.config.host_header, &host_value) {
            if !parts.headers.contains_key(header::HOST) {
                parts.headers.insert(header::HOST, host.clone());
            }
        }
        // The first bytes of a body arrive before an upstream slot is taken: a
        // client that never sends its body holds no slot, and is answered 408
        // at the body timeout. (Not for gRPC: a stream's first message may
        // come only after the server's.)
        if !http_body::Body::is_end_stream(&body) && !grpc {
            if let Err(e) = Box::pin(body.prefetch()).await {
                break 'exchange Err(body_error(e));
            }
        }
        if let Some(trace) = meter.trace.as_deref() {
            trace.propagate(&mut parts.headers);
        }
        let Some(_slot) = upstream.enter() else {
            meter::unsent(upstream, Outcome::Overloaded);
            break 'exchange Err(degrade::unavailable(route, &parts.headers, "is at its concurrency limit"));
        };
        let targets = upstream.targets();
        let pick = PickContext { uri: original.as_str(), client_ip: peer.addr.ip(), headers: &parts.headers };
        let mut tried = Vec::new();
        let mut chosen = targets.pick(&pick, &tried);
        let mut req = Request::from_parts(parts, body);
        // Our own HTTP/1.1 exchange writes the X-Forwarded-* headers as it encodes
        // the head; the other paths get them in the header map.
        let direct = !upstream.config.protocol.is_h2() && h1::fits(&req, client_upgrade.is_some());
        if !direct {
            forwarded.apply(req.headers_mut());
        }
        loop {
            let Some(index) = chosen else {
                let why = if targets.targets.is_empty() { Outcome::NoTarget } else { Outcome::BreakerOpen };
                meter::unsent(upstream, why);
                break 'exchange Err(degrade::unavailable(route, req.headers(), "has no available target"));
            };
            let target = &targets.targets[index];
            match &upstream.config.host_header {
                // HTTP/1.0 without Host: the route's host if it names one, else the target's.
                HostHeader::Pass if host_value.is_none() && !req.headers().contains_key(header::HOST) => {
                    let host = match &route.host {
                        Some(crate::config::HostPattern::Exact(name)) => HeaderValue::from_str(name).ok(),
                        _ => None,
                    };
                    req.headers_mut().insert(header::HOST, host.unwrap_or_else(|| target.authority.clone()));
                }
                HostHeader::Pass => {}
                HostHeader::Target => {
                    req.headers_mut().insert(header::HOST, target.authority.clone());
                }
                HostHeader::Rewrite(value) => {
                    req.headers_mut().insert(header::HOST, value.clone());
                }
            }
            // The paths off the common one are boxed: an async fn's state is as
            // large as its largest await, and every request would otherwise move
            // (memcpy) that much state around.
            let attempt = meter.attempt();
            let outcome = if upstream.config.protocol.is_h2() {
                Box::pin(pool_h2::send(upstream, target, req)).await
            } else if direct {
                h1::send(upstream, target, req, &forwarded).await
            } else {
                Box::pin(send(upstream, target, req)).await
            };
            let waited = meter.attempted(attempt, upstream, target);
            target.state.report(!matches!(&outcome, Ok(response) if !response.status().is_server_error()));
            meter::attempted(upstream, target, &outcome, waited);
            match outcome {
                Ok(response) => {
                    let response = match phase.take() {
                        Some(phase) => middleware::response(&route.chain, phase, response, meter.trace.as_deref_mut()).await,
                        None => response,
                    };
                    let response = match client_upgrade.take() {
                        Some(client) => upgrade::relay(response, client, peer.idle_timeout),
                        None => response,
                    };
                    break 'exchange Ok((response, target.address));
                }
                Err(Failed::Connect(reason, back)) => {
                    tried.push(index);
                    if tried.len() > upstream.config.retries as usize {
                        break 'exchange Err(ProxyError::Connect {
                            upstream: upstream.name().to_owned(),
                            target: target.address,
                            reason,
                        });
                    }
                    tracing::warn!(upstream = upstream.name(), target = %target.address, error = %reason, "connect failed, trying another target");
                    let pick = PickContext { uri: original.as_str(), client_ip: peer.addr.ip(), headers: back.headers() };
                    chosen = targets.pick(&pick, &tried);
                    if chosen.is_none() {
                        break 'exchange Err(ProxyError::Connect { upstream: upstream.name().to_owned(), target: target.address, reason });
                    }
                    req = *back;
                }
                Err(Failed::Other(e)) => break 'exchange Err(e),
            }
        }
    };
    match exchanged {
        Ok((response, target)) => Ok((response, Some(target))),
        Err(e) => match phase.take() {
            // Boxed: the error path's future stays out of every request's state.
            Some(phase) => {
                meter.source = meter::source_of(&e);
                let response = error_response(e, grpc);
                Ok((Box::pin(middleware::response(&route.chain, phase, response, meter.trace.as_deref_mut())).await, None))
            }
            None => Err(e),
        },
    }
}

/// What a request that hyper's client failed after sending becomes: the
/// client's own body fault when there was one (413/400), else the upstream's.
fn exchange_failed(upstream: &Upstream, target: SocketAddr, fault: &body::FaultProbe, e: hyper::Error) -> ProxyError {
    match fault.get() {
        Some(BodyFault::TooLarge) => ProxyError::PayloadTooLarge { limit: 0 },
        Some(BodyFault::Malformed) => ProxyError::BadRequest("malformed request body"),
        Some(BodyFault::Stalled) => ProxyError::BodyTimeout,
        None => ProxyError::Upstream { upstream: upstream.name().to_owned(), target, reason: Box::new(e) },
    }
}

/// Opens a new upstream connection, timing it for the upstream's metrics.
async fn timed_connect<T>(upstream: &Upstream, connect: impl std::future::Future<Output = std::io::Result<T>>) -> std::io::Result<T> {
    let Some(metrics) = upstream.metrics() else { return connect.await };
    let started = Instant::now();
    let connected = connect.await;
    if connected.is_ok() {
        metrics.connected(started.elapsed());
    }
    connected
}

enum Failed {
    /// Nothing was sent: the request comes back and may go to another target.
    Connect(std::io::Error, Box<Request<RequestBody>>),
    Other(ProxyError),
}

/// Sends `req` to `target` over a pooled or new connection and waits for the
/// response head. A pooled connection that turns out dead before the request was
/// written is dropped and the request tried on the next one.
async fn send(upstream: &Upstream, target: &Target, mut req: Request<RequestBody>) -> Result<Response<ResponseBody>, Failed> {
    let timeouts = upstream.config.timeouts;
    let tls = upstream.config.tls.as_ref().map(|tls| (tls, target.authority.to_str().unwrap_or_default()));
    let target = target.address;
    let fault = req.body().fault_probe();
    loop {
        let (mut pooled, reused) = match pool::take(target, timeouts.idle) {
            Some(pooled) => (pooled, true),
            None => match timed_connect(upstream, pool::connect(target, timeouts.connect, tls, upstream.metrics())).await {
                Ok(pooled) => (pooled, false),
                Err(e) => return Err(Failed::Connect(e, Box::new(req))),
            },
        };
        if pooled.sender.ready().await.is_err() {
            if reused {
                continue;
            }
            let e = std::io::Error::new(std::io::ErrorKind::ConnectionAborted, "connection closed before use");
            return Err(Failed::Connect(e, Box::new(req)));
        }
        let response = match tokio::time::timeout(timeouts.response, pooled.sender.try_send_request(req)).await {
            Ok(Ok(response)) => response,
            Ok(Err(mut e)) => match e.take_message() {
                Some(back) if reused => {
                    req = back;
                    continue;
                }
                Some(back) => {
                    return Err(Failed::Connect(std::io::Error::other(e.into_error()), Box::new(back)))
                }
                None => return Err(Failed::Other(exchange_failed(upstream, target, &fault, e.into_error()))),
            },
            Err(_) => {
                return Err(Failed::Other(ProxyError::Timeout {
                    upstream: upstream.name().to_owned(),
                    target,
                    after: timeouts.response,
                }))
            }
        };
        fault.answered();
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            return Ok(upgrade::switching(response, pooled.sender));
        }
        let (mut parts, body) = response.into_parts();
        headers::remove_hop_by_hop(&mut parts.headers);
        let release = pool::Release { target, pooled, keepalive: upstream.config.keepalive };
        return Ok(Response::from_parts(parts, ResponseBody::Upstream(UpstreamBody::new(body, release))));
    }
}
