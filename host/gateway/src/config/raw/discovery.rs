//! `discovery = { zookeeper = { ... } }` on an upstream, as written.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    pub zookeeper: Option<RawZooKeeper>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawZooKeeper {
    pub hosts: Vec<String>,
    pub path: String,
    #[serde(default, with = "humantime_serde")]
    pub session_timeout: Option<Duration>,
    pub on_empty: Option<String>,
}
