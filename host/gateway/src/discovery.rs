//! Discovery: where an upstream with a `discovery` source learns its targets at
//! run time. A source publishes through `Upstream::set_discovered`, which keeps
//! the health checks' verdicts and swaps in a new snapshot for the balancer.

mod node;
mod zookeeper;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::config::{DiscoveryConfig, TargetConfig, UpstreamConfig};
use crate::upstream::Upstream;

pub use node::{parse_node, Announced};
pub use zookeeper::connect as zookeeper_connect;

/// Follows the upstream's discovery source until `shutdown` turns true.
pub async fn run(upstream: Arc<Upstream>, shutdown: watch::Receiver<bool>) {
    match upstream.config.discovery.clone() {
        Some(DiscoveryConfig::ZooKeeper(zk)) => zookeeper::follow(upstream, zk, shutdown).await,
        None => {}
    }
}

/// Resolves what the source announced into targets. The config's `targets` of a
/// discovered upstream override the weight of the addresses they name; without
/// an override the announced weight counts, else 1. Unresolvable entries are
/// skipped (and named in the returned errors).
pub async fn resolve(config: &UpstreamConfig, announced: Vec<Announced>) -> (Vec<TargetConfig>, Vec<String>) {
    let overrides: HashMap<SocketAddr, u32> = config.targets.iter().map(|t| (t.address, t.weight)).collect();
    let mut targets: Vec<TargetConfig> = Vec::with_capacity(announced.len());
    let mut errors = Vec::new();
    for a in announced {
        let address = match a.authority.parse::<SocketAddr>() {
            Ok(address) => Some(address),
            Err(_) => {
                let lookup = tokio::time::timeout(Duration::from_secs(2), tokio::net::lookup_host(a.authority.clone()));
                match lookup.await {
                    Ok(Ok(mut addrs)) => addrs.next(),
                    Ok(Err(e)) => {
                        errors.push(format!("`{}` cannot be resolved: {e}", a.authority));
                        continue;
                    }
                    Err(_) => None,
                }
            }
        };
        let Some(address) = address else {
            errors.push(format!("`{}` resolves to no address", a.authority));
            continue;
        };
        if targets.iter().any(|t| t.address == address) {
            continue;
        }
        let weight = overrides.get(&address).copied().or(a.weight).unwrap_or(1);
        targets.push(TargetConfig { address, authority: a.authority, weight });
    }
    (targets, errors)
}
