//! Active health checks, circuit breakers and the fallback response.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheckConfig {
    pub kind: HealthCheckKind,
    /// Time between two probes of one target.
    pub interval: Duration,
    /// A probe that takes longer has failed.
    pub timeout: Duration,
    /// Consecutive failed probes that take a healthy target out of rotation.
    pub unhealthy_after: u32,
    /// Consecutive passed probes that bring an unhealthy target back.
    pub healthy_after: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthCheckKind {
    /// A TCP connect succeeds.
    Tcp,
    /// `GET path` answers 2xx or 3xx.
    Http { path: http::uri::PathAndQuery },
}

/// Hystrix's circuit breaker, per target: closed → open when, over the rolling
/// `window`, at least `request_volume` requests were seen and `error_percent` of
/// them failed; after `sleep_window` half-open lets `half_open_requests` through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub error_percent: u32,
    pub request_volume: u32,
    pub window: Duration,
    pub sleep_window: Duration,
    /// Probes let through while half-open; that many successes close the breaker.
    pub half_open_requests: u32,
}

/// What a route answers when its upstream has no target to offer.
#[derive(Debug, Clone)]
pub struct FallbackConfig {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
pub const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
pub const DEFAULT_HEALTH_THRESHOLD: u32 = 2;
pub const DEFAULT_ERROR_PERCENT: u32 = 50;
pub const DEFAULT_REQUEST_VOLUME: u32 = 20;
pub const DEFAULT_BREAKER_WINDOW: Duration = Duration::from_secs(10);
pub const DEFAULT_SLEEP_WINDOW: Duration = Duration::from_secs(5);
pub const DEFAULT_HALF_OPEN_REQUESTS: u32 = 1;
