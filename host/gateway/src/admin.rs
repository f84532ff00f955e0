//! The admin listener: status JSON (`/status/...`), `/metrics`, and the actions
//! (`POST /reload`, draining a target, `PUT /log-level`). It runs on the control
//! thread, never on a request worker, and is bounded like a listener.
//!
//! With a token configured (required off loopback), every request must carry
//! `Authorization: Bearer <token>`; any other gets `401` and nothing more.
//! `status` reads, `actions` change things, `auth` checks the token,
//! `dashboard` serves the live page (`GET /` from a browser) and its `/events`.

mod actions;
mod auth;
mod dashboard;
mod status;
#[cfg(test)]
mod tests;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::accept;
use crate::config::{AdminLimits, Limits};
use crate::reload::Reloader;
use crate::server::connection::{self, Activity, Tracked};
use crate::server::strict_http1::StrictHttp1;
use crate::state::State;

pub use status::upstreams;

/// An admin answer: a whole body, or the dashboard's event stream.
type AdminBody = Either<Full<Bytes>, dashboard::Events>;

/// What the admin endpoints read and act on.
pub struct Admin {
    /// The live state: upstreams to show and drain, what `/metrics` sums.
    pub state: Arc<ArcSwap<State>>,
    /// The running config (token, what to show) and the way to reload it.
    pub reloader: Arc<Reloader>,
    /// Each listener's name and bound address (port 0 resolved), as reloads change them.
    pub listeners: crate::server::Addresses,
    pub limits: AdminLimits,
}

/// Serves the admin listener until `shutdown`. Its connections are bounded like a
/// listener's: `max_connections` at once (more wait in the accept backlog, which
/// costs this process no file descriptor), a header timeout and an idle timeout,
/// so admin clients cannot take the descriptors the listeners need.
pub async fn serve(listener: std::net::TcpListener, admin: Arc<Admin>, mut shutdown: watch::Receiver<bool>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "cannot register the admin listener");
            return;
        }
    };
    // The timing of `connection::serve`; the other fields do not apply here.
    let timing = Limits {
        header_timeout: admin.limits.header_timeout,
        idle_timeout: admin.limits.idle_timeout,
        max_connections: admin.limits.max_connections,
        ..Limits::default()
    };
    let permits = Arc::new(Semaphore::new(admin.limits.max_connections));
    let errors = accept::ErrorLog::new("admin");
    let mut backoff = accept::backoff();
    loop {
        let permit = tokio::select! {
            biased;
            _ = crate::control::stopped(&mut shutdown) => return,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let (stream, client) = tokio::select! {
            biased;
            _ = crate::control::stopped(&mut shutdown) => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    errors.failed(&e);
                    tokio::select! {
                        _ = crate::control::stopped(&mut shutdown) => return,
                        _ = tokio::time::sleep(backoff.next()) => continue,
                    }
                }
            },
        };
        backoff.reset();
        let activity = Activity::new();
        let service = {
            let (admin, activity, shutdown) = (admin.clone(), activity.clone(), shutdown.clone());
            service_fn(move |req| {
                let in_flight = activity.request();
                let (admin, shutdown) = (admin.clone(), shutdown.clone());
                async move {
                    let response = admin.answer(req, client, shutdown).await;
                    Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight)))
                }
            })
        };
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(StrictHttp1::new(stream, activity.clone()));
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                // Header and idle timing is done by `connection::serve`.
                .header_read_timeout(None)
                .max_buf_size(timing.max_header_bytes)
                .serve_connection(io, service);
            let _ = connection::serve(connection, activity, timing, shutdown).await;
            drop(permit);
        });
    }
}

/// The admin API's endpoints, as the request path names them.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    /// The dashboard page for a browser (`Accept: text/html`), else the list of endpoints.
    Index,
    /// The list of endpoints as JSON, whatever the `Accept`.
    List,
    /// The dashboard's Server-Sent Events.
    Events,
    Routes,
    Upstreams,
    Plugins,
    Config,
    Metrics,
    Reload,
    /// `POST /upstreams/{name}/targets/{address}/drain` (`drained`) or `/undrain`.
    Drain { upstream: String, target: String, drained: bool },
    LogLevel,
}

/// Every endpoint, for `GET /` and the docs.
const INDEX: &[&str] = &[
    "GET / (the dashboard for a browser, else this list)",
    "GET /status (this list)",
    "GET /events (the dashboard's Server-Sent Events)",
    "GET /status/routes",
    "GET /status/upstreams",
    "GET /status/plugins",
    "GET /status/config",
    "GET /metrics",
    "POST /reload",
    "POST /upstreams/{name}/targets/{address}/drain",
    "POST /upstreams/{name}/targets/{address}/undrain",
    "GET|PUT|DELETE /log-level",
];

impl Endpoint {
    /// The endpoint a path names; its `{name}` and `{address}` segments percent-decoded.
    fn of(path: &str) -> Option<Endpoint> {
        let segments: Vec<&str> = path.strip_prefix('/')?.split('/').collect();
        Some(match segments.as_slice() {
            [""] => Endpoint::Index,
            ["status"] => Endpoint::List,
            ["events"] => Endpoint::Events,
            ["status", "routes"] => Endpoint::Routes,
            ["status", "upstreams"] => Endpoint::Upstreams,
            ["status", "plugins"] => Endpoint::Plugins,
            ["status", "config"] => Endpoint::Config,
            ["metrics"] => Endpoint::Metrics,
            ["reload"] => Endpoint::Reload,
            ["upstreams", upstream, "targets", target, action @ ("drain" | "undrain")] => Endpoint::Drain {
                upstream: percent_decode(upstream)?,
                target: percent_decode(target)?,
                drained: *action == "drain",
            },
            ["log-level"] => Endpoint::LogLevel,
            _ => return None,
        })
    }

    fn allowed(&self) -> &'static [Method] {
        match self {
            Endpoint::Reload | Endpoint::Drain { .. } => &[Method::POST],
            Endpoint::LogLevel => &[Method::GET, Method::PUT, Method::DELETE],
            _ => &[Method::GET],
        }
    }
}

impl Admin {
    async fn answer(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Response<AdminBody> {
        let running = self.reloader.running();
        let admin = running.config.admin.as_ref();
        if let Some(token) = admin.and_then(|a| a.token.as_ref()) {
            if !auth::authorized(token, req.headers()) {
                return auth::unauthorized().map(Either::Left);
            }
        }
        let endpoint = Endpoint::of(req.uri().path());
        if endpoint == Some(Endpoint::Events) && req.method() == Method::GET {
            return dashboard::events(self.clone(), shutdown).map(Either::Right);
        }
        self.answer_whole(req, client, endpoint).await.map(Either::Left)
    }

    /// Every answer but the event stream, the token already checked.
    async fn answer_whole(
        self: Arc<Self>,
        req: Request<Incoming>,
        client: SocketAddr,
        endpoint: Option<Endpoint>,
    ) -> Response<Full<Bytes>> {
        let running = self.reloader.running();
        let Some(endpoint) = endpoint else {
            return error(StatusCode::NOT_FOUND, "no such endpoint; GET /status lists them");
        };
        let allowed = endpoint.allowed();
        if !allowed.contains(req.method()) {
            let mut response = error(StatusCode::METHOD_NOT_ALLOWED, &format!("use {}", allow(allowed)));
            if let Ok(value) = HeaderValue::from_str(&allow(allowed)) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return response;
        }
        let state = self.state.load_full();
        let (status, body) = match endpoint {
            Endpoint::Index if wants_html(req.headers()) => return dashboard::page(),
            Endpoint::Index | Endpoint::List => (StatusCode::OK, json!({ "endpoints": INDEX })),
            // Answered in `answer`; only a wrong method gets here.
            Endpoint::Events => return error(StatusCode::METHOD_NOT_ALLOWED, "use GET"),
            Endpoint::Routes => (StatusCode::OK, status::routes(&running.config, &self.listeners.load())),
            Endpoint::Upstreams => (StatusCode::OK, status::upstreams(&state)),
            Endpoint::Plugins => (StatusCode::OK, status::plugins(&running, self.reloader.refused().as_deref())),
            Endpoint::Config => (StatusCode::OK, status::config(&running, self.reloader.refused().as_deref())),
            Endpoint::Metrics => {
                let accept = req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok());
                let (content_type, text) = crate::metrics::exposition(&state, accept);
                return respond(StatusCode::OK, HeaderValue::from_static(content_type), Bytes::from(text));
            }
            Endpoint::Reload => {
                tracing::info!(%client, "admin: reload requested");
                actions::reload(self.reloader.clone()).await
            }
            Endpoint::Drain { upstream, target, drained } => {
                tracing::info!(%client, upstream, target, drained, "admin: drain requested");
                actions::drain(&state, &upstream, &target, drained)
            }
            Endpoint::LogLevel => match *req.method() {
                Method::GET => actions::log_level(),
                Method::DELETE => {
                    tracing::info!(%client, "admin: temporary log level ended");
                    actions::end_log_level()
                }
                _ => {
                    tracing::info!(%client, "admin: log level change requested");
                    actions::set_log_level(req.into_body(), self.limits.header_timeout).await
                }
            },
        };
        json_response(status, &body)
    }
}

/// Whether a request's `Accept` names `text/html` (a browser navigating).
fn wants_html(headers: &http::HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| range.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("text/html")))
}

fn allow(methods: &[Method]) -> String {
    methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ")
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    respond(status, HeaderValue::from_static("application/json"), Bytes::from(body.to_string() + "\n"))
}

fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}

fn respond(status: StatusCode, content_type: HeaderValue, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, content_type);
    // Answers describe this moment; no cache should keep them.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `%XX` escapes decoded (an IPv6 target is `%5B::1%5D:8080`); `None` for a bad
/// escape or bytes that are not UTF-8.
fn percent_decode(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
