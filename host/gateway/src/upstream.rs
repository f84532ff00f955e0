//! An upstream at run time: its settings and its current target set.
//!
//! The target set is an immutable snapshot behind `ArcSwap`: whatever changes it
//! (discovery, health checks) publishes a whole new set with its own balancer, and
//! a request keeps the snapshot it started with.
//!
//! What is published is the *rotation*: the targets discovery (or the config)
//! reports, less those the active health checks hold out and those an operator
//! drained through the admin API. Each target's breaker
//! lives in a `TargetState` that outlives the snapshots, so a new set does not
//! reset it.

mod membership;
mod target;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use arc_swap::ArcSwap;
use http::HeaderValue;
use tokio::sync::Notify;

use crate::balance::{self, Balancer};
use crate::config::{TargetConfig, UpstreamConfig};
use membership::Membership;

pub use membership::{Health, SourceStatus, TargetStatus};
pub use target::TargetState;

pub struct Upstream {
    pub config: UpstreamConfig,
    targets: ArcSwap<TargetSet>,
    /// Discovered targets, their health and breakers; changed off the hot path only.
    members: Mutex<Membership>,
    /// Wakes the health checker when discovery added targets it has not probed.
    pub(crate) added: Notify,
    /// Requests in flight; counted only when `max_concurrent_requests` is set.
    in_flight: AtomicUsize,
    /// Where this upstream's requests are counted (none: metrics are off).
    metrics: Option<Arc<crate::metrics::UpstreamMetrics>>,
}

/// The targets a request can be sent to, with the balancer built for exactly them.
pub struct TargetSet {
    pub targets: Vec<Target>,
    pub balancer: Box<dyn Balancer>,
}

pub struct Target {
    pub address: SocketAddr,
    /// `Host` value when the upstream rewrites it to the target.
    pub authority: HeaderValue,
    pub weight: u32,
    /// The target's breaker, shared with every snapshot that holds this address.
    pub state: Arc<TargetState>,
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Upstream {
        let mut members = Membership::new(&config);
        let rotation = members.rotation();
        let set = TargetSet::new(&config, &rotation, |t| members.state_of(t));
        Upstream {
            targets: ArcSwap::from_pointee(set),
            members: Mutex::new(members),
            added: Notify::new(),
            in_flight: AtomicUsize::new(0),
            metrics: None,
            config,
        }
    }

    /// Counts this upstream's requests, and each target's, into `metrics`.
    /// Called on a new upstream before it is shared: its target states are made
    /// again, now holding their blocks.
    pub fn set_metrics(&mut self, metrics: Arc<crate::metrics::UpstreamMetrics>) {
        let members = self.members.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
        members.set_metrics(metrics.clone());
        let rotation = members.rotation();
        let set = TargetSet::new(&self.config, &rotation, |t| members.state_of(t));
        self.targets.store(Arc::new(set));
        self.metrics = Some(metrics);
    }

    pub fn metrics(&self) -> Option<&Arc<crate::metrics::UpstreamMetrics>> {
        self.metrics.as_ref()
    }

    /// An upstream built for a reload that changed its config: what the one it
    /// replaces knew carries over (`Membership::succeed`): drained targets,
    /// discovered targets, the health of targets that stay.
    pub fn succeeding(config: UpstreamConfig, previous: Option<&Upstream>) -> Upstream {
        let mut upstream = Upstream::new(config);
        if let Some(previous) = previous {
            let members = upstream.members.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner());
            members.succeed(&previous.members());
            let rotation = members.rotation();
            let set = TargetSet::new(&upstream.config, &rotation, |t| members.state_of(t));
            upstream.targets.store(Arc::new(set));
        }
        upstream
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The current targets; hold the `Arc` for the whole request.
    pub fn targets(&self) -> Arc<TargetSet> {
        self.targets.load_full()
    }

    fn members(&self) -> MutexGuard<'_, Membership> {
        self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Replaces the target set; requests already running keep the old one.
    pub fn publish(&self, targets: &[TargetConfig]) {
        let mut members = self.members();
        self.publish_locked(&mut members, targets);
    }

    fn publish_locked(&self, members: &mut Membership, targets: &[TargetConfig]) {
        let set = TargetSet::new(&self.config, targets, |t| members.state_of(t));
        self.targets.store(Arc::new(set));
    }

    /// Discovery's view changed: logs each target that came or went and publishes
    /// the new rotation. New targets wait for a passing check when checks are on.
    pub fn set_discovered(&self, targets: Vec<TargetConfig>) {
        let mut members = self.members();
        if let Some(metrics) = &self.metrics {
            // A target that is gone loses its series (and starts afresh if it comes back).
            metrics.retain_targets(|address| targets.iter().any(|t| t.address == *address));
        }
        let added = members.set_discovered(&self.config, targets);
        let rotation = members.rotation();
        self.publish_locked(&mut members, &rotation);
        drop(members);
        if let Some(metrics) = &self.metrics {
            metrics.discovered();
        }
        if added {
            self.added.notify_one();
        }
    }

    /// The health checker's verdict on one target; republishes when it changed.
    pub fn set_health(&self, address: SocketAddr, health: Health) {
        let mut members = self.members();
        if members.set_health(address, health) {
            let rotation = members.rotation();
            self.publish_locked(&mut members, &rotation);
        }
    }

    /// Takes a target out of rotation (`drained`) or lets it back in, by its
    /// address or as written. Requests already sent to it finish; new ones are
    /// balanced over the others. `None` when the upstream has no such target
    /// (undraining also finds a drained address discovery no longer reports).
    pub fn drain(&self, target: &str, drained: bool) -> Option<SocketAddr> {
        let mut members = self.members();
        let address = members.find(target).or_else(|| {
            let address: SocketAddr = target.parse().ok()?;
            (!drained && members.drained().any(|d| d == address)).then_some(address)
        })?;
        if members.set_drained(address, drained) {
            let rotation = members.rotation();
            self.publish_locked(&mut members, &rotation);
            let change = if drained { "target_drained" } else { "target_undrained" };
            tracing::info!(target: "state", change, upstream = self.name(), target = %address, "{}", match drained {
                true => "target drained: out of rotation, requests in flight finish",
                false => "target undrained: back in rotation (if healthy)",
            });
        }
        Some(address)
    }

    /// Every discovered target with its health, for the health checker.
    pub fn checked_targets(&self) -> Vec<(TargetConfig, Health)> {
        self.members().checked_targets()
    }

    /// Records whether the discovery source is reachable, for the status page.
    pub fn set_source(&self, status: SourceStatus) {
        self.members().source = Some(status);
    }

    /// Everything the status page shows about this upstream's targets.
    pub fn status(&self) -> (Option<SourceStatus>, Vec<TargetStatus>) {
        let current = self.targets();
        let members = self.members();
        (members.source.clone(), members.status(&current))
    }

    /// Requests waiting on this upstream right now (0 unless a limit is set).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A slot under `max_concurrent_requests`; `None` when the upstream is full.
    /// The slot is given back when the guard drops.
    pub fn enter(&self) -> Option<InFlight<'_>> {
        let Some(max) = self.config.max_concurrent_requests else {
            return Some(InFlight { counter: None });
        };
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= max {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlight { counter: Some(&self.in_flight) })
    }
}

/// One request counted against an upstream's concurrency limit.
pub struct InFlight<'a> {
    counter: Option<&'a AtomicUsize>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(counter) = self.counter {
            counter.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl TargetSet {
    fn new(
        config: &UpstreamConfig,
        targets: &[TargetConfig],
        mut state_of: impl FnMut(&TargetConfig) -> Arc<TargetState>,
    ) -> TargetSet {
        TargetSet {
            targets: targets
                .iter()
                .map(|t| Target {
                    address: t.address,
                    authority: HeaderValue::from_str(&t.authority)
                        .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
                    weight: t.weight,
                    state: state_of(t),
                })
                .collect(),
            balancer: balance::build(&config.balance, targets),
        }
    }

    /// Picks a target not in `tried` whose breaker lets a request through: the
    /// balancer's choice, or when that one is out, the next one after it.
    pub fn pick(&self, ctx: &balance::PickContext<'_>, tried: &[usize]) -> Option<usize> {
        let first = self.balancer.pick(ctx)?;
        let n = self.targets.len();
        (0..n).map(|step| (first + step) % n).find(|&i| !tried.contains(&i) && self.targets[i].state.admit())
    }
}
