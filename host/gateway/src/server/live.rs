//! Listeners a reload adds, removes and moves. Accept loops are keyed by the
//! listener's name, not its place in the config: each connection finds its
//! listener's index (and limits, TLS, metrics) in the state current when it is
//! accepted. A reload binds what is new before the state is swapped in (a bind
//! failure refuses the reload and changes nothing), then hands each worker its
//! new sockets over a channel and tells the accept loops of removed or moved
//! listeners to stop accepting and drain.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use super::bind::{self, BindError};
use crate::config::{AdminLimits, Config};
use crate::control::{AdminCommand, AdminHandle};
use crate::reload::diff::{Change, Diff};
use crate::state::State;

/// A listening socket for one worker, and the listener it accepts for.
pub(super) type Listen = (Arc<ListenerShared>, std::net::TcpListener);

/// Listener names and bound addresses (port 0 resolved), in config order.
pub type Addresses = Arc<ArcSwap<Vec<(String, SocketAddr)>>>;

/// What every worker's accept loop for one listener (at one address) shares.
pub(super) struct ListenerShared {
    /// The state's `Arc` of the name, so the per-request check is a pointer compare.
    pub name: Arc<str>,
    /// One permit per open connection, across all workers (`max_connections`);
    /// kept when the listener moves to another address.
    pub permits: Arc<Permits>,
    /// Accept failures, logged at a bounded rate across all workers.
    pub accept_errors: crate::accept::ErrorLog,
    /// Turns true when a reload removes or moves the listener: stop accepting, drain.
    pub retire: watch::Sender<bool>,
    /// Its sockets went on to another listener (a rename): retired, it leaves
    /// their backlog to that one.
    pub handed_over: AtomicBool,
    /// The last state that had this listener, set just before a reload removes
    /// it: what its draining connections serve their last requests with.
    pub last_state: ArcSwapOption<State>,
}

impl ListenerShared {
    fn new(name: Arc<str>, permits: Arc<Permits>) -> Arc<ListenerShared> {
        Arc::new(ListenerShared {
            accept_errors: crate::accept::ErrorLog::new(&name),
            name,
            permits,
            retire: watch::Sender::new(false),
            handed_over: AtomicBool::new(false),
            last_state: ArcSwapOption::empty(),
        })
    }

    /// The state a connection or request of this listener is served with and
    /// the listener's index in it: the current state, or, once a reload
    /// removed the listener, the last one that had it.
    pub fn resolve(&self, current: Arc<State>) -> Option<(Arc<State>, usize)> {
        if let Some(index) = current.listener_index(&self.name) {
            return Some((current, index));
        }
        let last = self.last_state.load_full()?;
        let index = last.listener_index(&self.name)?;
        Some((last, index))
    }
}

/// `max_connections` as a semaphore a reload can resize: growing adds
/// permits; shrinking takes free ones and owes the rest, paid by connections
/// as they close (a permit is then forgotten instead of returned).
pub(super) struct Permits {
    semaphore: Arc<Semaphore>,
    max: AtomicUsize,
    owed: AtomicUsize,
}

impl Permits {
    fn new(max: usize) -> Arc<Permits> {
        Arc::new(Permits { semaphore: Arc::new(Semaphore::new(max)), max: AtomicUsize::new(max), owed: AtomicUsize::new(0) })
    }

    pub async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().acquire_owned().await.ok()
    }

    /// A permit if one is free now.
    pub fn try_acquire(&self) -> Option<OwnedSemaphorePermit> {
        self.semaphore.clone().try_acquire_owned().ok()
    }

    /// A connection closed.
    pub fn release(&self, permit: OwnedSemaphorePermit) {
        if self.owed.load(Ordering::Relaxed) > 0 && self.owed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| o.checked_sub(1)).is_ok() {
            permit.forget();
        }
    }

    /// Called by reloads only (one at a time).
    fn resize(&self, max: usize) {
        let old = self.max.swap(max, Ordering::Relaxed);
        if max > old {
            let mut grow = max - old;
            let paid = self.owed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| Some(o - o.min(grow))).unwrap_or(0);
            grow -= paid.min(grow);
            self.semaphore.add_permits(grow);
        } else if old > max {
            let shrink = old - max;
            let taken = self.semaphore.forget_permits(shrink);
            self.owed.fetch_add(shrink - taken, Ordering::Relaxed);
        }
    }
}

/// One listener being served.
struct Running {
    /// The address as configured (port 0 stays 0): what a reload compares.
    configured: SocketAddr,
    bound: SocketAddr,
    shared: Arc<ListenerShared>,
    /// Duplicates of the workers' sockets: a listener that takes this address
    /// over (a rename, two listeners trading addresses) gets the very same
    /// sockets, so nothing waiting in their backlog is lost.
    sockets: Vec<std::net::TcpListener>,
}

/// The listeners being served, and the way to the workers.
pub struct Listeners {
    workers: Vec<mpsc::UnboundedSender<Listen>>,
    running: Mutex<Vec<Running>>,
    addresses: Addresses,
    /// Accept loops still holding their listening socket (for shutdown).
    open: watch::Sender<usize>,
    admin: AdminHandle,
}

/// A listener's sockets, bound and not yet served.
struct ToServe {
    name: String,
    configured: SocketAddr,
    bound: SocketAddr,
    /// Per worker: its socket and the duplicate kept.
    sockets: Vec<(std::net::TcpListener, std::net::TcpListener)>,
}

/// What a reload bound (or took over) before its state is swapped in.
pub struct Prepared {
    listeners: Vec<ToServe>,
    admin: Option<AdminCommand>,
    /// Listeners whose sockets the new ones take over.
    handed_over: Vec<Arc<ListenerShared>>,
}

impl Listeners {
    /// The listeners of the first state, bound at start; returns each worker's
    /// channel, on which its first sockets are already waiting.
    pub(super) fn start(
        config: &Config,
        bound: Vec<bind::Bound>,
        state: &State,
        addresses: Addresses,
        open: watch::Sender<usize>,
        admin: AdminHandle,
    ) -> Result<(Arc<Listeners>, Vec<mpsc::UnboundedReceiver<Listen>>), BindError> {
        let workers = config.runtime.workers;
        let (senders, receivers) = (0..workers).map(|_| mpsc::unbounded_channel()).unzip();
        let listeners = Arc::new(Listeners { workers: senders, running: Mutex::new(Vec::new()), addresses, open, admin });
        let prepared = Prepared {
            listeners: config
                .listeners
                .iter()
                .zip(bound)
                .map(|(l, b)| {
                    let sockets = duplicates(&l.name, b.address, b.sockets)?;
                    Ok(ToServe { name: l.name.clone(), configured: l.address, bound: b.address, sockets })
                })
                .collect::<Result<_, BindError>>()?,
            admin: None,
            handed_over: Vec::new(),
        };
        listeners.commit(prepared, state);
        Ok((listeners, receivers))
    }

    /// At shutdown: closes the duplicates kept for reloads, so that the
    /// sockets close with their accept loops.
    pub fn close(&self) {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for r in running.iter_mut() {
            r.sockets.clear();
        }
    }

    /// Binds what `diff` adds or moves (listeners, the admin listener) for
    /// `new`, without serving them yet. On error nothing changed. `previous`:
    /// the state being replaced, which removed listeners drain with.
    pub fn prepare(&self, diff: &Diff, new: &Config, previous: &Arc<State>) -> Result<Prepared, BindError> {
        let running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let workers = self.workers.len();
        // Addresses this reload gives up: a listener taking one takes its sockets.
        let given_up: Vec<&Running> = running
            .iter()
            .filter(|r| diff.changes.iter().any(|c| matches!(c, Change::ListenerRemoved { name, .. } | Change::ListenerMoved { name, .. } if **name == *r.shared.name)))
            .collect();
        let mut prepared = Prepared { listeners: Vec::new(), admin: None, handed_over: Vec::new() };
        for change in &diff.changes {
            let (name, address) = match change {
                Change::ListenerAdded { name, address } => (name, *address),
                Change::ListenerMoved { name, to, .. } => (name, *to),
                Change::AdminAdded(address) | Change::AdminMoved { to: address, .. } => {
                    let limits = new.admin.as_ref().map(|a| a.limits).unwrap_or_default();
                    prepared.admin = Some(bind_admin(*address, limits)?);
                    continue;
                }
                Change::AdminLimitsChanged => {
                    if prepared.admin.is_none() {
                        prepared.admin = Some(AdminCommand::Limits(new.admin.as_ref().map(|a| a.limits).unwrap_or_default()));
                    }
                    continue;
                }
                Change::AdminRemoved => {
                    prepared.admin = Some(AdminCommand::Stop);
                    continue;
                }
                _ => continue,
            };
            let Some(config) = new.listener(name).map(|i| &new.listeners[i]) else { continue };
            let taken = given_up.iter().find(|r| address.port() != 0 && r.configured == address);
            let (bound, sockets) = match taken {
                Some(r) => {
                    prepared.handed_over.push(r.shared.clone());
                    let copies = r.sockets.iter().map(|s| s.try_clone()).collect::<Result<Vec<_>, _>>();
                    let copies = copies.map_err(|reason| BindError::Listen { listener: name.clone(), address, reason })?;
                    (r.bound, copies)
                }
                None => {
                    let mut bound = bind::bind_all(std::slice::from_ref(config), workers)?;
                    let b = bound.pop().ok_or_else(|| BindError::Worker("no socket bound".into()))?;
                    (b.address, b.sockets)
                }
            };
            let sockets = duplicates(name, bound, sockets)?;
            prepared.listeners.push(ToServe { name: name.clone(), configured: address, bound, sockets });
        }
        // Nothing can fail from here: removed listeners learn the state they drain with.
        for r in running.iter() {
            if new.listener(&r.shared.name).is_none() {
                r.shared.last_state.store(Some(previous.clone()));
            }
        }
        Ok(prepared)
    }

    /// Serves what `prepared` bound and retires what the new state no longer
    /// has at that address; `state` is the new state, already swapped in.
    pub fn commit(&self, prepared: Prepared, state: &State) {
        let mut running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for shared in &prepared.handed_over {
            shared.handed_over.store(true, Ordering::Relaxed);
        }
        for ToServe { name, configured, bound, sockets } in prepared.listeners {
            let Some(index) = state.listener_index(&name) else { continue };
            let replaced = running.iter().position(|r| *r.shared.name == *name).map(|i| running.remove(i));
            let permits = match &replaced {
                Some(old) => old.shared.permits.clone(),
                None => Permits::new(state.limits(index).max_connections),
            };
            let shared = ListenerShared::new(state.listener_name(index), permits);
            let mut kept = Vec::with_capacity(sockets.len());
            self.open.send_modify(|n| *n += sockets.len());
            // One socket per worker (`bind_all`; a hand-over takes as many).
            for (worker, (socket, copy)) in sockets.into_iter().enumerate() {
                kept.push(copy);
                let sent = self.workers.get(worker).map(|sender| sender.send((shared.clone(), socket)));
                if !matches!(sent, Some(Ok(()))) {
                    // That worker has stopped (shutdown): the socket closes here.
                    self.open.send_modify(|n| *n = n.saturating_sub(1));
                }
            }
            running.push(Running { configured, bound, shared, sockets: kept });
            if let Some(old) = replaced {
                old.shared.retire.send_replace(true);
            }
        }
        running.retain(|r| {
            let kept = state.listener_index(&r.shared.name).is_some();
            if !kept {
                r.shared.retire.send_replace(true);
            }
            kept
        });
        for r in running.iter() {
            if let Some(index) = state.listener_index(&r.shared.name) {
                r.shared.permits.resize(state.limits(index).max_connections);
            }
        }
        running.sort_by_key(|r| state.listener_index(&r.shared.name));
        self.addresses.store(Arc::new(running.iter().map(|r| (r.shared.name.to_string(), r.bound)).collect()));
        if let Some(command) = prepared.admin {
            self.admin.send(command);
        }
    }
}

/// Each socket with a duplicate of itself to keep.
fn duplicates(
    name: &str,
    address: SocketAddr,
    sockets: Vec<std::net::TcpListener>,
) -> Result<Vec<(std::net::TcpListener, std::net::TcpListener)>, BindError> {
    sockets
        .into_iter()
        .map(|s| {
            let copy = s.try_clone().map_err(|reason| BindError::Listen { listener: name.to_owned(), address, reason })?;
            Ok((s, copy))
        })
        .collect()
}

fn bind_admin(address: SocketAddr, limits: AdminLimits) -> Result<AdminCommand, BindError> {
    let fail = |reason| BindError::Listen { listener: "admin".into(), address, reason };
    let listener = std::net::TcpListener::bind(address).map_err(fail)?;
    listener.set_nonblocking(true).map_err(fail)?;
    let bound = listener.local_addr().map_err(fail)?;
    Ok(AdminCommand::Serve { listener, address: bound, limits })
}
