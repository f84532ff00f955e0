//! `[cluster]`, as written.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub zookeeper: Option<RawClusterZooKeeper>,
    /// The member node's name (default `<hostname>-<pid>`).
    pub id: Option<String>,
    /// Fetched versions, relative to the config file.
    pub cache_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClusterZooKeeper {
    pub hosts: Vec<String>,
    pub path: String,
    #[serde(default, with = "humantime_serde")]
    pub session_timeout: Option<Duration>,
}
