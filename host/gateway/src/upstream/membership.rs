//! Which targets an upstream has (as discovery or the config says) and which of
//! them the health checks let into rotation, less those an operator drained.
//! Only the control plane writes here, under the upstream's mutex; requests read
//! the published snapshot instead.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use super::{TargetSet, TargetState};
use crate::breaker::BreakerState;
use crate::config::{TargetConfig, UpstreamConfig};

/// A target's standing with the active health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// No health checks are configured for the upstream.
    Unchecked,
    /// Discovered, waiting for its first passing check.
    Pending,
    Healthy,
    Unhealthy,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unchecked => "unchecked",
            Health::Pending => "pending",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
        }
    }

    fn in_rotation(self) -> bool {
        matches!(self, Health::Unchecked | Health::Healthy)
    }
}

/// Whether the discovery source answers, as last seen.
#[derive(Debug, Clone)]
pub struct SourceStatus {
    pub connected: bool,
    pub since: SystemTime,
    /// Why it is not connected.
    pub error: Option<String>,
}

/// One target as the status page shows it.
#[derive(Debug, Clone)]
pub struct TargetStatus {
    pub address: SocketAddr,
    pub weight: u32,
    pub health: Health,
    /// In the snapshot requests are balanced over right now.
    pub in_rotation: bool,
    /// Held out of rotation by an operator (`POST .../drain`).
    pub drained: bool,
    pub breaker: Option<(BreakerState, u64, u64)>,
}

pub struct Membership {
    /// Targets as discovery (or the config) last reported them.
    discovered: Vec<TargetConfig>,
    /// The health checks' verdict per discovered address.
    health: HashMap<SocketAddr, Health>,
    /// Breakers by address, kept while the address is discovered.
    states: HashMap<SocketAddr, Arc<TargetState>>,
    /// Whether checks are configured: new targets then start `Pending`.
    checked: bool,
    /// Whether a discovery source reports the targets (else the config lists them).
    discovering: bool,
    /// Addresses an operator took out of rotation. Kept while discovery loses
    /// and finds the target again (a restarting backend's node comes back) and
    /// across health changes; only `undrain` ends it.
    drained: HashSet<SocketAddr>,
    upstream: Arc<str>,
    breaker: Option<crate::config::BreakerConfig>,
    pub source: Option<SourceStatus>,
    /// Where target states count their requests (none: metrics are off).
    metrics: Option<Arc<crate::metrics::UpstreamMetrics>>,
}

impl Membership {
    /// Static targets start in rotation (healthy until a check says otherwise);
    /// with discovery the set starts empty.
    pub fn new(config: &UpstreamConfig) -> Membership {
        let checked = config.health_check.is_some();
        let discovered = if config.discovery.is_some() { Vec::new() } else { config.targets.clone() };
        let initial = if checked { Health::Healthy } else { Health::Unchecked };
        Membership {
            health: discovered.iter().map(|t| (t.address, initial)).collect(),
            discovered,
            states: HashMap::new(),
            checked,
            discovering: config.discovery.is_some(),
            drained: HashSet::new(),
            upstream: config.name.as_str().into(),
            breaker: config.circuit_breaker,
            source: None,
            metrics: None,
        }
    }

    pub fn state_of(&mut self, target: &TargetConfig) -> Arc<TargetState> {
        let metrics = &self.metrics;
        self.states
            .entry(target.address)
            .or_insert_with(|| {
                let state = TargetState::new(self.upstream.clone(), target.address, self.breaker);
                Arc::new(state.with_metrics(metrics.as_ref().map(|m| m.target(target.address))))
            })
            .clone()
    }

    /// Target states count into `metrics` from now on: the ones made so far
    /// (before the upstream was shared) are made again.
    pub fn set_metrics(&mut self, metrics: Arc<crate::metrics::UpstreamMetrics>) {
        self.metrics = Some(metrics);
        self.states.clear();
    }

    /// The discovered targets the health checks let through and no operator
    /// drained, in discovery order.
    pub fn rotation(&self) -> Vec<TargetConfig> {
        self.discovered
            .iter()
            .filter(|t| self.health.get(&t.address).is_none_or(|h| h.in_rotation()))
            .filter(|t| !self.drained.contains(&t.address))
            .cloned()
            .collect()
    }

    /// The address of a discovered target, by address or as written (`localhost:2003`).
    pub fn find(&self, target: &str) -> Option<SocketAddr> {
        self.discovered
            .iter()
            .find(|t| t.authority == target || target.parse() == Ok(t.address))
            .map(|t| t.address)
    }

    /// Takes over what `previous` (this upstream under the config before a
    /// reload) knew, so that a new config starts where the old one was rather
    /// than from nothing: the drained targets; with discovery before and after,
    /// the targets discovered so far (kept until the source, the same or a new
    /// one, reports again) and whether it answers; and, for targets that stay,
    /// their health when checks run before and after. Breakers start afresh
    /// (their settings may have changed).
    pub fn succeed(&mut self, previous: &Membership) {
        self.drained = previous.drained.clone();
        if self.discovering && previous.discovering {
            self.discovered = previous.discovered.clone();
            self.source = previous.source.clone();
        }
        let initial = if self.checked { Health::Healthy } else { Health::Unchecked };
        self.health = self
            .discovered
            .iter()
            .map(|t| {
                let carried = previous.health.get(&t.address).copied().filter(|_| self.checked && previous.checked);
                (t.address, carried.unwrap_or(initial))
            })
            .collect();
    }

    /// Drains (`true`) or undrains a target; returns whether that changed anything.
    pub fn set_drained(&mut self, address: SocketAddr, drained: bool) -> bool {
        match drained {
            true => self.drained.insert(address),
            false => self.drained.remove(&address),
        }
    }

    /// Drained addresses, discovered now or not.
    pub fn drained(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.drained.iter().copied()
    }

    /// Takes discovery's new list; logs every addition, removal and weight change.
    /// Returns whether any target was added.
    pub fn set_discovered(&mut self, config: &UpstreamConfig, targets: Vec<TargetConfig>) -> bool {
        let name = config.name.as_str();
        let old: HashMap<SocketAddr, u32> = self.discovered.iter().map(|t| (t.address, t.weight)).collect();
        let mut added = false;
        for t in &targets {
            match old.get(&t.address) {
                None => {
                    added = true;
                    let health = if self.checked { Health::Pending } else { Health::Unchecked };
                    self.health.insert(t.address, health);
                    tracing::info!(
                        target: "state", change = "target_added", upstream = name, target = %t.address,
                        weight = t.weight, waits_for_health_check = self.checked, "target added"
                    );
                }
                Some(&weight) if weight != t.weight => tracing::info!(
                    target: "state", change = "target_reweighted", upstream = name, target = %t.address,
                    from = weight, to = t.weight, "target weight changed"
                ),
                Some(_) => {}
            }
        }
        for gone in self.discovered.iter().filter(|o| !targets.iter().any(|t| t.address == o.address)) {
            self.health.remove(&gone.address);
            self.states.remove(&gone.address);
            tracing::info!(target: "state", change = "target_removed", upstream = name, target = %gone.address, "target removed");
        }
        self.discovered = targets;
        added
    }

    /// Returns whether the target's health changed.
    pub fn set_health(&mut self, address: SocketAddr, health: Health) -> bool {
        match self.health.get_mut(&address) {
            Some(current) if *current != health => {
                *current = health;
                true
            }
            _ => false,
        }
    }

    pub fn checked_targets(&self) -> Vec<(TargetConfig, Health)> {
        self.discovered
            .iter()
            .map(|t| (t.clone(), self.health.get(&t.address).copied().unwrap_or(Health::Unchecked)))
            .collect()
    }

    pub fn status(&self, current: &TargetSet) -> Vec<TargetStatus> {
        self.discovered
            .iter()
            .map(|t| TargetStatus {
                address: t.address,
                weight: t.weight,
                health: self.health.get(&t.address).copied().unwrap_or(Health::Unchecked),
                in_rotation: current.targets.iter().any(|c| c.address == t.address),
                drained: self.drained.contains(&t.address),
                breaker: self.states.get(&t.address).and_then(|s| s.breaker()).map(|b| {
                    let (requests, failures) = b.counts();
                    (b.state(), requests, failures)
                }),
            })
            .collect()
    }
}
