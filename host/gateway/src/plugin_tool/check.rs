//! `wasmgate plugin check FILE.wasm [--config ...]`: loads a plugin exactly
//! as the gateway does and runs its `init`, saying what it was built against
//! and what `init` answered.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;
use wasmgate_plugin::{PluginError, CONTRACT_VERSION};

use super::{load, say};

#[derive(Args)]
pub struct CheckArgs {
    /// The component, e.g. target/wasm32-wasip2/release/my_plugin.wasm. Its
    /// file stem is the name it loads under, as in the plugins folder.
    #[arg(value_name = "FILE.wasm")]
    file: PathBuf,
    /// The config `init` gets: JSON, TOML (`{ key = "value" }` as in a route,
    /// or `key = "value"` lines), or `@FILE`. Default: `{}`.
    #[arg(long, value_name = "JSON|TOML")]
    config: Option<String>,
    /// Take the runtime settings (deadline, memory cap...) from this gateway
    /// config's [plugins] table instead of the defaults.
    #[arg(long, value_name = "FILE")]
    gateway: Option<PathBuf>,
}

pub fn run(args: &CheckArgs, out: &mut dyn Write) -> Result<bool, String> {
    let config = load::config_json(args.config.as_deref(), "--config")?;
    let runtime = load::runtime(&load::plugins_config(args.gateway.as_deref())?)?;
    let bytes = std::fs::read(&args.file).map_err(|e| format!("cannot read {}: {e}", args.file.display()))?;
    say!(out, "plugin:   {} ({} KiB)", args.file.display(), bytes.len().div_ceil(1024));
    let contract = runtime.contract_of(&bytes);
    match contract.as_deref() {
        Some(CONTRACT_VERSION) => say!(out, "contract: wasmgate:plugin@{CONTRACT_VERSION}"),
        Some(other) => say!(
            out,
            "contract: wasmgate:plugin@{other}, but this gateway runs @{CONTRACT_VERSION}: build the plugin with a wasmgate-sdk for {CONTRACT_VERSION}"
        ),
        None => say!(out, "contract: none (not a component that uses wasmgate:plugin: build it with wasmgate-sdk for wasm32-wasip2)"),
    }
    let plugin = match runtime.load_file(&args.file) {
        Ok(plugin) => plugin,
        Err(e) => {
            say!(out, "load:     failed: {e}");
            return Ok(false);
        }
    };
    say!(out, "load:     ok, as plugin `{}` version {}", plugin.name(), plugin.version());
    match plugin.configure(&config, wasmgate_plugin::OnError::FailClosed) {
        Ok(_) => {
            say!(out, "init:     ok with {config}");
            Ok(true)
        }
        Err(PluginError::InitRejected { message, .. }) => {
            say!(out, "init:     refused {config}: {message}");
            Ok(false)
        }
        Err(e) => {
            say!(out, "init:     failed: {e}");
            Ok(false)
        }
    }
}
