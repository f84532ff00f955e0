//! Load balancers: which target of an upstream gets the next request.
//!
//! Every balancer is built for one immutable target set (a new set gets a new
//! balancer) and is shared by all workers, so `pick` takes `&self` and uses at
//! most atomics: no lock on the hot path.

mod consistent_hash;
mod random;
mod round_robin;
mod weighted;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

pub use consistent_hash::ConsistentHash;
pub use random::Random;
pub use round_robin::RoundRobin;
pub use weighted::SmoothWeighted;

use crate::config::{BalanceConfig, HashKey, TargetConfig};

/// What a balancer may look at to choose: only the hashing balancer reads it.
pub struct PickContext<'a> {
    /// Path and query of the request as received.
    pub uri: &'a str,
    pub client_ip: IpAddr,
    pub headers: &'a http::HeaderMap,
}

pub trait Balancer: Send + Sync {
    /// Index of the chosen target, `None` when there are none.
    fn pick(&self, ctx: &PickContext<'_>) -> Option<usize>;
}

/// Builds the balancer a config asks for, over `targets`.
pub fn build(config: &BalanceConfig, targets: &[TargetConfig]) -> Box<dyn Balancer> {
    match config {
        BalanceConfig::Random => Box::new(Random::new(targets.len())),
        BalanceConfig::RoundRobin => Box::new(RoundRobin::new(targets.len())),
        BalanceConfig::WeightedRoundRobin => {
            Box::new(SmoothWeighted::new(&targets.iter().map(|t| t.weight).collect::<Vec<_>>()))
        }
        BalanceConfig::ConsistentHash { key, replicas } => {
            Box::new(ConsistentHash::new(key.clone(), *replicas, targets))
        }
    }
}

/// The hash key of a request, as the consistent-hash balancer sees it.
pub fn hash_input<'a>(key: &HashKey, ctx: &'a PickContext<'_>, ip_buf: &'a mut [u8; 16]) -> &'a [u8] {
    let ip = |buf: &'a mut [u8; 16]| -> &'a [u8] {
        match ctx.client_ip {
            IpAddr::V4(v4) => {
                buf[..4].copy_from_slice(&v4.octets());
                &buf[..4]
            }
            IpAddr::V6(v6) => {
                *buf = v6.octets();
                &buf[..]
            }
        }
    };
    match key {
        HashKey::Uri => ctx.uri.as_bytes(),
        HashKey::ClientIp => ip(ip_buf),
        HashKey::Header(name) => match ctx.headers.get(name) {
            Some(value) => value.as_bytes(),
            None => ip(ip_buf),
        },
    }
}
