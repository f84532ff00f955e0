//! An upstream at run time: its settings and its current target set.
//!
//! The target set is an immutable snapshot behind `ArcSwap`: whatever changes it
//! (discovery, health checks) publishes a whole new set with its own balancer, and
//! a request keeps the snapshot it started with.

use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::HeaderValue;

use crate::balance::{self, Balancer};
use crate::config::{TargetConfig, UpstreamConfig};

pub struct Upstream {
    pub config: UpstreamConfig,
    targets: ArcSwap<TargetSet>,
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
}

impl Upstream {
    pub fn new(config: UpstreamConfig) -> Upstream {
        let set = TargetSet::new(&config, &config.targets);
        Upstream { config, targets: ArcSwap::from_pointee(set) }
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// The current targets; hold the `Arc` for the whole request.
    pub fn targets(&self) -> Arc<TargetSet> {
        self.targets.load_full()
    }

    /// Replaces the target set; requests already running keep the old one.
    pub fn publish(&self, targets: &[TargetConfig]) {
        self.targets.store(Arc::new(TargetSet::new(&self.config, targets)));
    }
}

impl TargetSet {
    fn new(config: &UpstreamConfig, targets: &[TargetConfig]) -> TargetSet {
        TargetSet {
            targets: targets
                .iter()
                .map(|t| Target {
                    address: t.address,
                    authority: HeaderValue::from_str(&t.authority)
                        .unwrap_or_else(|_| HeaderValue::from_static("localhost")),
                    weight: t.weight,
                })
                .collect(),
            balancer: balance::build(&config.balance, targets),
        }
    }

    /// Picks a target not in `tried`: the balancer's choice, or when that one was
    /// already tried, the next untried target after it.
    pub fn pick(&self, ctx: &balance::PickContext<'_>, tried: &[usize]) -> Option<usize> {
        let first = self.balancer.pick(ctx)?;
        let n = self.targets.len();
        (0..n).map(|step| (first + step) % n).find(|i| !tried.contains(i))
    }
}
