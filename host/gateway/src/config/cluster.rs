//! `[cluster]`: this gateway's place in a fleet that takes its config from ZooKeeper.

use std::path::PathBuf;
use std::time::Duration;

/// Where the fleet's config is published and how this gateway shows up there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    /// `host:port` of each ZooKeeper server.
    pub hosts: Vec<String>,
    /// The fleet's root path, such as `/wasmgate`: `current`, `versions/`,
    /// `blobs/` and `members/` live under it.
    pub path: String,
    pub session_timeout: Duration,
    /// This gateway's member node name (default `<hostname>-<pid>`).
    pub id: Option<String>,
    /// Where fetched versions are kept, so a start with ZooKeeper down serves
    /// the last one applied (default `<config file stem>.fleet/` next to the file).
    pub cache_dir: PathBuf,
}
