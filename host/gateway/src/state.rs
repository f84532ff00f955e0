//! Everything a request reads, built from one validated config. A reload builds a
//! new `State` off the hot path and swaps it in whole; requests in flight keep the
//! one they started with.

use std::sync::Arc;

use crate::config::{Config, Limits, ListenerProtocol, TcpProxy};
use wasmgate_plugin::Chain;

use crate::metrics::{Carried, GatewayMetrics, ListenerMetrics};
use crate::plugins::{Plugins, PluginsError};
use crate::request_target::PathRules;
use crate::router::{route_from_config, Route, Router};
use crate::telemetry::Tracer;
use crate::upstream::Upstream;

pub struct State {
    /// One router per listener, in config order.
    routers: Vec<Router>,
    pub upstreams: Vec<Arc<Upstream>>,
    /// Whether each request writes an access log line.
    pub access_log: bool,
    /// How long connections get to finish when their listener stops (shutdown, reload).
    pub drain_timeout: std::time::Duration,
    /// What each listener speaks, in config order; TLS certificates live here so
    /// that a new state (a reload) brings new ones to the next handshake.
    protocols: Vec<ListenerProtocol>,
    /// Listener names in config order. A listener the previous state had keeps
    /// its `Arc`, so a connection checks its listener's index with a pointer compare.
    listener_names: Vec<Arc<str>>,
    /// What each listener's new connections may cost, in config order.
    limits: Vec<Limits>,
    /// Each listener's block, carried by name across reloads (none when metrics are off).
    listener_metrics: Vec<Option<Arc<ListenerMetrics>>>,
    /// How each listener normalises request paths, in config order.
    path_rules: Vec<PathRules>,
    /// The gateway's metrics beyond routes, upstreams and plugins (shared by
    /// every state of one gateway).
    pub metrics: Arc<GatewayMetrics>,
    /// Trace sampling and export, with `[tracing]`.
    pub tracer: Option<Tracer>,
}

impl State {
    /// Builds the state for `config`. Plugin chains come from `plugins` (which a
    /// config with plugin routes must have). Upstreams of `previous` whose config
    /// is unchanged are carried over, with their discovered targets, health and
    /// breakers; a changed upstream starts afresh but for its drained targets.
    pub fn build(config: &Config, mut plugins: Option<&mut Plugins>, previous: Option<&State>) -> Result<State, PluginsError> {
        let metrics = crate::metrics::gateway(config, previous);
        let mut carried = Carried::from(&metrics, previous);
        let upstreams: Vec<Arc<Upstream>> = config
            .upstreams
            .iter()
            .map(|u| {
                previous
                    .and_then(|p| p.upstream(&u.name))
                    .filter(|old| crate::reload::diff::same_upstream(&old.config, u))
                    .cloned()
                    .unwrap_or_else(|| {
                        let replaced = previous.and_then(|p| p.upstream(&u.name));
                        let mut upstream = Upstream::succeeding(u.clone(), replaced.map(|p| &**p));
                        if let Some(block) = carried.upstream(replaced.map(|p| &**p)) {
                            upstream.set_metrics(block);
                        }
                        Arc::new(upstream)
                    })
            })
            .collect();
        let mut routers = Vec::with_capacity(config.listeners.len());
        for listener in 0..config.listeners.len() {
            let mut routes = Vec::new();
            for (index, r) in config.routes.iter().enumerate().filter(|(_, r)| r.listener == listener) {
                let chain = match (&mut plugins, r.plugins.is_empty()) {
                    (_, true) => Chain::default(),
                    (Some(plugins), false) => plugins.chain(config, index)?,
                    (None, false) => {
                        let reason = "the route has plugins but no [plugins] runtime was started";
                        return Err(PluginsError::Route(config.route_error(index, "plugins", reason)));
                    }
                };
                let chain = carried.chain(&r.name, chain);
                let mut route = route_from_config(r, upstreams[r.upstream].clone(), chain);
                route.metrics = carried.route(&r.name);
                routes.push(route);
            }
            routers.push(Router::new(routes));
        }
        let protocols = config.listeners.iter().map(|l| l.protocol.clone()).collect();
        let listener_names: Vec<Arc<str>> = config
            .listeners
            .iter()
            .map(|l| {
                let kept = previous.and_then(|p| p.listener_names.iter().find(|n| ***n == *l.name));
                kept.cloned().unwrap_or_else(|| Arc::from(l.name.as_str()))
            })
            .collect();
        let limits = config.listeners.iter().map(|l| l.limits).collect();
        let listener_metrics = listener_names.iter().map(|name| carried.listener(name)).collect();
        let path_rules = config.listeners.iter().map(|l| l.path_rules).collect();
        let tracer = config.tracing.as_ref().map(|c| Tracer::from_config(c, previous.and_then(|p| p.tracer.as_ref())));
        Ok(State {
            routers,
            upstreams,
            access_log: config.log.access,
            drain_timeout: config.runtime.drain_timeout,
            protocols,
            listener_names,
            limits,
            listener_metrics,
            path_rules,
            metrics,
            tracer,
        })
    }

    /// Every route with its listener's index.
    pub fn routes(&self) -> impl Iterator<Item = (usize, &Route)> {
        self.routers.iter().enumerate().flat_map(|(listener, router)| router.routes().iter().map(move |r| (listener, r)))
    }

    pub fn listener_count(&self) -> usize {
        self.listener_names.len()
    }

    /// A listener's name, for plugins' request context.
    pub fn listener_name(&self, listener: usize) -> Arc<str> {
        self.listener_names.get(listener).cloned().unwrap_or_else(|| Arc::from(""))
    }

    /// Where the listener named `name` is in this state (a reload may move it or remove it).
    pub fn listener_index(&self, name: &str) -> Option<usize> {
        self.listener_names.iter().position(|n| **n == *name)
    }

    /// Whether listener `index` is `name`: a pointer compare while the
    /// listener is still where the connection found it.
    pub fn listener_is(&self, index: usize, name: &Arc<str>) -> bool {
        self.listener_names.get(index).is_some_and(|n| Arc::ptr_eq(n, name) || n == name)
    }

    /// What a listener's new connections may cost.
    pub fn limits(&self, listener: usize) -> Limits {
        self.limits.get(listener).copied().unwrap_or_default()
    }

    /// A listener's metrics block (none when recording is off).
    pub fn listener_metrics(&self, listener: usize) -> Option<&Arc<ListenerMetrics>> {
        self.listener_metrics.get(listener)?.as_ref()
    }

    /// A listener's path normalisation rules.
    pub fn path_rules(&self, listener: usize) -> PathRules {
        self.path_rules.get(listener).copied().unwrap_or_default()
    }

    pub fn router(&self, listener: usize) -> &Router {
        static EMPTY: std::sync::OnceLock<Router> = std::sync::OnceLock::new();
        self.routers.get(listener).unwrap_or_else(|| EMPTY.get_or_init(Router::default))
    }

    pub fn upstream(&self, name: &str) -> Option<&Arc<Upstream>> {
        self.upstreams.iter().find(|u| u.name() == name)
    }

    /// A `tcp` listener's upstream and settings.
    pub fn tcp(&self, listener: usize) -> Option<(&Arc<Upstream>, &TcpProxy)> {
        match self.protocols.get(listener)? {
            ListenerProtocol::Tcp(tcp) => Some((self.upstreams.get(tcp.upstream)?, tcp)),
            _ => None,
        }
    }

    /// An `https` listener's certificates: their server names and expiry (Unix seconds).
    pub fn certificates(&self, listener: usize) -> &[(Vec<String>, i64)] {
        match self.protocols.get(listener) {
            Some(ListenerProtocol::Https(tls)) => &tls.expiries,
            _ => &[],
        }
    }

    /// An `https` listener's TLS settings.
    pub fn tls(&self, listener: usize) -> Option<&Arc<rustls::ServerConfig>> {
        match self.protocols.get(listener)? {
            ListenerProtocol::Https(tls) => Some(&tls.config),
            _ => None,
        }
    }
}
