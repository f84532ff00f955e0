//! `discovery` of an upstream: raw → validated.

use super::super::discovery::*;
use super::super::raw::RawDiscovery;
use super::{invalid, positive, Invalid};

pub fn discovery(raw: &RawDiscovery, key: &str) -> Result<DiscoveryConfig, Invalid> {
    let Some(zk) = &raw.zookeeper else {
        return Err(invalid(key, "names no source; expected `zookeeper = { hosts = [...], path = \"/...\" }`"));
    };
    let k = |field: &str| format!("{key}.zookeeper.{field}");
    hosts_and_path(&zk.hosts, &zk.path, &format!("{key}.zookeeper"))?;
    let path = &zk.path;
    let session_timeout = positive(zk.session_timeout, DEFAULT_SESSION_TIMEOUT, &k("session_timeout"))?;
    if session_timeout > std::time::Duration::from_secs(600) {
        return Err(invalid(k("session_timeout"), "must be at most 10m"));
    }
    let on_empty = match zk.on_empty.as_deref().unwrap_or("keep_last") {
        "keep_last" => OnEmpty::KeepLast,
        "unavailable" => OnEmpty::Unavailable,
        other => return Err(invalid(k("on_empty"), format!("`{other}` is not one of: keep_last, unavailable"))),
    };
    Ok(DiscoveryConfig::ZooKeeper(ZooKeeperConfig {
        hosts: zk.hosts.clone(),
        path: path.clone(),
        session_timeout,
        on_empty,
    }))
}

/// ZooKeeper servers (`host:port` each, at least one) and an absolute node path,
/// as discovery and `[cluster]` both name them; `key` is the table's key.
pub fn hosts_and_path(hosts: &[String], path: &str, key: &str) -> Result<(), Invalid> {
    let k = |field: &str| format!("{key}.{field}");
    if hosts.is_empty() {
        return Err(invalid(k("hosts"), "at least one `host:port` is required"));
    }
    for (i, host) in hosts.iter().enumerate() {
        let port = host.rsplit_once(':').map(|(name, port)| (name, port.parse::<u16>()));
        if !matches!(port, Some((name, Ok(p))) if !name.is_empty() && p != 0) || host.contains([',', '/', ' ']) {
            return Err(invalid(format!("{}[{i}]", k("hosts")), format!("`{host}` is not host:port")));
        }
    }
    let valid_path = path.starts_with('/')
        && (path == "/" || (!path.ends_with('/') && !path.contains("//")))
        && !path.chars().any(|c| c.is_control());
    if !valid_path {
        return Err(invalid(k("path"), format!("`{path}` is not an absolute ZooKeeper path such as `/real_server`")));
    }
    Ok(())
}
