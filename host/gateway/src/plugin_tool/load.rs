//! What `check` and `bench` share: the gateway's plugin settings, a plugin's
//! config given as JSON or TOML, and loading a plugin as the gateway does.

use std::path::Path;
use std::sync::Arc;

use wasmgate_plugin::{ConfiguredPlugin, OnError, PluginError, PluginRuntime};

use crate::config::{Config, PluginsConfig};

/// A config with a `[plugins]` table that sets nothing: validating it gives
/// the settings a gateway runs plugins with by default.
const DEFAULTS: &str = "[[listener]]\nname = \"plugin-tool\"\naddress = \"127.0.0.1:0\"\n\n[plugins]\ndir = \".\"\n";

/// The `[plugins]` settings of the gateway config `gateway`, or the defaults.
pub fn plugins_config(gateway: Option<&Path>) -> Result<PluginsConfig, String> {
    let config = match gateway {
        Some(path) => Config::load(path).map_err(|e| e.to_string())?,
        None => Config::parse(DEFAULTS, Path::new("wasmgate.toml")).map_err(|e| e.to_string())?,
    };
    match (config.plugins, gateway) {
        (Some(plugins), _) => Ok(plugins),
        (None, Some(path)) => Err(format!("{}: has no [plugins] table to take the settings from", path.display())),
        (None, None) => Err("the default plugin settings did not validate".into()),
    }
}

/// A plugin runtime set up as a gateway with `plugins` sets it up.
pub fn runtime(plugins: &PluginsConfig) -> Result<PluginRuntime, String> {
    PluginRuntime::new(crate::plugins::settings(plugins)).map_err(|e| format!("cannot start the plugin runtime: {e}"))
}

/// A plugin's config as the gateway hands it to `init`: JSON text of a
/// table. `text` is a JSON object, a TOML inline table (`{ rate = 10 }`, as
/// in a route) or TOML lines (`rate = 10`), or `@FILE` holding one of them.
pub fn config_json(text: Option<&str>, flag: &str) -> Result<String, String> {
    let Some(text) = text else {
        return Ok("{}".to_owned());
    };
    let text = String::from_utf8(arg_bytes(text, flag)?).map_err(|_| format!("{flag}: not UTF-8 text"))?;
    let json = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(table)) => return Ok(serde_json::Value::Object(table).to_string()),
        Ok(_) => {
            return Err(format!("{flag}: a plugin's config is a table (a JSON object, or TOML `{{ key = value }}`)"))
        }
        Err(e) => e,
    };
    // An inline table, as a route writes it (`{ rate = 10 }`), or `key = value` lines.
    let toml = match text.trim_start().starts_with('{') {
        true => toml::from_str::<toml::Table>(&format!("config = {text}")).map(|mut t| t.remove("config")),
        false => toml::from_str::<toml::Table>(&text).map(|t| Some(toml::Value::Table(t))),
    };
    match toml {
        // As the gateway does with a route's `config` (config/validate/plugins.rs).
        Ok(Some(toml::Value::Table(table))) => {
            serde_json::to_string(&table).map_err(|e| format!("{flag}: cannot be passed on as JSON: {e}"))
        }
        Ok(_) => Err(format!("{flag}: a plugin's config is a table (a JSON object, or TOML `{{ key = value }}`)")),
        Err(toml) => {
            let reason = toml.message().trim().replace('\n', "; ");
            Err(format!(
                "{flag}: neither JSON ({json}) nor TOML ({})",
                if reason.is_empty() { "incomplete" } else { &reason }
            ))
        }
    }
}

/// The bytes of an argument that is `TEXT` or `@FILE`.
pub fn arg_bytes(value: &str, flag: &str) -> Result<Vec<u8>, String> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read(path).map_err(|e| format!("{flag}: cannot read {path}: {e}")),
        None => Ok(value.as_bytes().to_vec()),
    }
}

/// Loads `path` under its file stem, as the gateway loads a plugin of its
/// folder, and configures it (runs `init`) with `config_json`.
pub fn configure(
    runtime: &PluginRuntime,
    path: &Path,
    config_json: &str,
) -> Result<Arc<ConfiguredPlugin>, PluginError> {
    runtime.load_file(path)?.configure(config_json, OnError::FailClosed)
}
