use std::collections::BTreeMap;
use std::path::Path;

use super::cache::Cache;
use super::merge::merge;
use super::version::{assemble, Files, Manifest, CHUNK};
use crate::config::Config;

fn files(config: &str, plugin: &[u8]) -> Files {
    Files { config: config.as_bytes().to_vec(), plugins: BTreeMap::from([("p".to_owned(), plugin.to_vec())]) }
}

#[test]
fn a_version_id_depends_on_the_files_only() {
    let big = vec![7u8; CHUNK * 2 + 1];
    let (a, blobs) = Manifest::new(&files("x = 1", &big), "me".into());
    let (b, _) = Manifest::new(&files("x = 1", &big), "someone else".into());
    let (c, _) = Manifest::new(&files("x = 2", &big), "me".into());
    assert_eq!(a.id(), b.id());
    assert_ne!(a.id(), c.id());
    assert_eq!(a.plugins["p"].chunks.len(), 3, "chunked under the node limit");
    assert!(blobs.iter().all(|(_, chunk)| chunk.len() <= CHUNK));
    let json = serde_json::to_vec(&a).unwrap();
    assert!(Manifest::parse(&a.id(), &json).is_ok());
    assert!(Manifest::parse(&c.id(), &json).unwrap_err().contains("describes version"));
}

#[test]
fn damaged_or_oversized_input_is_refused() {
    let (manifest, blobs) = Manifest::new(&files("x = 1", b"plugin bytes"), "me".into());
    let entry = &manifest.plugins["p"];
    let chunks: Vec<Vec<u8>> = blobs[1..].iter().map(|(_, c)| c.clone()).collect();
    assert_eq!(assemble("p", entry, chunks).unwrap(), b"plugin bytes");
    assert!(assemble("p", entry, vec![b"plugin bytez".to_vec()]).unwrap_err().contains("does not match"));

    let mut bad = manifest.clone();
    bad.plugins.insert("../etc".into(), entry.clone());
    let json = serde_json::to_vec(&bad).unwrap();
    assert!(Manifest::parse(&bad.id(), &json).unwrap_err().contains("not a plugin name"));

    let mut huge = manifest.clone();
    huge.config.size = u64::MAX;
    let json = serde_json::to_vec(&huge).unwrap();
    assert!(Manifest::parse(&huge.id(), &json).unwrap_err().contains("inconsistent"));
    assert!(Manifest::parse("0000000000000000", b"not json").is_err());
}

#[test]
fn the_cache_gives_back_only_intact_versions() {
    let dir = std::env::temp_dir().join(format!("wasmgate-cluster-cache-{}", std::process::id()));
    let cache = Cache::new(&dir);
    let version = files("x = 1", b"plugin bytes");
    let (manifest, _) = Manifest::new(&version, "me".into());
    let id = manifest.id();
    cache.store(&id, &serde_json::to_vec(&manifest).unwrap(), &version).unwrap();
    cache.set_current(&id).unwrap();
    assert_eq!(cache.current().as_deref(), Some(id.as_str()));
    assert_eq!(cache.load(&id).unwrap().1.plugins["p"], b"plugin bytes");
    std::fs::write(cache.plugins_dir(&id).join("p.wasm"), b"tampered").unwrap();
    assert!(cache.load(&id).unwrap_err().contains("digest"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_merged_config_keeps_this_gateways_own_tables() {
    let local = Config::parse(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:8081"
[runtime]
workers = 1
[plugins]
dir = "unused"
memory_limit_mb = 8
[cluster]
id = "gw1"
zookeeper = { hosts = ["127.0.0.1:2181"], path = "/wasmgate" }
"#,
        Path::new("/etc/wasmgate/gw1.toml"),
    )
    .unwrap();
    let pushed = r#"
[[listener]]
name = "web"
address = "0.0.0.0:80"
[[route]]
listener = "web"
upstream = "up"
[[upstream]]
name = "up"
targets = [ { address = "127.0.0.1:2003" } ]
[runtime]
workers = 16
[plugins]
dir = "plugins"
memory_limit_mb = 64
pool_size = 2
"#;
    let merged = merge(&local, pushed.as_bytes(), Path::new("/cache/versions/v/plugins"), Path::new("gw1.toml@v")).unwrap();
    assert_eq!(merged.listeners[0].address.to_string(), "127.0.0.1:8081");
    assert_eq!(merged.runtime.workers, 1);
    assert_eq!(merged.routes.len(), 1);
    let plugins = merged.plugins.unwrap();
    assert_eq!(plugins.dir, Path::new("/cache/versions/v/plugins"));
    assert_eq!(plugins.memory_limit, 8 << 20, "the gateway's own limit");
    assert_eq!(plugins.pool_size, 2, "the fleet's setting");
    assert!(!plugins.watch);
    assert_eq!(merged.cluster, local.cluster);
    assert!(merged.source.is_none());
    // A version naming a listener this gateway does not have is refused, with the version named.
    let other = pushed.replace("listener = \"web\"", "listener = \"internal\"");
    let e = merge(&local, other.as_bytes(), Path::new("/p"), Path::new("gw1.toml@v")).unwrap_err();
    assert!(e.to_string().starts_with("gw1.toml@v: "), "{e}");
}
