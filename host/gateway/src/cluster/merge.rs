//! The config a gateway of a fleet serves: the pushed version's config with this
//! gateway's own tables in place of the pushed ones.
//!
//! Per gateway (from the local file, whatever the version says): `[[listener]]`,
//! `[admin]`, `[runtime]`, `[log]`, `[metrics]`, `[tracing]`, `[cluster]`, and
//! `[plugins] cache_dir`. Of `[plugins]`, the runtime limits the local file sets
//! override the version's. Everything else — routes, upstreams, `[security]`,
//! `[state]`, which plugins with which config — is the fleet's, from the
//! version. The plugin folder is the version's cached copy.

use std::path::Path;

use toml::{Table, Value};

use crate::config::{Config, ConfigError};

/// Top-level tables each gateway keeps from its own file.
pub const PER_GATEWAY: &[&str] = &["listener", "admin", "runtime", "log", "metrics", "tracing", "cluster"];
/// Keys of `[plugins]` a gateway's own file may set for itself.
pub const PER_GATEWAY_PLUGINS: &[&str] =
    &["call_deadline", "memory_limit_mb", "pool_size", "max_uses", "max_body_bytes", "max_instances", "cache_dir"];

/// `local` merged with the version's config text; `name` names the result in
/// messages (`gw1.toml@<id>`) and relative paths start from `local`'s folder.
pub fn merge(local: &Config, pushed: &[u8], plugins_dir: &Path, name: &Path) -> Result<Config, ConfigError> {
    let fail = |reason: String| ConfigError::new(name, "", reason);
    let pushed = std::str::from_utf8(pushed).map_err(|_| fail("the pushed config is not UTF-8".into()))?;
    let pushed: Table = pushed.parse().map_err(|e: toml::de::Error| fail(format!("the pushed config: {}", e.message())))?;
    let local_table = match toml::Value::try_from(local.as_written.value()) {
        Ok(Value::Table(table)) => table,
        _ => return Err(fail("the local config cannot be merged".into())),
    };
    let mut merged = pushed;
    for key in PER_GATEWAY {
        merged.remove(*key);
        if let Some(value) = local_table.get(*key) {
            merged.insert((*key).to_owned(), value.clone());
        }
    }
    if let Some(Value::Table(plugins)) = merged.get_mut("plugins") {
        plugins.insert("dir".into(), Value::String(plugins_dir.display().to_string()));
        // Version folders never change: there is nothing to watch.
        plugins.insert("watch".into(), Value::Boolean(false));
        // A path on the pushing machine means nothing here.
        plugins.remove("cache_dir");
        let local_plugins = local_table.get("plugins").and_then(Value::as_table);
        for key in PER_GATEWAY_PLUGINS {
            if let Some(value) = local_plugins.and_then(|p| p.get(*key)) {
                plugins.insert((*key).to_owned(), value.clone());
            }
        }
    }
    let text = toml::to_string(&merged).map_err(|e| fail(format!("cannot write the merged config: {e}")))?;
    let base = local.source.as_deref().or(Some(local.as_written.file())).and_then(Path::parent).unwrap_or(Path::new("."));
    let mut config = Config::parse_in(&text, name, base)?;
    config.source = None;
    config.cluster = local.cluster.clone();
    Ok(config)
}
