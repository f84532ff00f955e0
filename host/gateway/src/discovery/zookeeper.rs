//! ZooKeeper discovery: the children of a path are the targets. A persistent
//! recursive watch on the path reports every child created, deleted or changed;
//! each report (and each reconnect, since events can be lost while disconnected)
//! triggers a full read of the children, which becomes the new target list.
//!
//! While ZooKeeper is unreachable the last known list keeps serving; the client
//! reconnects with backoff and resyncs on return. Each transition is logged once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use zookeeper_client as zk;

use super::{parse_node, resolve, Announced};
use crate::backoff::Backoff;
use crate::config::{OnEmpty, ZooKeeperConfig};
use crate::upstream::{SourceStatus, Upstream};

/// Connects a new session; gives up after the session timeout.
pub async fn connect(hosts: &str, session_timeout: Duration) -> Result<zk::Client, String> {
    let connecting = zk::Client::connector().with_session_timeout(session_timeout).with_fail_eagerly().connect(hosts);
    match tokio::time::timeout(session_timeout, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no session within {session_timeout:?}")),
    }
}

pub async fn follow(upstream: Arc<Upstream>, config: ZooKeeperConfig, mut shutdown: watch::Receiver<bool>) {
    let hosts = config.hosts.join(",");
    let mut watcher = Watcher {
        upstream: &upstream,
        config: &config,
        hosts: &hosts,
        connected: None,
        holding_last: false,
        reported_bad: HashSet::new(),
    };
    let mut backoff = Backoff::new();
    loop {
        let connected = tokio::select! {
            _ = crate::control::stopped(&mut shutdown) => return,
            connected = connect(&hosts, config.session_timeout) => connected,
        };
        match connected {
            Ok(client) => {
                watcher.link(true, None);
                match watcher.serve(&client, &mut shutdown, &mut backoff).await {
                    Ended::Shutdown => return,
                    Ended::Lost(reason) => watcher.link(false, Some(reason)),
                }
            }
            Err(reason) => watcher.link(false, Some(reason)),
        }
        tokio::select! {
            _ = crate::control::stopped(&mut shutdown) => return,
            _ = tokio::time::sleep(backoff.next()) => {}
        }
    }
}

enum Ended {
    Shutdown,
    /// The session is gone (expired or closed); a new one is needed.
    Lost(String),
}

struct Watcher<'a> {
    upstream: &'a Upstream,
    config: &'a ZooKeeperConfig,
    hosts: &'a str,
    /// Last reported link state, so each transition is logged once.
    connected: Option<bool>,
    /// ZooKeeper lists no targets and `on_empty = "keep_last"` holds the old ones.
    holding_last: bool,
    /// Child nodes already logged as unusable, so they are not logged on every sync.
    reported_bad: HashSet<String>,
}

impl Watcher<'_> {
    fn link(&mut self, connected: bool, error: Option<String>) {
        if self.connected == Some(connected) {
            return;
        }
        self.connected = Some(connected);
        let upstream = self.upstream.name();
        if connected {
            tracing::info!(target: "state", change = "zookeeper_up", upstream, hosts = self.hosts, path = %self.config.path, "zookeeper connected");
        } else {
            tracing::warn!(
                target: "state", change = "zookeeper_down", upstream, hosts = self.hosts,
                error = error.as_deref().unwrap_or("disconnected"),
                "zookeeper unreachable: serving the last known targets, reconnecting"
            );
        }
        self.upstream.set_source(SourceStatus { connected, since: SystemTime::now(), error });
    }

    /// Watches the path on one session until the session ends or we shut down.
    async fn serve(&mut self, client: &zk::Client, shutdown: &mut watch::Receiver<bool>, backoff: &mut Backoff) -> Ended {
        let mut events = match client.watch(&self.config.path, zk::AddWatchMode::PersistentRecursive).await {
            Ok(events) => events,
            Err(e) => return Ended::Lost(format!("cannot watch {}: {e}", self.config.path)),
        };
        let mut dirty = true;
        loop {
            if dirty {
                let synced = tokio::select! {
                    _ = crate::control::stopped(shutdown) => return Ended::Shutdown,
                    synced = self.sync(client) => synced,
                };
                match synced {
                    Ok(()) => {
                        dirty = false;
                        backoff.reset();
                    }
                    Err(e) => tracing::debug!(upstream = self.upstream.name(), error = %e, "zookeeper read failed; retrying"),
                }
            }
            let event = tokio::select! {
                _ = crate::control::stopped(shutdown) => return Ended::Shutdown,
                event = events.changed() => event,
                // A failed read is retried even if no event comes.
                _ = tokio::time::sleep(Duration::from_millis(500)), if dirty => continue,
            };
            match (event.event_type, event.session_state) {
                (zk::EventType::Session, state) if state.is_terminated() => {
                    return Ended::Lost(format!("session {state}"));
                }
                (zk::EventType::Session, zk::SessionState::Disconnected) => self.link(false, None),
                (zk::EventType::Session, _) => {
                    self.link(true, None);
                    dirty = true;
                }
                _ => dirty = true,
            }
        }
    }

    /// Reads every child of the path and publishes the targets they announce.
    async fn sync(&mut self, client: &zk::Client) -> Result<(), zk::Error> {
        let path = self.config.path.as_str();
        let children = match client.list_children(path).await {
            Ok(children) => children,
            Err(zk::Error::NoNode) => Vec::new(),
            Err(e) => return Err(e),
        };
        // Requests are sent in the order the futures are made: all at once.
        let reads: Vec<_> = children.iter().map(|child| client.get_data(&child_path(path, child))).collect();
        let mut announced: Vec<Announced> = Vec::with_capacity(children.len());
        for (child, read) in children.iter().zip(reads) {
            let data = match read.await {
                Ok((data, _)) => data,
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(e),
            };
            match parse_node(child, &data) {
                Ok(a) => announced.push(a),
                Err(reason) => {
                    if self.reported_bad.insert(child.clone()) {
                        tracing::warn!(upstream = self.upstream.name(), node = %child_path(path, child), %reason, "ignoring zookeeper node");
                    }
                }
            }
        }
        self.reported_bad.retain(|bad| children.contains(bad));
        let (targets, errors) = resolve(&self.upstream.config, announced).await;
        for error in errors {
            tracing::warn!(upstream = self.upstream.name(), %error, "ignoring zookeeper target");
        }
        if targets.is_empty() && self.config.on_empty == OnEmpty::KeepLast && !self.upstream.checked_targets().is_empty() {
            if !self.holding_last {
                self.holding_last = true;
                tracing::warn!(
                    target: "state", change = "zookeeper_empty", upstream = self.upstream.name(), path,
                    "zookeeper lists no targets: keeping the last known ones (on_empty = \"keep_last\")"
                );
            }
            return Ok(());
        }
        self.holding_last = false;
        self.upstream.set_discovered(targets);
        Ok(())
    }
}

fn child_path(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}
