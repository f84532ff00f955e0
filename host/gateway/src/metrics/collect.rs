//! A scrape: every block summed over its rows into plain values, then written
//! by `prometheus-client` through a `Collector`. Runs on the control thread;
//! the only locks taken are the control plane's (an upstream's membership, a
//! plugin's instance pool), never one a request waits on.

use std::collections::HashSet;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;
use wasmgate_metrics::HistogramSnapshot;
use wasmgate_plugin::metrics::{Outcome as PluginOutcome, Phase};

use super::{GatewayMetrics, Outcome, Source, CLASSES, TRANSITIONS};
use crate::breaker::BreakerState;
use crate::state::State;
use crate::upstream::Health;

type Labels = Vec<(&'static str, String)>;

#[derive(Debug)]
enum Value {
    Counter(u64),
    Gauge(i64),
    Float(f64),
    Histogram(HistogramSnapshot),
    /// An info metric: its labels say it all.
    Info,
}

#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    kind: MetricType,
    samples: Vec<(Labels, Value)>,
}

/// Everything one scrape shows.
#[derive(Debug, Default)]
pub struct Scrape {
    families: Vec<Family>,
}

impl Scrape {
    fn family(
        &mut self,
        name: &'static str,
        kind: MetricType,
        unit: Option<Unit>,
        help: &'static str,
    ) -> &mut Vec<(Labels, Value)> {
        self.families.push(Family { name, help, unit, kind, samples: Vec::new() });
        let last = self.families.len() - 1;
        &mut self.families[last].samples
    }

    pub fn of(state: &State) -> Scrape {
        let mut scrape = Scrape::default();
        scrape.requests(state);
        scrape.upstreams(state);
        scrape.plugins(state);
        scrape.process(&state.metrics);
        scrape.traces(state);
        scrape
    }

    fn requests(&mut self, state: &State) {
        // (listener, route, block): every route, then each listener's unrouted requests.
        let mut blocks = Vec::new();
        for (listener, route) in state.routes() {
            if let Some(block) = &route.metrics {
                blocks.push((state.listener_name(listener).to_string(), route.name.to_string(), block.clone()));
            }
        }
        for listener in 0..state.listener_count() {
            if let Some(block) = state.listener_metrics(listener) {
                blocks.push((state.listener_name(listener).to_string(), String::new(), block.unrouted.clone()));
            }
        }
        let labels = |l: &str, r: &str| vec![("listener", l.to_owned()), ("route", r.to_owned())];

        let family = self.family(
            "wasmgate_requests",
            MetricType::Counter,
            None,
            "Requests answered, by status class and by who made the response (upstream, gateway, plugin); route=\"\": no route matched. A series appears with its first request.",
        );
        for (listener, route, block) in &blocks {
            for (class, name) in CLASSES.iter().enumerate() {
                for source in Source::ALL {
                    let n = block.requests(class, source);
                    if n > 0 {
                        let mut l = labels(listener, route);
                        l.push(("status_class", (*name).to_owned()));
                        l.push(("source", source.as_str().to_owned()));
                        family.push((l, Value::Counter(n)));
                    }
                }
            }
        }
        let family = self.family(
            "wasmgate_request_duration",
            MetricType::Histogram,
            Some(Unit::Seconds),
            "Time from a request's arrival to its response head being ready to send (the body streams after).",
        );
        for (listener, route, block) in &blocks {
            family.push((labels(listener, route), Value::Histogram(block.duration())));
        }
        let family = self.family(
            "wasmgate_request_gateway_duration",
            MetricType::Histogram,
            Some(Unit::Seconds),
            "The gateway's own share of a request's duration: the request duration less the time spent on upstreams (connecting, sending, waiting for the response head).",
        );
        for (listener, route, block) in &blocks {
            family.push((labels(listener, route), Value::Histogram(block.own_time())));
        }
        let family = self.family(
            "wasmgate_request_body",
            MetricType::Counter,
            Some(Unit::Bytes),
            "Request body bytes read from clients.",
        );
        for (listener, route, block) in &blocks {
            family.push((labels(listener, route), Value::Counter(block.bytes().0)));
        }
        let family = self.family(
            "wasmgate_response_body",
            MetricType::Counter,
            Some(Unit::Bytes),
            "Response body bytes sent to clients (counted as they are handed to the connection).",
        );
        for (listener, route, block) in &blocks {
            family.push((labels(listener, route), Value::Counter(block.bytes().1)));
        }

        let listeners: Vec<_> = (0..state.listener_count())
            .filter_map(|i| Some((state.listener_name(i).to_string(), state.listener_metrics(i)?.clone())))
            .collect();
        let family = self.family(
            "wasmgate_requests_in_flight",
            MetricType::Gauge,
            None,
            "Requests received whose response is not yet completely sent.",
        );
        for (name, block) in &listeners {
            family.push((vec![("listener", name.clone())], Value::Gauge(block.requests_in_flight())));
        }
        let family = self.family(
            "wasmgate_tls_certificate_expiry_timestamp",
            MetricType::Gauge,
            Some(Unit::Seconds),
            "When an https listener's certificate for a server name expires (Unix time; server_name=\"\": a certificate without DNS names).",
        );
        let unnamed = [String::new()];
        for listener in 0..state.listener_count() {
            let mut seen = HashSet::new();
            for (names, not_after) in state.certificates(listener) {
                let names = if names.is_empty() { &unnamed[..] } else { &names[..] };
                // SNI picks the first certificate that has a name: so do we.
                for name in names.iter().filter(|name| seen.insert(name.as_str())) {
                    let labels =
                        vec![("listener", state.listener_name(listener).to_string()), ("server_name", name.clone())];
                    family.push((labels, Value::Gauge(*not_after)));
                }
            }
        }
        let family = self.family("wasmgate_connections_open", MetricType::Gauge, None, "Client connections open now.");
        for (name, block) in &listeners {
            family.push((vec![("listener", name.clone())], Value::Gauge(block.connections_open())));
        }
        let family = self.family("wasmgate_connections", MetricType::Counter, None, "Client connections accepted.");
        for (name, block) in &listeners {
            family.push((vec![("listener", name.clone())], Value::Counter(block.connections())));
        }
    }

    fn upstreams(&mut self, state: &State) {
        struct Seen {
            name: String,
            upstream: std::sync::Arc<crate::upstream::Upstream>,
            source: Option<crate::upstream::SourceStatus>,
            targets: Vec<crate::upstream::TargetStatus>,
        }
        let upstreams: Vec<Seen> = state
            .upstreams
            .iter()
            .map(|u| {
                let (source, targets) = u.status();
                if let Some(metrics) = u.metrics() {
                    // Targets no longer discovered lose their series.
                    metrics.retain_targets(|address| targets.iter().any(|t| t.address == *address));
                }
                Seen { name: u.name().to_owned(), upstream: u.clone(), source, targets }
            })
            .collect();
        let target_labels = |u: &Seen, t: &crate::upstream::TargetStatus| {
            vec![("upstream", u.name.clone()), ("target", t.address.to_string())]
        };

        let family = self.family(
            "wasmgate_upstream_requests",
            MetricType::Counter,
            None,
            "Requests the gateway meant for an upstream, by target and outcome (each attempt counts); target=\"\": sent to no target (breaker_open, overloaded, no_target). A series appears with its first request.",
        );
        for u in &upstreams {
            let Some(metrics) = u.upstream.metrics() else { continue };
            for t in &u.targets {
                let Some(target) = metrics.existing_target(t.address) else { continue };
                for outcome in Outcome::SENT {
                    let n = target.sent_count(outcome);
                    if n > 0 {
                        let mut l = target_labels(u, t);
                        l.push(("outcome", outcome.as_str().to_owned()));
                        family.push((l, Value::Counter(n)));
                    }
                }
            }
            for outcome in Outcome::UNSENT {
                let n = metrics.unsent_count(outcome);
                if n > 0 {
                    let l = vec![
                        ("upstream", u.name.clone()),
                        ("target", String::new()),
                        ("outcome", outcome.as_str().to_owned()),
                    ];
                    family.push((l, Value::Counter(n)));
                }
            }
        }
        let family = self.family(
            "wasmgate_upstream_response_duration",
            MetricType::Histogram,
            Some(Unit::Seconds),
            "Time from taking a connection to a target (connecting if needed) to its response head.",
        );
        for u in &upstreams {
            if let Some(metrics) = u.upstream.metrics() {
                family.push((vec![("upstream", u.name.clone())], Value::Histogram(metrics.response_durations())));
            }
        }
        let family = self.family(
            "wasmgate_upstream_connect_duration",
            MetricType::Histogram,
            Some(Unit::Seconds),
            "Time to open a new connection to a target, TLS handshake included (successful connects).",
        );
        for u in &upstreams {
            if let Some(metrics) = u.upstream.metrics() {
                family.push((vec![("upstream", u.name.clone())], Value::Histogram(metrics.connect_durations())));
            }
        }
        let family = self.family(
            "wasmgate_upstream_connections",
            MetricType::Gauge,
            None,
            "HTTP/1.1 connections to an upstream's targets over every worker's pool: active (carrying a request) or idle (waiting in a pool).",
        );
        for u in &upstreams {
            if let Some(metrics) = u.upstream.metrics() {
                let (open, idle) = metrics.pool();
                for (state, n) in [("active", open - idle), ("idle", idle)] {
                    family.push((vec![("upstream", u.name.clone()), ("state", state.into())], Value::Gauge(n.max(0))));
                }
            }
        }
        let family = self.family(
            "wasmgate_upstream_requests_in_flight",
            MetricType::Gauge,
            None,
            "Requests holding one of an upstream's max_concurrent_requests slots (upstreams with a limit).",
        );
        for u in &upstreams {
            if u.upstream.config.max_concurrent_requests.is_some() {
                family.push((vec![("upstream", u.name.clone())], Value::Gauge(u.upstream.in_flight() as i64)));
            }
        }

        let family = self.family(
            "wasmgate_upstream_target_health",
            MetricType::Gauge,
            None,
            "A target's standing with the active health checks: 1 for its current state (unchecked, pending, healthy, unhealthy), 0 for the others.",
        );
        for u in &upstreams {
            for t in &u.targets {
                for health in [Health::Unchecked, Health::Pending, Health::Healthy, Health::Unhealthy] {
                    let mut l = target_labels(u, t);
                    l.push(("state", health.as_str().to_owned()));
                    family.push((l, Value::Gauge(i64::from(t.health == health))));
                }
            }
        }
        let family = self.family(
            "wasmgate_upstream_target_in_rotation",
            MetricType::Gauge,
            None,
            "1 when requests are balanced over the target now (healthy, not drained), else 0.",
        );
        for u in &upstreams {
            for t in &u.targets {
                family.push((target_labels(u, t), Value::Gauge(i64::from(t.in_rotation))));
            }
        }
        let family = self.family(
            "wasmgate_upstream_target_drained",
            MetricType::Gauge,
            None,
            "1 when an operator drained the target through the admin API, else 0.",
        );
        for u in &upstreams {
            for t in &u.targets {
                family.push((target_labels(u, t), Value::Gauge(i64::from(t.drained))));
            }
        }
        let family = self.family(
            "wasmgate_upstream_target_breaker",
            MetricType::Gauge,
            None,
            "A target's circuit breaker: 1 for its current state (closed, open, half_open), 0 for the others (upstreams with a circuit_breaker).",
        );
        for u in &upstreams {
            for t in &u.targets {
                let Some((current, _, _)) = t.breaker else { continue };
                for state in [BreakerState::Closed, BreakerState::Open, BreakerState::HalfOpen] {
                    let mut l = target_labels(u, t);
                    l.push(("state", state.as_str().to_owned()));
                    family.push((l, Value::Gauge(i64::from(current == state))));
                }
            }
        }
        let family = self.family(
            "wasmgate_upstream_breaker_transitions",
            MetricType::Counter,
            None,
            "Circuit breaker state changes of a target (opened, half_opened, reopened, closed). A series appears with its first change.",
        );
        for u in &upstreams {
            let Some(metrics) = u.upstream.metrics() else { continue };
            for t in &u.targets {
                let Some(target) = metrics.existing_target(t.address) else { continue };
                for (i, name) in TRANSITIONS.iter().enumerate() {
                    let n = target.transitions(i);
                    if n > 0 {
                        let mut l = target_labels(u, t);
                        l.push(("transition", (*name).to_owned()));
                        family.push((l, Value::Counter(n)));
                    }
                }
            }
        }
        let family = self.family(
            "wasmgate_upstream_health_checks",
            MetricType::Counter,
            None,
            "Active health check probes of a target, by result (passed, failed).",
        );
        for u in &upstreams {
            if u.upstream.config.health_check.is_none() {
                continue;
            }
            let Some(metrics) = u.upstream.metrics() else { continue };
            for t in &u.targets {
                let (passed, failed) = metrics.existing_target(t.address).map_or((0, 0), |m| m.checks());
                for (result, n) in [("passed", passed), ("failed", failed)] {
                    let mut l = target_labels(u, t);
                    l.push(("result", result.to_owned()));
                    family.push((l, Value::Counter(n)));
                }
            }
        }

        let discovered: Vec<&Seen> = upstreams.iter().filter(|u| u.upstream.config.discovery.is_some()).collect();
        let family = self.family(
            "wasmgate_discovery_connected",
            MetricType::Gauge,
            None,
            "1 while an upstream's discovery source (ZooKeeper) answers, else 0.",
        );
        for u in &discovered {
            let connected = u.source.as_ref().is_some_and(|s| s.connected);
            family.push((vec![("upstream", u.name.clone())], Value::Gauge(i64::from(connected))));
        }
        let family = self.family(
            "wasmgate_discovery_updates",
            MetricType::Counter,
            None,
            "Target lists an upstream's discovery source published.",
        );
        for u in &discovered {
            let updates = u.upstream.metrics().map_or(0, |m| m.discovery().0);
            family.push((vec![("upstream", u.name.clone())], Value::Counter(updates)));
        }
        let family = self.family(
            "wasmgate_discovery_last_update_timestamp",
            MetricType::Gauge,
            Some(Unit::Seconds),
            "When an upstream's discovery source last published a target list (Unix time; absent before the first).",
        );
        for u in &discovered {
            if let Some(at) = u.upstream.metrics().and_then(|m| m.discovery().1) {
                family.push((vec![("upstream", u.name.clone())], Value::Float(at)));
            }
        }
    }

    fn plugins(&mut self, state: &State) {
        // (route, plugin, block), once per block: a plugin listed twice on a route shares one.
        let mut calls = Vec::new();
        let mut configured = Vec::new();
        let mut seen_blocks = HashSet::new();
        let mut seen_configured = HashSet::new();
        for (_, route) in state.routes() {
            let plugins = route.chain.plugins();
            for (at, plugin) in plugins.iter().enumerate() {
                if seen_configured.insert(std::sync::Arc::as_ptr(plugin)) {
                    configured.push(plugin.clone());
                }
                if let Some(block) = route.chain.metrics().and_then(|m| m.get(at)) {
                    if seen_blocks.insert(std::sync::Arc::as_ptr(block)) {
                        calls.push((route.name.to_string(), plugin.name().to_owned(), block.clone()));
                    }
                }
            }
        }
        let family = self.family(
            "wasmgate_plugin_call_duration",
            MetricType::Histogram,
            Some(Unit::Seconds),
            "Time of one call into a plugin (phase: request, response, response_body), per route.",
        );
        for (route, plugin, block) in &calls {
            for phase in Phase::ALL {
                let labels =
                    vec![("route", route.clone()), ("plugin", plugin.clone()), ("phase", phase.as_str().to_owned())];
                family.push((labels, Value::Histogram(block.durations(phase))));
            }
        }
        let family = self.family(
            "wasmgate_plugin_calls",
            MetricType::Counter,
            None,
            "Calls into a plugin per route and phase, by outcome (continue, answered, trap, deadline, memory, invalid_output, start_failed; fail_open_skipped: not called because the plugin failed open earlier in the request). A series appears with its first call.",
        );
        for (route, plugin, block) in &calls {
            for phase in Phase::ALL {
                for outcome in PluginOutcome::ALL {
                    let n = block.calls(phase, outcome);
                    if n > 0 {
                        let labels = vec![
                            ("route", route.clone()),
                            ("plugin", plugin.clone()),
                            ("phase", phase.as_str().to_owned()),
                            ("outcome", outcome.as_str().to_owned()),
                        ];
                        family.push((labels, Value::Counter(n)));
                    }
                }
            }
        }
        // Instances belong to a configured plugin (a plugin with one config,
        // shared by the routes that give it that config): summed per plugin.
        let mut per_plugin: std::collections::BTreeMap<String, (u64, u64, u64)> = Default::default();
        for plugin in &configured {
            let stats = plugin.stats();
            let entry = per_plugin.entry(plugin.name().to_owned()).or_default();
            entry.0 += plugin.alive();
            entry.1 += stats.warm as u64;
            entry.2 += stats.started;
        }
        let family = self.family(
            "wasmgate_plugin_instances_alive",
            MetricType::Gauge,
            None,
            "Instances of a plugin that exist now (idle or serving a call).",
        );
        for (plugin, (alive, _, _)) in &per_plugin {
            family.push((vec![("plugin", plugin.clone())], Value::Gauge(*alive as i64)));
        }
        let family = self.family(
            "wasmgate_plugin_instances_idle",
            MetricType::Gauge,
            None,
            "Warm instances of a plugin waiting in its pools.",
        );
        for (plugin, (_, idle, _)) in &per_plugin {
            family.push((vec![("plugin", plugin.clone())], Value::Gauge(*idle as i64)));
        }
        let family = self.family(
            "wasmgate_plugin_instances_started",
            MetricType::Counter,
            None,
            "Instances of a plugin started (instantiated and initialised) by the configured plugins in use.",
        );
        for (plugin, (_, _, started)) in &per_plugin {
            family.push((vec![("plugin", plugin.clone())], Value::Counter(*started)));
        }
        // `[state]`'s Redis, once some route's plugin entry says `state = "global"`.
        if let Some(global) = configured.iter().find_map(|p| p.global_state()) {
            let family = self.family(
                "wasmgate_state_backend_up",
                MetricType::Gauge,
                None,
                "1 when the last call to the global state backend (Redis) succeeded; 0 while global plugin entries limit locally (fail-open) or answer 503 (fail-closed).",
            );
            family.push((Vec::new(), Value::Gauge(i64::from(global.is_up()))));
            let family = self.family(
                "wasmgate_state_leased_keys",
                MetricType::Gauge,
                None,
                "Keys of global token buckets this gateway holds a lease on.",
            );
            family.push((Vec::new(), Value::Gauge(global.leased_keys() as i64)));
        }
    }

    fn process(&mut self, metrics: &GatewayMetrics) {
        use std::sync::atomic::Ordering::Relaxed;
        let family = self.family(
            "wasmgate_plugin_loads",
            MetricType::Counter,
            None,
            "Plugin versions compiled and loaded (ok), and plugin folder loads refused (failed).",
        );
        family.push((vec![("result", "ok".into())], Value::Counter(metrics.plugin_loads_ok.load(Relaxed))));
        family.push((vec![("result", "failed".into())], Value::Counter(metrics.plugin_loads_failed.load(Relaxed))));
        let family = self.family(
            "wasmgate_reloads",
            MetricType::Counter,
            None,
            "Config and plugin reloads, by result (ok, failed).",
        );
        family.push((vec![("result", "ok".into())], Value::Counter(metrics.reloads_ok.load(Relaxed))));
        family.push((vec![("result", "failed".into())], Value::Counter(metrics.reloads_failed.load(Relaxed))));
        let family = self.family(
            "wasmgate_reload_last_success_timestamp",
            MetricType::Gauge,
            Some(Unit::Seconds),
            "When the running config was applied: the start or the last successful reload (Unix time).",
        );
        family.push((Vec::new(), Value::Float(metrics.applied_at_ms.load(Relaxed) as f64 / 1000.0)));
        let family = self.family("wasmgate_config", MetricType::Info, None, "The running config's hash.");
        family.push((vec![("hash", metrics.config_hash())], Value::Info));
        if let Some(dropped) = crate::logging::dropped_lines() {
            let family = self.family(
                "wasmgate_log_lines_dropped",
                MetricType::Counter,
                None,
                "Log lines the background writer dropped because output could not keep up.",
            );
            family.push((Vec::new(), Value::Counter(dropped as u64)));
        }
        let family = self.family("wasmgate_build", MetricType::Info, None, "The gateway's version.");
        family.push((vec![("version", env!("CARGO_PKG_VERSION").to_owned())], Value::Info));
    }
}

impl Scrape {
    fn traces(&mut self, state: &State) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(tracer) = &state.tracer else { return };
        let counts = tracer.exporter().counts();
        let family = self.family(
            "wasmgate_trace_spans",
            MetricType::Counter,
            None,
            "Spans of sampled requests posted to the collector (exported) or lost to a full queue or a failed post (dropped).",
        );
        family.push((vec![("result", "exported".into())], Value::Counter(counts.exported.load(Relaxed))));
        family.push((vec![("result", "dropped".into())], Value::Counter(counts.dropped.load(Relaxed))));
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.families {
            if family.samples.is_empty() {
                continue;
            }
            let mut metric = encoder.encode_descriptor(family.name, family.help, family.unit.as_ref(), family.kind)?;
            for (labels, value) in &family.samples {
                match value {
                    Value::Info => metric.encode_info(labels)?,
                    value => {
                        let mut sample = metric.encode_family(labels)?;
                        match value {
                            Value::Counter(n) => sample.encode_counter::<NoLabelSet, _, u64>(n, None)?,
                            Value::Gauge(n) => sample.encode_gauge(n)?,
                            Value::Float(x) => sample.encode_gauge(x)?,
                            Value::Histogram(h) => {
                                sample.encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?
                            }
                            Value::Info => {}
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
