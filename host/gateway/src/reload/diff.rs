//! What a reload changes: the running and the new validated config compared
//! item by item, by name (listeners, routes, upstreams, plugins, the admin
//! listener, settings). The reload refuses what `NeedsRestart` names and
//! applies the rest; `tests/diff/` holds the table of (old, new) → changes.

use std::fmt;
use std::net::SocketAddr;

use crate::config::{Config, ListenerConfig, ListenerProtocol, PluginsConfig, RouteConfig, UpstreamConfig};

/// One change between two configs. Its `Display` is the line `tests/diff/*/expect.txt` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Bound before the new state is swapped in.
    ListenerAdded { name: String, address: SocketAddr },
    /// Stops accepting; its connections close between requests, within `drain_timeout`.
    ListenerRemoved { name: String, address: SocketAddr },
    /// The new address is bound first, then the old one drains.
    ListenerMoved { name: String, from: SocketAddr, to: SocketAddr },
    /// Its protocol, certificates, limits or path rules: new connections get them.
    ListenerChanged { name: String, what: Vec<&'static str> },
    RouteAdded(String),
    RouteRemoved(String),
    RouteChanged(String),
    UpstreamAdded(String),
    UpstreamRemoved(String),
    /// Rebuilt with what the old one knew (targets, health); its discovery and
    /// checks restart on the control thread.
    UpstreamChanged { name: String, what: Vec<&'static str> },
    /// A plugin some route names now and none did before.
    PluginAdded(String),
    PluginRemoved(String),
    /// `[plugins]` (or `[state]`) settings, or the section added or removed.
    PluginRuntimeChanged,
    AdminAdded(SocketAddr),
    AdminRemoved,
    /// Bound before the old admin socket closes.
    AdminMoved { from: SocketAddr, to: SocketAddr },
    AdminLimitsChanged,
    /// Read from the new state as it is swapped in (log level, tracing, …).
    Setting(&'static str),
    /// Cannot change in a running process.
    NeedsRestart(&'static str),
}

/// Every change from one config to the next, in a stable order: listeners,
/// routes, upstreams, plugins, admin, settings (each in config order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub changes: Vec<Change>,
}

impl Diff {
    pub fn of(old: &Config, new: &Config) -> Diff {
        let mut changes = Vec::new();
        listeners(old, new, &mut changes);
        routes(old, new, &mut changes);
        upstreams(old, new, &mut changes);
        plugins(old.plugins.as_ref(), new.plugins.as_ref(), &mut changes);
        admin(old, new, &mut changes);
        settings(old, new, &mut changes);
        Diff { changes }
    }

    /// The first change a running process cannot apply, as the refusal says it.
    pub fn needs_restart(&self) -> Option<&'static str> {
        self.changes.iter().find_map(|c| match c {
            Change::NeedsRestart(what) => Some(*what),
            _ => None,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

impl fmt::Display for Diff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::ListenerAdded { name, address } => write!(f, "listener {name:?} added at {address}"),
            Change::ListenerRemoved { name, address } => write!(f, "listener {name:?} removed from {address}"),
            Change::ListenerMoved { name, from, to } => write!(f, "listener {name:?} moved from {from} to {to}"),
            Change::ListenerChanged { name, what } => write!(f, "listener {name:?} changed: {}", what.join(", ")),
            Change::RouteAdded(name) => write!(f, "route {name:?} added"),
            Change::RouteRemoved(name) => write!(f, "route {name:?} removed"),
            Change::RouteChanged(name) => write!(f, "route {name:?} changed"),
            Change::UpstreamAdded(name) => write!(f, "upstream {name:?} added"),
            Change::UpstreamRemoved(name) => write!(f, "upstream {name:?} removed"),
            Change::UpstreamChanged { name, what } => write!(f, "upstream {name:?} changed: {}", what.join(", ")),
            Change::PluginAdded(name) => write!(f, "plugin {name:?} added"),
            Change::PluginRemoved(name) => write!(f, "plugin {name:?} removed"),
            Change::PluginRuntimeChanged => write!(f, "[plugins] changed"),
            Change::AdminAdded(address) => write!(f, "[admin] added at {address}"),
            Change::AdminRemoved => write!(f, "[admin] removed"),
            Change::AdminMoved { from, to } => write!(f, "[admin] moved from {from} to {to}"),
            Change::AdminLimitsChanged => write!(f, "[admin] limits changed"),
            Change::Setting(what) => write!(f, "{what} changed"),
            Change::NeedsRestart(what) => write!(f, "needs a restart: {what}"),
        }
    }
}

fn listeners(old: &Config, new: &Config, changes: &mut Vec<Change>) {
    for o in &old.listeners {
        if new.listener(&o.name).is_none() {
            changes.push(Change::ListenerRemoved { name: o.name.clone(), address: o.address });
        }
    }
    for n in &new.listeners {
        let Some(o) = old.listener(&n.name).map(|i| &old.listeners[i]) else {
            changes.push(Change::ListenerAdded { name: n.name.clone(), address: n.address });
            continue;
        };
        if o.address != n.address {
            changes.push(Change::ListenerMoved { name: n.name.clone(), from: o.address, to: n.address });
        }
        let what = listener_changes(old, o, new, n);
        if !what.is_empty() {
            changes.push(Change::ListenerChanged { name: n.name.clone(), what });
        }
    }
}

/// What differs between two listeners of one name, besides the address.
fn listener_changes(old: &Config, o: &ListenerConfig, new: &Config, n: &ListenerConfig) -> Vec<&'static str> {
    let mut what = Vec::new();
    match (&o.protocol, &n.protocol) {
        (ListenerProtocol::Http, ListenerProtocol::Http) => {}
        // Certificates are compared by what they say (names, expiry): a file
        // rewritten with the same certificate is no change.
        (ListenerProtocol::Https(a), ListenerProtocol::Https(b)) => {
            if a.expiries != b.expiries {
                what.push("certificates");
            }
        }
        (ListenerProtocol::Tcp(a), ListenerProtocol::Tcp(b)) => {
            let upstream = |c: &Config, i: usize| c.upstreams.get(i).map(|u| u.name.clone());
            if upstream(old, a.upstream) != upstream(new, b.upstream) || a.proxy_protocol != b.proxy_protocol {
                what.push("tcp");
            }
        }
        _ => what.push("protocol"),
    }
    if o.limits != n.limits {
        what.push("limits");
    }
    if o.path_rules != n.path_rules {
        what.push("path rules");
    }
    what
}

fn routes(old: &Config, new: &Config, changes: &mut Vec<Change>) {
    let find = |c: &'_ Config, name: &str| c.routes.iter().position(|r| r.name == name);
    for o in &old.routes {
        if find(new, &o.name).is_none() {
            changes.push(Change::RouteRemoved(o.name.clone()));
        }
    }
    for n in &new.routes {
        match find(old, &n.name) {
            None => changes.push(Change::RouteAdded(n.name.clone())),
            Some(i) if !same_route(old, &old.routes[i], new, n) => changes.push(Change::RouteChanged(n.name.clone())),
            Some(_) => {}
        }
    }
}

/// Two routes are the same when they say the same, with their listener and
/// upstream compared by name (indexes move when others are added or removed).
fn same_route(old: &Config, o: &RouteConfig, new: &Config, n: &RouteConfig) -> bool {
    let names = |c: &Config, r: &RouteConfig| {
        (c.listeners.get(r.listener).map(|l| l.name.clone()), c.upstreams.get(r.upstream).map(|u| u.name.clone()))
    };
    let unindexed = |r: &RouteConfig| format!("{:?}", RouteConfig { listener: 0, upstream: 0, ..r.clone() });
    names(old, o) == names(new, n) && unindexed(o) == unindexed(n)
}

fn upstreams(old: &Config, new: &Config, changes: &mut Vec<Change>) {
    let find = |c: &'_ Config, name: &str| c.upstreams.iter().position(|u| u.name == name);
    for o in &old.upstreams {
        if find(new, &o.name).is_none() {
            changes.push(Change::UpstreamRemoved(o.name.clone()));
        }
    }
    for n in &new.upstreams {
        match find(old, &n.name) {
            None => changes.push(Change::UpstreamAdded(n.name.clone())),
            Some(i) => {
                let what = upstream_changes(&old.upstreams[i], n);
                if !what.is_empty() {
                    changes.push(Change::UpstreamChanged { name: n.name.clone(), what });
                }
            }
        }
    }
}

/// Whether a running upstream can be kept as it is (with its targets,
/// health and breakers) for `new`: the one definition `State::build` uses.
pub fn same_upstream(old: &UpstreamConfig, new: &UpstreamConfig) -> bool {
    upstream_changes(old, new).is_empty()
}

/// The parts of an upstream that differ. TLS client settings hold no
/// comparable value, so they are compared as they print (as are the rest).
fn upstream_changes(o: &UpstreamConfig, n: &UpstreamConfig) -> Vec<&'static str> {
    let mut what = Vec::new();
    macro_rules! field {
        ($field:ident, $label:literal) => {
            if format!("{:?}", o.$field) != format!("{:?}", n.$field) {
                what.push($label);
            }
        };
    }
    field!(discovery, "discovery");
    field!(health_check, "health_check");
    field!(targets, "targets");
    field!(balance, "balance");
    field!(timeouts, "timeouts");
    field!(retries, "retries");
    field!(host_header, "pass_host");
    field!(keepalive, "keepalive");
    field!(circuit_breaker, "circuit_breaker");
    field!(max_concurrent_requests, "max_concurrent_requests");
    field!(protocol, "protocol");
    field!(tls, "tls");
    what
}

fn plugins(old: Option<&PluginsConfig>, new: Option<&PluginsConfig>, changes: &mut Vec<Change>) {
    let used = |p: Option<&PluginsConfig>| p.map(|p| p.used.clone()).unwrap_or_default();
    let (was, is) = (used(old), used(new));
    for name in was.difference(&is) {
        changes.push(Change::PluginRemoved(name.clone()));
    }
    for name in is.difference(&was) {
        changes.push(Change::PluginAdded(name.clone()));
    }
    let runtime = |p: Option<&PluginsConfig>| p.map(|p| PluginsConfig { used: Default::default(), ..p.clone() });
    if runtime(old) != runtime(new) {
        changes.push(Change::PluginRuntimeChanged);
    }
}

fn admin(old: &Config, new: &Config, changes: &mut Vec<Change>) {
    match (&old.admin, &new.admin) {
        (None, None) => {}
        (None, Some(n)) => changes.push(Change::AdminAdded(n.address)),
        (Some(_), None) => changes.push(Change::AdminRemoved),
        (Some(o), Some(n)) => {
            if o.address != n.address {
                changes.push(Change::AdminMoved { from: o.address, to: n.address });
            }
            if o.limits != n.limits {
                changes.push(Change::AdminLimitsChanged);
            }
            if o.token != n.token {
                changes.push(Change::Setting("[admin] token"));
            }
            if o.show_plugin_config != n.show_plugin_config {
                changes.push(Change::Setting("[admin] show_plugin_config"));
            }
        }
    }
}

fn settings(old: &Config, new: &Config, changes: &mut Vec<Change>) {
    let mut setting = |changed: bool, change: Change| {
        if changed {
            changes.push(change);
        }
    };
    setting(old.log.level != new.log.level, Change::Setting("[log] level"));
    setting(old.log.access != new.log.access, Change::Setting("[log] access"));
    setting(old.runtime.drain_timeout != new.runtime.drain_timeout, Change::Setting("runtime.drain_timeout"));
    setting(old.security != new.security, Change::Setting("[security]"));
    setting(old.tracing != new.tracing, Change::Setting("[tracing]"));
    setting(old.cluster != new.cluster, Change::Setting("[cluster]"));
    // What a running process cannot change: its worker threads, and how it
    // counts and logs (set once, process-wide, at start).
    setting(old.runtime.workers != new.runtime.workers, Change::NeedsRestart("runtime.workers changed"));
    setting(old.metrics != new.metrics, Change::NeedsRestart("[metrics] changed"));
    setting(old.log.format != new.log.format, Change::NeedsRestart("[log] format changed"));
}
