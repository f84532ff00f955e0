//! The control plane: one thread with its own event loop for what is not per
//! request — ZooKeeper watches, health checks and the admin listener. Request
//! workers never wait on it; it changes what they see only by publishing new
//! target snapshots.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use arc_swap::ArcSwap;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::admin::Admin;
use crate::config::Config;
use crate::reload::Reloader;
use crate::server::BindError;
use crate::state::State;

pub struct Control {
    thread: Option<JoinHandle<()>>,
    /// Where the admin listener is bound, when configured.
    admin: Option<SocketAddr>,
}

impl Control {
    /// Binds the admin listener (so a bad address fails the start) and starts the
    /// control thread when anything needs it. It stops when `shutdown` turns true.
    /// `listeners` are the bound listeners' names and addresses, for the admin API.
    pub fn start(
        config: &Config,
        state: &Arc<ArcSwap<State>>,
        reloader: &Arc<Reloader>,
        listeners: &[(String, SocketAddr)],
        shutdown: watch::Receiver<bool>,
    ) -> Result<Control, BindError> {
        let admin = match &config.admin {
            Some(admin) => {
                let fail = |reason| BindError::Listen { listener: "admin".into(), address: admin.address, reason };
                let listener = std::net::TcpListener::bind(admin.address).map_err(fail)?;
                listener.set_nonblocking(true).map_err(fail)?;
                let address = listener.local_addr().map_err(fail)?;
                let api = Admin {
                    state: state.clone(),
                    reloader: reloader.clone(),
                    listeners: listeners.to_vec(),
                    limits: admin.limits,
                };
                Some((listener, address, Arc::new(api)))
            }
            None => None,
        };
        let admin_addr = admin.as_ref().map(|(_, address, _)| *address);
        let snapshot = state.load_full();
        let busy = snapshot
            .upstreams
            .iter()
            .any(|u| u.config.discovery.is_some() || u.config.health_check.is_some());
        if !busy && admin.is_none() {
            return Ok(Control { thread: None, admin: None });
        }
        let thread = std::thread::Builder::new()
            .name("wasmgate-control".into())
            .spawn(move || run(snapshot, admin.map(|(listener, _, api)| (listener, api)), shutdown))
            .map_err(|e| BindError::Worker(e.to_string()))?;
        Ok(Control { thread: Some(thread), admin: admin_addr })
    }

    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin
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

fn run(snapshot: Arc<State>, admin: Option<(std::net::TcpListener, Arc<Admin>)>, shutdown: watch::Receiver<bool>) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the control event loop: no discovery, health checks or admin");
            return;
        }
    };
    runtime.block_on(async move {
        let mut tasks = JoinSet::new();
        for upstream in &snapshot.upstreams {
            if upstream.config.discovery.is_some() {
                tasks.spawn(crate::discovery::run(upstream.clone(), shutdown.clone()));
            }
            if let Some(check) = upstream.config.health_check.clone() {
                tasks.spawn(crate::health::run(upstream.clone(), check, shutdown.clone()));
            }
        }
        if let Some((listener, api)) = admin {
            tasks.spawn(crate::admin::serve(listener, api, shutdown.clone()));
        }
        while tasks.join_next().await.is_some() {}
    });
}
