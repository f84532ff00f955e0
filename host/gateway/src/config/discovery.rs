//! Where an upstream learns its targets at run time.

use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryConfig {
    ZooKeeper(ZooKeeperConfig),
}

/// The children of `path` are the targets: each node's data (or, when empty, its
/// name) is `host:port` or JSON `{ "address": "host:port", "weight": 5 }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZooKeeperConfig {
    /// `host:port` of each ZooKeeper server.
    pub hosts: Vec<String>,
    /// Absolute path whose children are the targets, such as `/real_server`.
    pub path: String,
    pub session_timeout: Duration,
    pub on_empty: OnEmpty,
}

/// What to do when ZooKeeper says the upstream has no targets at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnEmpty {
    /// Keep routing to the last non-empty set (a mass deregistration is more
    /// often an accident than an intent).
    KeepLast,
    /// Take the empty set: requests get `503` (or the route's fallback).
    Unavailable,
}

pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(10);
