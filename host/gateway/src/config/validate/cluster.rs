//! `[cluster]`: raw → validated.

use std::path::Path;

use super::super::cluster::ClusterConfig;
use super::super::discovery::DEFAULT_SESSION_TIMEOUT;
use super::super::raw::cluster::RawCluster;
use super::{invalid, positive, Invalid};

/// `file` is the config file (for the default cache folder), `base` its folder.
pub fn cluster(raw: &RawCluster, file: &Path, base: &Path) -> Result<ClusterConfig, Invalid> {
    let Some(zk) = &raw.zookeeper else {
        return Err(invalid("cluster", "names no source; expected `zookeeper = { hosts = [...], path = \"/wasmgate\" }`"));
    };
    super::discovery::hosts_and_path(&zk.hosts, &zk.path, "cluster.zookeeper")?;
    if zk.path == "/" {
        return Err(invalid("cluster.zookeeper.path", "must not be `/`: the fleet needs a folder of its own, such as `/wasmgate`"));
    }
    let session_timeout = positive(zk.session_timeout, DEFAULT_SESSION_TIMEOUT, "cluster.zookeeper.session_timeout")?;
    if session_timeout > std::time::Duration::from_secs(600) {
        return Err(invalid("cluster.zookeeper.session_timeout", "must be at most 10m"));
    }
    if let Some(id) = &raw.id {
        let ok = !id.is_empty()
            && id.len() <= 128
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && id != "."
            && id != "..";
        if !ok {
            return Err(invalid("cluster.id", format!("`{id}` is not a member name (letters, digits, `-`, `_`, `.`)")));
        }
    }
    let cache_dir = match &raw.cache_dir {
        Some(dir) => base.join(dir),
        None => {
            let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "wasmgate".into());
            base.join(format!("{stem}.fleet"))
        }
    };
    // Absolute: the fetched config names its plugin folder inside the cache,
    // and a relative path would be read again relative to the config's folder.
    let cache_dir = std::path::absolute(&cache_dir).unwrap_or(cache_dir);
    Ok(ClusterConfig { hosts: zk.hosts.clone(), path: zk.path.clone(), session_timeout, id: raw.id.clone(), cache_dir })
}
