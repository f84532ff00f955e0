//! Resolving blocks when a state is built: a listener, a route, an upstream or
//! a (route, plugin) pair that the previous state had under the same name keeps its
//! block (its counters go on), anything new gets a fresh one, and the blocks of
//! what the new config dropped stay with the old state until it is dropped.

use std::collections::HashMap;
use std::sync::Arc;

use wasmgate_plugin::metrics::PluginCalls;
use wasmgate_plugin::Chain;

use super::{GatewayMetrics, ListenerMetrics, RouteMetrics, UpstreamMetrics};
use crate::config::Config;
use crate::state::State;

/// The gateway's block: the previous state's, or a new one for a first state.
pub fn gateway(config: &Config, previous: Option<&State>) -> Arc<GatewayMetrics> {
    match previous {
        Some(previous) => previous.metrics.clone(),
        None => Arc::new(GatewayMetrics::new(
            config.metrics.enabled,
            config.runtime.workers,
            crate::config::config_hash(config),
        )),
    }
}

/// The blocks of the previous state, by name.
pub struct Carried {
    metrics: Arc<GatewayMetrics>,
    routes: HashMap<Arc<str>, Arc<RouteMetrics>>,
    listeners: HashMap<Arc<str>, Arc<ListenerMetrics>>,
    plugins: HashMap<(Arc<str>, String), Arc<PluginCalls>>,
}

impl Carried {
    pub fn from(metrics: &Arc<GatewayMetrics>, previous: Option<&State>) -> Carried {
        let mut routes = HashMap::new();
        let mut plugins = HashMap::new();
        for (_, route) in previous.into_iter().flat_map(State::routes) {
            if let Some(block) = &route.metrics {
                routes.insert(route.name.clone(), block.clone());
            }
            let blocks = route.chain.metrics().unwrap_or_default();
            for (plugin, block) in route.chain.plugins().iter().zip(blocks) {
                plugins.insert((route.name.clone(), plugin.name().to_owned()), block.clone());
            }
        }
        let listeners = previous
            .into_iter()
            .flat_map(|p| (0..p.listener_count()).filter_map(move |i| Some((p.listener_name(i), p.listener_metrics(i)?.clone()))))
            .collect();
        Carried { metrics: metrics.clone(), routes, listeners, plugins }
    }

    /// A listener's block: the one a listener of that name had, or a new one.
    pub fn listener(&self, name: &str) -> Option<Arc<ListenerMetrics>> {
        self.listeners.get(name).cloned().or_else(|| self.metrics.block(ListenerMetrics::new))
    }

    /// A route's block.
    pub fn route(&self, name: &str) -> Option<Arc<RouteMetrics>> {
        self.routes.get(name).cloned().or_else(|| self.metrics.block(RouteMetrics::new))
    }

    /// An upstream's block: the one it replaces had, or a new one.
    pub fn upstream(&self, replaced: Option<&crate::upstream::Upstream>) -> Option<Arc<UpstreamMetrics>> {
        replaced.and_then(|u| u.metrics().cloned()).or_else(|| self.metrics.block(UpstreamMetrics::new))
    }

    /// `chain` recording into its plugins' blocks on route `route`. A plugin
    /// the route lists twice records into one block (its series are per
    /// route and plugin).
    pub fn chain(&mut self, route: &str, chain: Chain) -> Chain {
        if !self.metrics.enabled() || chain.is_empty() {
            return chain;
        }
        let route: Arc<str> = route.into();
        let workers = self.metrics.workers();
        let blocks = chain
            .plugins()
            .iter()
            .map(|plugin| {
                let key = (route.clone(), plugin.name().to_owned());
                self.plugins.entry(key).or_insert_with(|| Arc::new(PluginCalls::new(workers))).clone()
            })
            .collect();
        chain.with_metrics(blocks)
    }
}
