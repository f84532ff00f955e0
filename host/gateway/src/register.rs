//! Self-registration for backends: hold an ephemeral ZooKeeper node that names
//! this backend's address for as long as it runs. When the process ends, or its
//! session expires, ZooKeeper removes the node and gateways stop routing to it.
//!
//! The node is `<path>/<address>` and its data is the address, or JSON
//! `{"address": ..., "weight": ...}` when a weight is given. A lost session is
//! replaced and the node created again; each transition is logged once.

use std::future::Future;
use std::time::Duration;

use zookeeper_client as zk;

use crate::backoff::Backoff;
use crate::discovery::zookeeper_connect as connect;

#[derive(Debug, Clone)]
pub struct Registration {
    /// ZooKeeper servers, `host:port` each.
    pub hosts: Vec<String>,
    /// The parent path gateways watch, such as `/real_server`.
    pub path: String,
    /// `host:port` that gateways should send requests to.
    pub address: String,
    pub weight: Option<u32>,
    pub session_timeout: Duration,
}

impl Registration {
    pub fn node(&self) -> String {
        format!("{}/{}", self.path.trim_end_matches('/'), self.address)
    }

    fn data(&self) -> Vec<u8> {
        match self.weight {
            Some(weight) => serde_json::json!({ "address": self.address, "weight": weight }).to_string().into_bytes(),
            None => self.address.clone().into_bytes(),
        }
    }

    /// Registers and keeps the node until `stop` resolves, then deletes it.
    pub async fn hold(&self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        let hosts = self.hosts.join(",");
        let mut backoff = Backoff::new();
        // Whether the current outage was logged already.
        let mut warned = false;
        loop {
            let attempt = async {
                let client = connect(&hosts, self.session_timeout).await?;
                self.create(&client).await?;
                Ok::<_, String>(client)
            };
            let client = tokio::select! {
                _ = &mut stop => return,
                client = attempt => client,
            };
            let client = match client {
                Ok(client) => client,
                Err(error) => {
                    if !warned {
                        tracing::warn!(target: "state", change = "registration_lost", node = %self.node(), %error, "not registered; retrying");
                        warned = true;
                    }
                    tokio::select! {
                        _ = &mut stop => return,
                        _ = tokio::time::sleep(backoff.next()) => continue,
                    }
                }
            };
            backoff.reset();
            tracing::info!(target: "state", change = "registered", node = %self.node(), hosts, "registered in zookeeper");
            let mut session = client.state_watcher();
            let ended = loop {
                let state = tokio::select! {
                    _ = &mut stop => break None,
                    state = session.changed() => state,
                };
                if state.is_terminated() {
                    break Some(state);
                }
            };
            match ended {
                None => {
                    let _ = tokio::time::timeout(Duration::from_secs(2), client.delete(&self.node(), None)).await;
                    tracing::info!(target: "state", change = "deregistered", node = %self.node(), "deregistered");
                    return;
                }
                Some(state) => {
                    tracing::warn!(target: "state", change = "registration_lost", node = %self.node(), session = %state, "zookeeper session ended; registering again");
                    warned = true;
                }
            }
        }
    }

    /// Creates the parent path and the ephemeral node. A node left by an earlier
    /// session of ours (a restart) is waited out: it vanishes when that session expires.
    async fn create(&self, client: &zk::Client) -> Result<(), String> {
        let persistent = zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
        if self.path != "/" {
            client.mkdir(&self.path, &persistent).await.map_err(|e| format!("cannot create {}: {e}", self.path))?;
        }
        let ephemeral = zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
        let node = self.node();
        let data = self.data();
        let deadline = tokio::time::Instant::now() + self.session_timeout * 2 + Duration::from_secs(1);
        loop {
            match client.create(&node, &data, &ephemeral).await {
                Ok(_) => return Ok(()),
                Err(zk::Error::NodeExists) => {
                    let (stat, gone) = client.check_and_watch_stat(&node).await.map_err(|e| e.to_string())?;
                    if stat.is_some_and(|s| s.ephemeral_owner == client.session_id().0) {
                        return Ok(());
                    }
                    if stat.is_some() {
                        tracing::info!(node = %node, "node held by an earlier session; waiting for it to expire");
                        if tokio::time::timeout_at(deadline, gone.changed()).await.is_err() {
                            return Err(format!("{node} is held by another live session"));
                        }
                    }
                }
                Err(e) => return Err(format!("cannot create {node}: {e}")),
            }
        }
    }
}
