//! Listeners and workers. Each worker is a thread with its own single-threaded
//! event loop and, with more than one worker, its own `SO_REUSEPORT` socket per
//! listener, so the kernel spreads connections and a request lives on one core.

mod bind;
pub(crate) mod connection;
mod live;
pub mod strict_http1;
mod tcp;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use connection::{Activity, Tracked};
use strict_http1::StrictHttp1;

use crate::config::{Config, Limits};
use crate::metrics::ListenerMetrics;
use live::{Listen, ListenerShared};
use crate::proxy::{self, Peer};
use crate::plugins::Plugins;
use crate::reload::{ReloadError, Reloader};
use crate::state::State;
use wasmgate_plugin::watch::Watcher;

pub use bind::BindError;
pub use connection::now_ms;
pub use live::{Addresses, Listeners, Prepared};

/// A running gateway. Dropping it starts a graceful shutdown without waiting.
pub struct Gateway {
    /// Each listener's name and bound address, as reloads change them.
    listeners: Addresses,
    state: Arc<ArcSwap<State>>,
    shutdown: watch::Sender<bool>,
    /// Accept loops still holding their listening socket.
    open_listeners: watch::Sender<usize>,
    workers: Vec<JoinHandle<()>>,
    /// Discovery, health checks and the admin listener, on their own thread.
    control: crate::control::Control,
    /// Builds and swaps in new states (config or plugin changes).
    reloader: Arc<Reloader>,
    /// The listeners being served; shutdown closes what they keep for reloads.
    live: Arc<Listeners>,
    /// Reports config and plugin file changes to the reloader; stops when dropped.
    _watcher: Option<Watcher>,
    /// Follows the fleet's config in ZooKeeper, with `[cluster]`.
    fleet: Option<crate::cluster::Follower>,
}

impl Gateway {
    /// Binds every listener (port 0 picks a free port) and starts the workers.
    /// With `[cluster]`, it starts on the fleet's current version (or, when
    /// ZooKeeper does not answer, the one it last applied, cached on disk; else
    /// on `config` alone) and follows the fleet from then on.
    pub fn start(config: &Config) -> Result<Gateway, BindError> {
        let local = config;
        let startup = crate::cluster::Startup::new(local);
        let config = startup.config.as_ref().unwrap_or(local);
        let workers = config.runtime.workers;
        let bound = bind::bind_all(&config.listeners, workers)?;
        let listeners: Addresses = Arc::new(ArcSwap::from_pointee(
            config.listeners.iter().zip(&bound).map(|(l, b)| (l.name.clone(), b.address)).collect(),
        ));
        let mut plugins = config.plugins.as_ref().map(Plugins::load).transpose()?;
        let state = Arc::new(ArcSwap::from_pointee(State::build(config, plugins.as_mut(), None)?));
        if let Some(plugins) = &plugins {
            tracing::info!(plugins = ?plugins.versions(), "plugins loaded");
        }
        let reloader = Reloader::new(state.clone(), config.clone(), plugins);
        let watcher = reloader.watch();
        let (shutdown, _) = watch::channel(false);
        let fleet = crate::cluster::Follower::spawn(local, &startup, &reloader, shutdown.subscribe())?;
        let control = crate::control::Control::start(config, &state, &reloader, &listeners, shutdown.subscribe())?;
        let open_listeners = watch::Sender::new(0);
        let (live, channels) =
            Listeners::start(config, bound, &state.load(), listeners.clone(), open_listeners.clone(), control.admin())?;
        reloader.serve_with(live.clone());
        let mut handles = Vec::with_capacity(workers);
        for (id, channel) in channels.into_iter().enumerate() {
            let state = state.clone();
            let shutdown = shutdown.subscribe();
            let open = open_listeners.clone();
            let handle = std::thread::Builder::new()
                .name(format!("wasmgate-worker-{id}"))
                .spawn(move || run_worker(id, channel, state, shutdown, open))
                .map_err(|e| BindError::Worker(e.to_string()))?;
            handles.push(handle);
        }
        Ok(Gateway { listeners, state, shutdown, open_listeners, workers: handles, control, reloader, live, _watcher: watcher, fleet })
    }

    /// The address of the admin listener (`[admin]`), when configured.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.control.admin_addr()
    }

    /// The address a listener is bound to.
    pub fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.listeners.load().iter().find(|(name, _)| name == listener).map(|(_, addr)| *addr)
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
        self.live.close();
        self.shutdown.send_replace(true);
    }

    /// Resolves once every listening socket is closed (after `shutdown`).
    pub async fn listeners_closed(&self) {
        let _ = self.open_listeners.subscribe().wait_for(|&open| open == 0).await;
    }

    /// Blocks until every worker has drained and stopped.
    pub fn join(mut self) {
        self.control.join();
        if let Some(fleet) = self.fleet.as_mut() {
            fleet.join();
        }
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
        self.live.close();
        self.shutdown.send_replace(true);
    }
}

/// One worker: an accept loop for each socket its channel brings (at start,
/// and when a reload adds or moves a listener), until shutdown.
fn run_worker(
    id: usize,
    mut sockets: mpsc::UnboundedReceiver<Listen>,
    state: Arc<ArcSwap<State>>,
    shutdown: watch::Receiver<bool>,
    open: watch::Sender<usize>,
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
        let mut stop = shutdown.clone();
        loop {
            tokio::select! {
                biased;
                _ = crate::control::stopped(&mut stop) => break,
                listen = sockets.recv() => match listen {
                    Some((listener, socket)) => {
                        loops.spawn(accept_loop(listener, socket, state.clone(), shutdown.clone(), open.clone()));
                    }
                    None => break,
                },
                Some(_) = loops.join_next(), if !loops.is_empty() => {}
            }
        }
        // Sockets sent but not taken up: they close here.
        sockets.close();
        while sockets.try_recv().is_ok() {
            open.send_modify(|n| *n = n.saturating_sub(1));
        }
        while loops.join_next().await.is_some() {}
    });
}

/// Accepts connections for one listener at one address until shutdown or a
/// reload retires it (removed, or moved elsewhere), then lets its connections
/// finish their request and close, within `runtime.drain_timeout`.
async fn accept_loop(
    listener: Arc<ListenerShared>,
    socket: std::net::TcpListener,
    state: Arc<ArcSwap<State>>,
    mut shutdown: watch::Receiver<bool>,
    open: watch::Sender<usize>,
) {
    let closed = || open.send_modify(|n| *n = n.saturating_sub(1));
    let socket = match TcpListener::from_std(socket) {
        Ok(socket) => socket,
        Err(e) => {
            tracing::error!(listener = %listener.name, error = %e, "cannot register listener");
            closed();
            return;
        }
    };
    let mut retire = listener.retire.subscribe();
    let mut accepting = Accepting {
        listener: listener.clone(),
        state,
        closing: watch::Sender::new(false),
        ended: watch::Sender::new(false),
        live: watch::Sender::new(0),
        builders: Builders::default(),
        last_call: false,
        never: watch::Sender::new(false),
    };
    let mut backoff = crate::accept::backoff();

    while !*shutdown.borrow() {
        if *retire.borrow() {
            // Retired by a reload: take what the kernel has already queued on
            // this socket (closing it would reset those), without waiting, and
            // answer each one request. Not when the socket lives on, handed
            // over to another listener.
            if listener.handed_over.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            accepting.last_call = true;
            let Some(permit) = listener.permits.try_acquire() else { break };
            let queued = std::future::poll_fn(|cx| std::task::Poll::Ready(socket.poll_accept(cx))).await;
            let std::task::Poll::Ready(Ok((stream, addr))) = queued else {
                listener.permits.release(permit);
                break;
            };
            accepting.serve(stream, addr, permit);
            continue;
        }
        // At max_connections, stop accepting: new clients wait in the backlog.
        let permit = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = retire.changed() => continue,
            permit = listener.permits.acquire() => match permit {
                Some(permit) => permit,
                None => break,
            },
        };
        let (stream, addr) = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            _ = retire.changed() => {
                listener.permits.release(permit);
                continue;
            }
            accepted = socket.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a transient error: back off instead
                    // of spinning, and keep serving the connections we have.
                    listener.accept_errors.failed(&e);
                    tokio::select! {
                        biased;
                        _ = shutdown.changed() => break,
                        _ = retire.changed() => continue,
                        _ = tokio::time::sleep(backoff.next()) => continue,
                    }
                }
            },
        };
        backoff.reset();
        accepting.serve(stream, addr, permit);
    }
    drop(socket);
    closed();
    accepting.closing.send_replace(true);
    let mut live = accepting.live.subscribe();
    // As configured now: a reload may have changed it.
    let drain = accepting.state.load().drain_timeout;
    if tokio::time::timeout(drain, live.wait_for(|&n| n == 0)).await.is_err() {
        tracing::warn!(listener = %listener.name, ?drain, "drain timeout: closing the remaining connections");
        accepting.ended.send_replace(true);
    }
}

/// What an accept loop's connections share.
struct Accepting {
    listener: Arc<ListenerShared>,
    state: Arc<ArcSwap<State>>,
    /// Tells the connections to close after their request (shutdown, retired).
    closing: watch::Sender<bool>,
    /// Ends the connections still open when the drain timeout passes.
    ended: watch::Sender<bool>,
    /// Connections still running, for the drain.
    live: watch::Sender<usize>,
    builders: Builders,
    /// The listener is retired: new connections (from the backlog) get one
    /// request answered, then close; `closing` would close them unanswered.
    last_call: bool,
    /// Never set: what connections on their last call watch instead of `closing`.
    never: watch::Sender<bool>,
}

impl Accepting {
    /// Serves one accepted connection on this worker, with the listener's
    /// settings in the state current now.
    fn serve(&mut self, stream: tokio::net::TcpStream, addr: SocketAddr, permit: tokio::sync::OwnedSemaphorePermit) {
        let Accepting { listener, state, closing, ended, live, builders, last_call, never } = self;
        let _ = stream.set_nodelay(true);
        // The listener as the state current now has it: its index, limits, TLS.
        let Some((current, index)) = listener.resolve(state.load_full()) else {
            listener.permits.release(permit);
            return;
        };
        let limits = current.limits(index);
        let metrics = current.listener_metrics(index).cloned();
        let open = metrics.clone().map(OpenConnection::new);
        let (permits, mut end) = (listener.permits.clone(), ended.subscribe());
        if current.tcp(index).is_some() {
            let live = live.clone();
            live.send_modify(|n| *n += 1);
            tokio::spawn(async move {
                tokio::select! {
                    _ = tcp::serve(stream, addr, current, index, limits) => {}
                    _ = crate::control::stopped(&mut end) => {}
                }
                live.send_modify(|n| *n -= 1);
                permits.release(permit);
                drop(open);
            });
            return;
        }
        let tls_config = current.tls(index).cloned();
        drop(current);
        let peer = Arc::new(Peer {
            addr,
            ip_value: proxy::headers::ip_value(addr.ip()),
            listener: index,
            scheme: if tls_config.is_some() { "https" } else { "http" },
            max_body_bytes: limits.max_body_bytes,
            idle_timeout: limits.idle_timeout,
            body_timeout: limits.body_timeout,
        });
        let activity = Activity::counted(metrics);
        let service = {
            let (state, activity, listener) = (state.clone(), activity.clone(), listener.clone());
            service_fn(move |req| {
                let in_flight = activity.request();
                let (snapshot, peer) = serving(&listener, state.load_full(), &peer);
                let (activity, h1_connect) = (activity.clone(), h1_connect(&req));
                // Boxed: hyper keeps the request's future in its connection
                // state and moves it there; a pointer moves for free, the
                // future itself is a few kilobytes (measured: ~500 instructions
                // of memcpy per request unboxed). Made in its box, see there.
                pinned_in_place(|| async move {
                    let (response, counting) = proxy::handle(snapshot, peer, req).await;
                    if switches(h1_connect, response.status()) {
                        activity.switch();
                    }
                    Ok::<_, Infallible>(response.map(|body| Tracked::new(body, in_flight).counting(counting)))
                })
            })
        };
        let closing = if *last_call { never.subscribe() } else { closing.subscribe() };
        let (live, builder) = (live.clone(), builders.get(limits, !*last_call));
        live.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            let served = async {
                let io = match tls_config {
                    None => Some(crate::tls::MaybeTls::Plain(stream)),
                    Some(config) => tls::handshake(config, stream, addr, limits.header_timeout).await,
                };
                if let Some(io) = io {
                    let io = TokioIo::new(StrictHttp1::new(io, activity.clone()));
                    let connection = builder.serve_connection_with_upgrades(io, service);
                    if let Some(Err(e)) = connection::serve(connection, activity, limits, closing).await {
                        tracing::debug!(client = %addr, error = %e, "connection ended with an error");
                    }
                }
            };
            tokio::select! {
                _ = served => {}
                _ = crate::control::stopped(&mut end) => {}
            }
            live.send_modify(|n| *n -= 1);
            permits.release(permit);
            drop(open);
        });
    }
}

/// The state a request is served with, and its peer: the current state while
/// it has the connection's listener where the connection found it (a pointer
/// compare), else that listener where a reload put it, or, once a reload
/// removed it, the last state that had it.
fn serving(listener: &ListenerShared, snapshot: Arc<State>, peer: &Arc<Peer>) -> (Arc<State>, Arc<Peer>) {
    if snapshot.listener_is(peer.listener, &listener.name) {
        return (snapshot, peer.clone());
    }
    match listener.resolve(snapshot.clone()) {
        Some((state, index)) => (state, Arc::new(Peer { listener: index, ip_value: peer.ip_value.clone(), ..**peer })),
        None => (snapshot, peer.clone()),
    }
}

/// The connection builder for a listener's limits (and HTTP/1 keep-alive),
/// made again when a reload changes them.
#[derive(Default)]
struct Builders(Option<(Limits, bool, Arc<auto::Builder<TokioExecutor>>)>);

impl Builders {
    fn get(&mut self, limits: Limits, keep_alive: bool) -> Arc<auto::Builder<TokioExecutor>> {
        match &self.0 {
            Some((built, alive, builder)) if *built == limits && *alive == keep_alive => builder.clone(),
            _ => {
                let builder = Arc::new(builder(limits, keep_alive));
                self.0 = Some((limits, keep_alive, builder.clone()));
                builder
            }
        }
    }
}

fn builder(limits: Limits, keep_alive: bool) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(keep_alive)
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
    builder
}

/// `Box::pin(make())`, with the future made in its box. `Box::pin` makes it
/// on the stack and copies all of it into the box: kilobytes, mostly state of
/// later steps not in use yet, written per request into memory that with
/// hundreds of connections has left the cache. Allocated first and made by a
/// call that is not inlined, the future is written straight into the box
/// (LLVM's call-slot optimisation), only the few fields it starts with.
fn pinned_in_place<F>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    #[inline(never)]
    fn made<F>(make: impl FnOnce() -> F) -> F {
        make()
    }
    let slot = Box::new_uninit();
    Box::into_pin(Box::write(slot, made(make)))
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
