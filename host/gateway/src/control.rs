//! The control plane: one thread with its own event loop for what is not per
//! request — ZooKeeper watches, health checks and the admin listener. Request
//! workers never wait on it; it changes what they see only by publishing new
//! target snapshots.
//!
//! Discovery and health checks run for the upstreams of the state being
//! served: when a reload swaps in a state whose upstream was rebuilt (its
//! config changed: a new discovery source, other checks, a timeout), the new
//! upstream's tasks start and the old one's stop. The new upstream starts with
//! what the old one knew (`Upstream::succeeding`), so it serves its targets
//! until its own source and checks report.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::admin::Admin;
use crate::config::{AdminLimits, Config};
use crate::reload::Reloader;
use crate::server::BindError;
use crate::state::State;
use crate::upstream::Upstream;

pub struct Control {
    thread: Option<std::thread::JoinHandle<()>>,
    /// Where the admin listener is bound, and the way to rebind it.
    admin: AdminHandle,
}

/// What a reload asks of the admin listener (after binding any new socket).
pub enum AdminCommand {
    /// Serve on this socket (bound at `address`) from now on; the old one stops accepting.
    Serve { listener: std::net::TcpListener, address: SocketAddr, limits: AdminLimits },
    /// Same socket, new limits for new connections.
    Limits(AdminLimits),
    Stop,
}

/// Reaches the control thread's admin listener.
#[derive(Clone)]
pub struct AdminHandle {
    commands: mpsc::UnboundedSender<AdminCommand>,
    /// Where it is bound now.
    address: Arc<Mutex<Option<SocketAddr>>>,
}

impl AdminHandle {
    pub fn send(&self, command: AdminCommand) {
        let address = match &command {
            AdminCommand::Serve { address, .. } => Some(*address),
            AdminCommand::Limits(_) => self.address(),
            AdminCommand::Stop => None,
        };
        *self.address.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = address;
        // The control thread is gone only after shutdown.
        let _ = self.commands.send(command);
    }

    pub fn address(&self) -> Option<SocketAddr> {
        *self.address.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Control {
    /// Binds the admin listener (so a bad address fails the start) and starts the
    /// control thread when anything needs it. It stops when `shutdown` turns true.
    /// `listeners` are the bound listeners' names and addresses, for the admin API.
    pub fn start(
        config: &Config,
        state: &Arc<ArcSwap<State>>,
        reloader: &Arc<Reloader>,
        listeners: &crate::server::Addresses,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Control, BindError> {
        let admin = match &config.admin {
            Some(admin) => {
                let fail = |reason| BindError::Listen { listener: "admin".into(), address: admin.address, reason };
                let listener = std::net::TcpListener::bind(admin.address).map_err(fail)?;
                listener.set_nonblocking(true).map_err(fail)?;
                let address = listener.local_addr().map_err(fail)?;
                Some(AdminCommand::Serve { listener, address, limits: admin.limits })
            }
            None => None,
        };
        let (commands, received) = mpsc::unbounded_channel();
        let handle = AdminHandle { commands, address: Arc::new(Mutex::new(None)) };
        if let Some(first) = admin {
            handle.send(first);
        }
        let api = Api { state: state.clone(), reloader: reloader.clone(), listeners: listeners.clone() };
        // Always started: a reload may bring discovery, health checks or `[admin]`.
        let (state, swaps) = (state.clone(), reloader.swaps());
        let thread = std::thread::Builder::new()
            .name("wasmgate-control".into())
            .spawn(move || run(state, swaps, api, received, shutdown))
            .map_err(|e| BindError::Worker(e.to_string()))?;
        Ok(Control { thread: Some(thread), admin: handle })
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.address()
    }

    /// The way a reload rebinds the admin listener.
    pub fn admin(&self) -> AdminHandle {
        self.admin.clone()
    }

    /// Waits for the control thread to stop (after shutdown).
    pub fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Resolves when `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|&stop| stop).await;
}

/// How often the control thread also looks for a new state stored other than
/// by a reload (a reload tells it at once).
const FOLLOW_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// What every admin listener the control thread serves is made of, but its limits.
struct Api {
    state: Arc<ArcSwap<State>>,
    reloader: Arc<Reloader>,
    listeners: crate::server::Addresses,
}

/// The admin listener being served: a duplicate of its socket (to serve it
/// again with other limits) and the switch that stops its accept loop.
struct Serving {
    socket: std::net::TcpListener,
    stop: watch::Sender<bool>,
}

impl Api {
    /// Serves `socket` with `limits` until the returned `Serving` is stopped.
    fn serve(&self, socket: std::net::TcpListener, limits: AdminLimits, tasks: &mut JoinSet<()>) -> Option<Serving> {
        let copy = match socket.try_clone() {
            Ok(copy) => copy,
            Err(e) => {
                tracing::error!(error = %e, "cannot serve the admin listener");
                return None;
            }
        };
        let api = Admin { state: self.state.clone(), reloader: self.reloader.clone(), listeners: self.listeners.clone(), limits };
        let stop = watch::Sender::new(false);
        tasks.spawn(crate::admin::serve(socket, Arc::new(api), stop.subscribe()));
        Some(Serving { socket: copy, stop })
    }
}

fn run(
    state: Arc<ArcSwap<State>>,
    mut swaps: watch::Receiver<u64>,
    api: Api,
    mut commands: mpsc::UnboundedReceiver<AdminCommand>,
    mut shutdown: watch::Receiver<bool>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the control event loop: no discovery, health checks or admin");
            return;
        }
    };
    runtime.block_on(async move {
        let mut tasks = JoinSet::new();
        let mut admin: Option<Serving> = None;
        let mut background = Background::default();
        loop {
            background.follow(&state.load(), &shutdown);
            tokio::select! {
                _ = stopped(&mut shutdown) => break,
                _ = swaps.changed() => {}
                _ = tokio::time::sleep(FOLLOW_EVERY) => {}
                Some(command) = commands.recv() => {
                    // The new socket serves before the old one stops accepting;
                    // the old one's connections close after their request.
                    let next = match command {
                        AdminCommand::Serve { listener, limits, .. } => api.serve(listener, limits, &mut tasks),
                        AdminCommand::Limits(limits) => match admin.as_ref().map(|a| a.socket.try_clone()) {
                            Some(Ok(socket)) => api.serve(socket, limits, &mut tasks),
                            Some(Err(e)) => {
                                tracing::error!(error = %e, "cannot apply the new [admin] limits");
                                continue;
                            }
                            None => None,
                        },
                        AdminCommand::Stop => None,
                    };
                    if let Some(old) = std::mem::replace(&mut admin, next) {
                        old.stop.send_replace(true);
                    }
                }
            }
        }
        if let Some(admin) = admin {
            admin.stop.send_replace(true);
        }
        background.finish().await;
        while tasks.join_next().await.is_some() {}
    });
}

/// The discovery and health-check tasks of each upstream being served.
#[derive(Default)]
struct Background {
    /// The state they were last matched to.
    seen: Option<Arc<State>>,
    /// By upstream (its address: an upstream rebuilt by a reload is a new one).
    running: Vec<(Arc<Upstream>, Vec<JoinHandle<()>>)>,
}

impl Background {
    /// Starts the tasks of upstreams new in `state`, stops those of upstreams
    /// it no longer has.
    fn follow(&mut self, state: &Arc<State>, shutdown: &watch::Receiver<bool>) {
        if self.seen.as_ref().is_some_and(|seen| Arc::ptr_eq(seen, state)) {
            return;
        }
        self.seen = Some(state.clone());
        self.running.retain(|(upstream, tasks)| {
            let kept = state.upstreams.iter().any(|u| Arc::ptr_eq(u, upstream));
            if !kept {
                for task in tasks {
                    task.abort();
                }
            }
            kept
        });
        for upstream in &state.upstreams {
            if self.running.iter().any(|(u, _)| Arc::ptr_eq(u, upstream)) {
                continue;
            }
            let mut tasks = Vec::new();
            if upstream.config.discovery.is_some() {
                tasks.push(tokio::spawn(crate::discovery::run(upstream.clone(), shutdown.clone())));
            }
            if let Some(check) = upstream.config.health_check.clone() {
                tasks.push(tokio::spawn(crate::health::run(upstream.clone(), check, shutdown.clone())));
            }
            if !tasks.is_empty() {
                self.running.push((upstream.clone(), tasks));
            }
        }
    }

    /// Waits for every task to end (after shutdown).
    async fn finish(self) {
        for (_, tasks) in self.running {
            for task in tasks {
                let _ = task.await;
            }
        }
    }
}
