//! One config for a fleet of gateways, distributed through ZooKeeper.
//!
//! `wasmgate config push` uploads a config and the plugins its routes use as an
//! immutable, content-addressed version and points `<root>/current` at it in the
//! same ZooKeeper transaction that creates the version node. Each gateway with
//! `[cluster]` watches `current`, fetches and checks the version, merges it with
//! its own file (`merge`) and applies it as a hot reload would; it reports what
//! it runs, or why it refused a version, in an ephemeral member node.
//!
//! Under the root (`/wasmgate`):
//! - `current`: the id of the version the fleet should run.
//! - `versions/<id>`: a version's manifest (see `version`).
//! - `blobs/<sha256>`: file chunks, shared by versions that carry the same file.
//! - `members/<gateway id>`: ephemeral, one per running gateway (see `members`).

mod cache;
mod follow;
mod members;
mod merge;
mod push;
mod version;

use std::time::Duration;

pub use follow::{Follower, Startup};
pub use members::{status, FleetStatus, Member, Refused};
pub use push::{push, rollback, Pushed};

/// The nodes of a fleet rooted at `root`.
#[derive(Debug, Clone)]
pub struct Paths {
    root: String,
}

impl Paths {
    pub fn new(root: &str) -> Paths {
        Paths { root: root.trim_end_matches('/').to_owned() }
    }
    pub fn root(&self) -> &str {
        &self.root
    }
    pub fn current(&self) -> String {
        format!("{}/current", self.root)
    }
    pub fn versions(&self) -> String {
        format!("{}/versions", self.root)
    }
    pub fn version(&self, id: &str) -> String {
        format!("{}/versions/{id}", self.root)
    }
    pub fn blobs(&self) -> String {
        format!("{}/blobs", self.root)
    }
    pub fn blob(&self, sha256: &str) -> String {
        format!("{}/blobs/{sha256}", self.root)
    }
    pub fn members(&self) -> String {
        format!("{}/members", self.root)
    }
    pub fn member(&self, id: &str) -> String {
        format!("{}/members/{id}", self.root)
    }
}

/// How long a command-line tool waits for a ZooKeeper session.
pub const TOOL_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A session for a command-line tool: retried until `TOOL_SESSION_TIMEOUT`,
/// since a server that has just (re)started may turn the first ones away.
async fn tool_connect(hosts: &[String]) -> Result<zookeeper_client::Client, String> {
    let hosts = hosts.join(",");
    let deadline = tokio::time::Instant::now() + TOOL_SESSION_TIMEOUT;
    let mut backoff = crate::backoff::Backoff::between(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match crate::discovery::zookeeper_connect(&hosts, left.max(Duration::from_millis(100))).await {
            Ok(client) => return Ok(client),
            Err(e) => {
                let wait = backoff.next();
                if tokio::time::Instant::now() + wait >= deadline {
                    return Err(format!("zookeeper {hosts}: {e}"));
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// `<hostname>-<pid>`: a member id unique among running gateways.
pub fn default_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')))
        .unwrap_or_else(|| "gateway".into());
    format!("{host}-{}", std::process::id())
}

/// The id of the version `current` names, if any: outside input, so checked.
fn parse_current(data: &[u8]) -> Option<String> {
    let id = std::str::from_utf8(data).ok()?.trim();
    version::is_version_id(id).then(|| id.to_owned())
}

#[cfg(test)]
mod tests;
