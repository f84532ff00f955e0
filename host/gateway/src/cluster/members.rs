//! Member nodes: each gateway of a fleet holds an ephemeral
//! `<root>/members/<id>` saying which version it runs and, if it refused one,
//! which and why. `wasmgate fleet status` reads them all.

use serde::{Deserialize, Serialize};
use zookeeper_client as zk;

use super::{parse_current, Paths};

/// What a member node holds (JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    /// The fleet version it serves; none while it serves only its own file.
    pub version: Option<String>,
    /// When it applied that version (RFC 3339), or started on it.
    pub applied_at: Option<String>,
    /// `zookeeper` (fetched), `cache` (from disk at start) or `local` (its own file only).
    pub source: String,
    /// The last version it refused, unless it applied a later one since.
    pub refused: Option<Refused>,
    pub pid: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Refused {
    pub version: String,
    pub reason: String,
    pub at: String,
}

/// The fleet as ZooKeeper sees it.
#[derive(Debug, Clone)]
pub struct FleetStatus {
    pub current: Option<String>,
    pub members: Vec<Member>,
    /// Member nodes that could not be read as a member: (node, why).
    pub unreadable: Vec<(String, String)>,
}

/// Reads `current` and every member node.
pub async fn status(hosts: &[String], root: &str) -> Result<FleetStatus, String> {
    let paths = Paths::new(root);
    let client = super::tool_connect(hosts).await?;
    let current = match client.get_data(&paths.current()).await {
        Ok((data, _)) => parse_current(&data),
        Err(zk::Error::NoNode) => None,
        Err(e) => return Err(format!("{}: {e}", paths.current())),
    };
    let children = match client.list_children(&paths.members()).await {
        Ok(children) => children,
        Err(zk::Error::NoNode) => Vec::new(),
        Err(e) => return Err(format!("{}: {e}", paths.members())),
    };
    let mut members = Vec::new();
    let mut unreadable = Vec::new();
    for child in children {
        match client.get_data(&paths.member(&child)).await {
            Ok((data, _)) => match serde_json::from_slice::<Member>(&data) {
                Ok(member) => members.push(member),
                Err(e) => unreadable.push((child, e.to_string())),
            },
            Err(zk::Error::NoNode) => {}
            Err(e) => unreadable.push((child, e.to_string())),
        }
    }
    members.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(FleetStatus { current, members, unreadable })
}

impl FleetStatus {
    /// The table `wasmgate fleet status` prints.
    pub fn table(&self) -> String {
        let current = self.current.as_deref().unwrap_or("-");
        let mut out = format!("current: {current}\n");
        let rows: Vec<[String; 5]> = self
            .members
            .iter()
            .map(|m| {
                let version = m.version.as_deref().unwrap_or("-");
                let mark = if m.version.as_deref() == self.current.as_deref() { "" } else { " *" };
                [
                    m.id.clone(),
                    format!("{version}{mark}"),
                    m.source.clone(),
                    m.applied_at.clone().unwrap_or_else(|| "-".into()),
                    m.refused.as_ref().map(|r| format!("{} at {}: {}", r.version, r.at, r.reason)).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        let header = ["MEMBER", "VERSION", "FROM", "APPLIED", "REFUSED"].map(String::from);
        let mut widths = [0usize; 4];
        for row in std::iter::once(&header).chain(&rows) {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.len());
            }
        }
        for row in std::iter::once(&header).chain(&rows) {
            let line = format!(
                "{:w0$}  {:w1$}  {:w2$}  {:w3$}  {}",
                row[0], row[1], row[2], row[3], row[4],
                w0 = widths[0], w1 = widths[1], w2 = widths[2], w3 = widths[3]
            );
            out.push_str(line.trim_end());
            out.push('\n');
        }
        if self.members.iter().any(|m| m.version.as_deref() != self.current.as_deref()) {
            out.push_str("* not on the current version\n");
        }
        for (node, why) in &self.unreadable {
            out.push_str(&format!("unreadable member node {node}: {why}\n"));
        }
        out
    }
}
