//! Active health checks: every `interval` each discovered target of an upstream
//! is probed (a TCP connect, or an HTTP `GET`); `unhealthy_after` failures in a
//! row take it out of rotation, `healthy_after` passes bring it back. A target
//! that discovery adds is probed at once and joins on its first pass.

mod probe;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::HealthCheckConfig;
use crate::upstream::{Health, Upstream};

/// Consecutive results of one target since its health last flipped.
#[derive(Default, Clone, Copy)]
struct Streak {
    passed: u32,
    failed: u32,
}

pub async fn run(upstream: Arc<Upstream>, config: HealthCheckConfig, mut shutdown: watch::Receiver<bool>) {
    let mut streaks: HashMap<SocketAddr, Streak> = HashMap::new();
    let mut ticker = tokio::time::interval(config.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let only_new = tokio::select! {
            _ = crate::control::stopped(&mut shutdown) => return,
            _ = ticker.tick() => false,
            _ = upstream.added.notified() => true,
        };
        let targets = upstream.checked_targets();
        streaks.retain(|address, _| targets.iter().any(|(t, _)| t.address == *address));
        let mut probes = JoinSet::new();
        for (target, health) in targets {
            if only_new && health != Health::Pending {
                continue;
            }
            let kind = config.kind.clone();
            let timeout = config.timeout;
            probes.spawn(async move {
                let result = probe::probe(&kind, &target, timeout).await;
                (target.address, health, result)
            });
        }
        let results = tokio::select! {
            _ = crate::control::stopped(&mut shutdown) => return,
            results = probes.join_all() => results,
        };
        for (address, health, result) in results {
            if let Some(metrics) = upstream.metrics() {
                metrics.target(address).checked(result.is_ok());
            }
            let streak = streaks.entry(address).or_default();
            match &result {
                Ok(()) => *streak = Streak { passed: streak.passed + 1, failed: 0 },
                Err(_) => *streak = Streak { passed: 0, failed: streak.failed + 1 },
            }
            let next = match (health, &result) {
                (Health::Pending, Ok(())) => Health::Healthy,
                (Health::Pending, Err(_)) if streak.failed >= config.unhealthy_after => Health::Unhealthy,
                (Health::Healthy, Err(_)) if streak.failed >= config.unhealthy_after => Health::Unhealthy,
                (Health::Unhealthy, Ok(())) if streak.passed >= config.healthy_after => Health::Healthy,
                _ => health,
            };
            if next == health {
                continue;
            }
            let name = upstream.name();
            match (next, result) {
                (Health::Healthy, _) => tracing::info!(
                    target: "state", change = "target_healthy", upstream = name, target = %address,
                    passed = streak.passed, "health check passed: target in rotation"
                ),
                (_, Err(error)) => tracing::warn!(
                    target: "state", change = "target_unhealthy", upstream = name, target = %address,
                    failed = streak.failed, %error, "health check failed: target out of rotation"
                ),
                _ => {}
            }
            upstream.set_health(address, next);
        }
    }
}
