//! Listeners and workers. Each worker is a thread with its own single-threaded
//! event loop and, with more than one worker, its own `SO_REUSEPORT` socket per
//! listener, so the kernel spreads connections and a request lives on one core.

mod bind;
pub(crate) mod connection;
pub mod strict_http1;
mod tcp;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use connection::{Activity, Tracked};
use strict_http1::StrictHttp1;

use crate::config::{Config, Limits};
use crate::metrics::ListenerMetrics;
use crate::proxy::{self, Peer};
use crate::plugins::Plugins;
use crate::reload::{ReloadError, Reloader};
use crate::state::State;
use wasmgate_plugin::watch::Watcher;

pub use bind::BindError;
pub use connection::now_ms;

/// A running gateway. Dropping it starts a graceful shutdown without waiting.
pub struct Gateway {
    listeners: Vec<(String, SocketAddr)>,
    state: Arc<ArcSwap<State>>,
    shutdown: watch::Sender<bool>,
    /// Accept loops still holding their listening socket.
    open_listeners: watch::Sender<usize>,
    workers: Vec<JoinHandle<()>>,
    /// Discovery, health checks and the admin listener, on their own thread.
    control: crate::control::Control,
    /// Builds and swaps in new states (config or plugin changes).
    reloader: Arc<Reloader>,
    /// Reports config and plugin file changes to the reloader; stops when dropped.
    _watcher: Option<Watcher>,
}

impl Gateway {
    /// Binds every listener (port 0 picks a free port) and starts the workers.
    pub fn start(config: &Config) -> Result<Gateway, BindError> {
        let workers = config.runtime.workers;
        let bound = bind::bind_all(&config.listeners, workers)?;
        let listeners: Vec<(String, SocketAddr)> =
            config.listeners.iter().zip(&bound).map(|(l, b)| (l.name.clone(), b.address)).collect();
        let mut plugins = config.plugins.as_ref().map(Plugins::load).transpose()?;
        let state = Arc::new(ArcSwap::from_pointee(State::build(config, plugins.as_mut(), None)?));
        if let Some(plugins) = &plugins {
            tracing::info!(plugins = ?plugins.versions(), "plugins loaded");
        }
        let reloader = Reloader::new(state.clone(), config.clone(), plugins);
        let watcher = reloader.watch();
        let (shutdown, _) = watch::channel(false);
        let control = crate::control::Control::start(config, &state, &reloader, &listeners, shutdown.subscribe())?;
        let drain = config.runtime.drain_timeout;
        let open_listeners = watch::Sender::new(config.listeners.len() * workers);

        let mut per_worker: Vec<Vec<(Arc<ListenerShared>, std::net::TcpListener)>> =
            (0..workers).map(|_| Vec::new()).collect();
        for (index, (listener, config)) in bound.into_iter().zip(&config.listeners).enumerate() {
            let shared = Arc::new(ListenerShared {
                metrics: state.load().metrics.listener(index).cloned(),
                index,
                limits: config.limits,
                permits: Arc::new(Semaphore::new(config.limits.max_connections)),
                accept_errors: crate::accept::ErrorLog::new(&config.name),
            });
            for (worker, socket) in listener.sockets.into_iter().enumerate() {
                per_worker[worker % workers].push((shared.clone(), socket));
            }
        }
        let mut handles = Vec::with_capacity(workers);
        for (id, sockets) in per_worker.into_iter().enumerate() {
            let state = state.clone();
            let shutdown = shutdown.subscribe();
            let open = open_listeners.clone();
            let handle = std::thread::Builder::new()
                .name(format!("wasmgate-worker-{id}"))
                .spawn(move || run_worker(id, sockets, state, shutdown, open, drain))
                .map_err(|e| BindError::Worker(e.to_string()))?;
            handles.push(handle);
        }
        Ok(Gateway { listeners, state, shutdown, open_listeners, workers: handles, control, reloader, _watcher: watcher })
    }

    /// The address of the admin listener (`[admin]`), when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.control.admin_addr()
    }

    /// The address a listener is bound to.
    pub fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.listeners.iter().find(|(name, _)| name == listener).map(|(_, addr)| *addr)
    }

    /// The live state; storing a new one reconfigures routes and upstreams.
    pub fn state(&self) -> &Arc<ArcSwap<State>> {
        &self.state
    }

    /// Applies a new config now (or the config file read again, with `None`),
    /// with the plugins as they are in the folder. On error nothing changes.
    pub fn reload(&self, config: Option<Config>) -> Result<(), ReloadError> {
        self.reloader.reload(config)
    }

    /// Stops accepting and lets in-flight requests finish (up to the drain timeout).
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once every listening socket is closed (after `shutdown`).
    pub async fn listeners_closed(&self) {
        let _ = self.open_listeners.subscribe().wait_for(|&open| open == 0).await;
    }

    /// Blocks until every worker has drained and stopped.
    pub fn join(mut self) {
        self.control.join();
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }

    /// Shuts down and waits, from async code.
    pub async fn stop(self) {
        self.shutdown();
        let _ = tokio::task::spawn_blocking(move || self.join()).await;
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
    }
}

fn run_worker(
    id: usize,
    sockets: Vec<(Arc<ListenerShared>, std::net::TcpListener)>,
    state: Arc<ArcSwap<State>>,
    shutdown: watch::Receiver<bool>,
    open: watch::Sender<usize>,
    drain: Duration,
) {
    // This thread writes row `id` of every metric block.
    wasmgate_metrics::set_worker(id);
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start a worker event loop");
            return;
        }
    };
    runtime.block_on(async move {
        let mut loops = tokio::task::JoinSet::new();
        for (listener, socket) in sockets {
            loops.spawn(accept_loop(listener, socket, state.clone(), shutdown.clone(), open.clone(), drain));
        }
        while loops.join_next().await.is_some() {}
    });
}

async fn accept_loop(
    listener: Arc<ListenerShared>,
    socket: std::net::TcpListener,
    state: Arc<ArcSwap<State>>,
    mut shutdown: watch::Receiver<bool>,
    open: watch::Sender<usize>,
    drain: Duration,
) {
    let closed = || open.send_modify(|n| *n = n.saturating_sub(1));
    let socket = match TcpListener::from_std(socket) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::error!(error = %e, "cannot register listener");
            closed();
            return;
        }
    };
    let limits = listener.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        // Header and idle timing is done by `connection::serve`, see there.
        .header_read_timeout(None)
        .max_buf_size(limits.max_header_bytes.max(8192))
        // A response's head and body go out in one buffer (one `write`) rather
        // than a `writev` of two: +1.6% requests/s on small API responses (7
        // interleaved rounds, faster in every one). Bodies are copied once
        // more in user space; large transfers pay a memcpy per chunk.
        .writev(false);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_pending_accept_reset_streams(20)
        .max_local_error_reset_streams(256)
        .max_send_buf_size(256 * 1024);
    let builder = Arc::new(builder);
    // Connections of this accept loop still running, for the drain at shutdown.
    let live = watch::Sender::new(0usize);
    let mut backoff = crate::accept::backoff();

    while !*shutdown.borrow() {
        // At max_connections, stop accepting: new clients wait in the backlog.
        let permit = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            permit = listener.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let (stream, addr) = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            accepted = socket.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a transient error: back off instead
                    // of spinning, and keep serving the connections we have.
                    listener.accept_errors.failed(&e);
                    tokio::select! {
                        biased;
                        _ = shutdown.changed() => break,
                        _ = tokio::time::sleep(backoff.next()) => continue,
                    }
                }
            },
        };
        backoff.reset();
        let _ = stream.set_nodelay(true);
        let open = listener.metrics.clone().map(OpenConnection::new);
        let current = state.load_full();
        if current.tcp(listener.index).is_some() {
            let (live, index) = (live.clone(), listener.index);
            live.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                tcp::serve(stream, addr, current, index, limits).await;
                live.send_modify(|n| *n -= 1);
                drop((permit, open));
            });
            continue;
        }
        let tls_config = current.tls(listener.index).cloned();
        drop(current);
        let peer = Arc::new(Peer {
            addr,
            ip_value: proxy::headers::ip_value(addr.ip()),
            listener: listener.index,
            scheme: if tls_config.is_some() { "https" } else { "http" },
            max_body_bytes: limits.max_body_bytes,
            idle_timeout: limits.idle_timeout,
            body_timeout: limits.body_timeout,
        });
        let activity = Activity::counted(listener.metrics.clone());
        let service = {
            let (state, activity) = (state.clone(), activity.clone());
            service_fn(move |req| {
                let in_flight = activity.request();
                let snapshot = state.load_full();
                let peer = peer.clone();
                let (activity, h1_connect) = (activity.clone(), h1_connect(&req));
                // Boxed: hyper keeps the request's future in its connection
                // state and moves it there; a pointer moves for free, the
                // future itself is a few kilobytes (measured: ~500 instructions
                // of memcpy per request unboxed).
                Box::pin(async move {
                    let (response, counting) = proxy::handle(snapshot, peer, req).await;
                    if switches(h1_connect, response.status()) {
                        activity.switch();
                    }
                    Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight).counting(counting)))
                })
            })
        };
        let (shutdown, live, builder) = (shutdown.clone(), live.clone(), builder.clone());
        live.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            let io = match tls_config {
                None => Some(crate::tls::MaybeTls::Plain(stream)),
                Some(config) => tls::handshake(config, stream, addr, limits.header_timeout).await,
            };
            if let Some(io) = io {
                let io = TokioIo::new(StrictHttp1::new(io, activity.clone()));
                let connection = builder.serve_connection_with_upgrades(io, service);
                if let Some(Err(e)) = connection::serve(connection, activity, limits, shutdown).await {
                    tracing::debug!(client = %addr, error = %e, "connection ended with an error");
                }
            }
            live.send_modify(|n| *n -= 1);
            drop((permit, open));
        });
    }
    drop(socket);
    closed();
    let mut live = live.subscribe();
    if tokio::time::timeout(drain, live.wait_for(|&n| n == 0)).await.is_err() {
        tracing::warn!(?drain, "drain timeout: closing the remaining connections");
    }
}

/// Counts a client connection as open until dropped.
struct OpenConnection(Arc<ListenerMetrics>);

impl OpenConnection {
    fn new(metrics: Arc<ListenerMetrics>) -> OpenConnection {
        metrics.connection_opened();
        OpenConnection(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connection_closed();
    }
}

/// What every worker's accept loop for one listener shares.
struct ListenerShared {
    /// The listener's metrics (none when metrics are off).
    metrics: Option<Arc<ListenerMetrics>>,
    index: usize,
    limits: Limits,
    /// One permit per open connection, across all workers (`max_connections`).
    permits: Arc<Semaphore>,
    /// Accept failures, logged at a bounded rate across all workers.
    accept_errors: crate::accept::ErrorLog,
}

/// Whether a request is HTTP/1 (`Some`) and a `CONNECT` (`true`): what decides,
/// with the answer's status, whether hyper switches the connection's protocol.
fn h1_connect<B>(req: &http::Request<B>) -> Option<bool> {
    (req.version() < http::Version::HTTP_2).then(|| req.method() == http::Method::CONNECT)
}

/// hyper hands an HTTP/1 connection over to another protocol after a `101`, or
/// a 2xx to `CONNECT`; the strict reader must then stop reading it as HTTP/1.
fn switches(h1_connect: Option<bool>, status: http::StatusCode) -> bool {
    match h1_connect {
        Some(connect) => status == http::StatusCode::SWITCHING_PROTOCOLS || connect && status.is_success(),
        None => false,
    }
}
