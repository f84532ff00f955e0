//! Listeners and workers. Each worker is a thread with its own single-threaded
//! event loop and, with more than one worker, its own `SO_REUSEPORT` socket per
//! listener, so the kernel spreads connections and a request lives on one core.

mod bind;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::proxy::{self, Peer};
use crate::state::State;

pub use bind::BindError;

/// A running gateway. Dropping it starts a graceful shutdown without waiting.
pub struct Gateway {
    listeners: Vec<(String, SocketAddr)>,
    state: Arc<ArcSwap<State>>,
    shutdown: watch::Sender<bool>,
    /// Accept loops still holding their listening socket.
    open_listeners: watch::Sender<usize>,
    workers: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Binds every listener (port 0 picks a free port) and starts the workers.
    pub fn start(config: &Config) -> Result<Gateway, BindError> {
        let workers = config.runtime.workers;
        let bound = bind::bind_all(&config.listeners, workers)?;
        let listeners = config.listeners.iter().zip(&bound).map(|(l, b)| (l.name.clone(), b.address)).collect();
        let state = Arc::new(ArcSwap::from_pointee(State::new(config)));
        let (shutdown, _) = watch::channel(false);
        let drain = config.runtime.drain_timeout;
        let open_listeners = watch::Sender::new(config.listeners.len() * workers);

        let mut per_worker: Vec<Vec<(usize, std::net::TcpListener)>> = (0..workers).map(|_| Vec::new()).collect();
        for (index, listener) in bound.into_iter().enumerate() {
            for (worker, socket) in listener.sockets.into_iter().enumerate() {
                per_worker[worker % workers].push((index, socket));
            }
        }
        let mut handles = Vec::with_capacity(workers);
        for (id, sockets) in per_worker.into_iter().enumerate() {
            let state = state.clone();
            let shutdown = shutdown.subscribe();
            let open = open_listeners.clone();
            let handle = std::thread::Builder::new()
                .name(format!("wasmgate-worker-{id}"))
                .spawn(move || run_worker(sockets, state, shutdown, open, drain))
                .map_err(|e| BindError::Worker(e.to_string()))?;
            handles.push(handle);
        }
        Ok(Gateway { listeners, state, shutdown, open_listeners, workers: handles })
    }

    /// The address a listener is bound to.
    pub fn local_addr(&self, listener: &str) -> Option<SocketAddr> {
        self.listeners.iter().find(|(name, _)| name == listener).map(|(_, addr)| *addr)
    }

    /// The live state; storing a new one reconfigures routes and upstreams.
    pub fn state(&self) -> &Arc<ArcSwap<State>> {
        &self.state
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
    sockets: Vec<(usize, std::net::TcpListener)>,
    state: Arc<ArcSwap<State>>,
    shutdown: watch::Receiver<bool>,
    open: watch::Sender<usize>,
    drain: Duration,
) {
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
    index: usize,
    socket: std::net::TcpListener,
    state: Arc<ArcSwap<State>>,
    mut shutdown: watch::Receiver<bool>,
    open: watch::Sender<usize>,
    drain: Duration,
) {
    let closed = || open.send_modify(|n| *n = n.saturating_sub(1));
    let listener = match TcpListener::from_std(socket) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!(error = %e, "cannot register listener");
            closed();
            return;
        }
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new());
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();

    while !*shutdown.borrow() {
        let (stream, addr) = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors or a transient error: back off a moment
                    // instead of spinning, and keep serving the connections we have.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let peer = Peer { addr, listener: index, scheme: "http" };
        let state = state.clone();
        let service = service_fn(move |req| {
            let snapshot = state.load_full();
            async move { Ok::<_, Infallible>(proxy::handle(snapshot, peer, req).await) }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(client = %addr, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    closed();
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(drain) => tracing::warn!(?drain, "drain timeout: closing the remaining connections"),
    }
}
