//! Errors: `PluginError` for loading and configuring (off the hot path),
//! `Failure` for one call that went wrong (on the hot path).

use std::fmt;
use std::path::PathBuf;

/// Why a plugin could not be loaded or configured. The message names the
/// plugin, its version and the reason, ready for an operator's eyes.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The name is not usable as a plugin name (it comes from a file name).
    #[error("`{0}` is not a valid plugin name: use lower-case letters, digits, `-` and `_`")]
    BadName(String),
    /// The plugin file could not be read.
    #[error("cannot read plugin file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The plugin folder could not be read; `path` is absolute.
    #[error("cannot read the plugin folder {}: {source}; create it, or fix `[plugins] dir` (relative to the config file)", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bytes are not WebAssembly at all; `start` is how they begin, quoted.
    #[error("not a WebAssembly file (starts with {start}); build the plugin with cargo build --target wasm32-wasip2")]
    NotWasm { plugin: String, start: String },
    /// A core module, which is what `wasm32-unknown-unknown` or `wasm32-wasip1` make.
    #[error("a core WebAssembly module, not a component; build the plugin with cargo build --target wasm32-wasip2 (which makes components)")]
    CoreModule { plugin: String },
    /// A component without the plugin's exports: its crate never exported a plugin type.
    #[error("the component has no `init` export, so it is no wasmgate plugin; the crate must call wasmgate_sdk::export_plugin!(YourType)")]
    NotAPlugin { plugin: String },
    /// The bytes are not a component wasmgate can run (not Wasm, a core
    /// module, a component for another world, missing exports...).
    #[error(
        "plugin `{plugin}`: not a valid wasmgate:plugin@0.3.0 http-middleware component: {reason}"
    )]
    Compile { plugin: String, reason: String },
    /// The plugin's `init` returned an error for this configuration.
    #[error("plugin `{plugin}` ({version}) rejected its config: {message}")]
    InitRejected {
        plugin: String,
        version: String,
        message: String,
    },
    /// Instantiating the plugin or running its `init` failed (trap, deadline,
    /// memory cap, no free instance slot).
    #[error("plugin `{plugin}` ({version}) failed to start: {reason}")]
    Start {
        plugin: String,
        version: String,
        reason: String,
    },
    /// The runtime itself could not be set up.
    #[error("plugin runtime: {0}")]
    Runtime(String),
}

/// How one call into a plugin went wrong. Each of these costs only the
/// request being handled, following the plugin's `OnError` policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The guest trapped (a panic, `unreachable`, an out-of-bounds access...).
    Trap(String),
    /// The call ran past its deadline.
    Deadline,
    /// The guest tried to grow its memory past the cap.
    MemoryCap,
    /// A fresh instance could not be created or initialised.
    Start(String),
    /// The plugin returned something the host refuses (bad header, status...).
    Invalid(String),
    /// A fail-closed `state = "global"` entry called `take` while Redis was
    /// unreachable: answered 503 whatever the plugin's `on_error`.
    StateUnavailable,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Trap(reason) => write!(f, "trapped: {reason}"),
            Failure::Deadline => f.write_str("ran past its deadline"),
            Failure::MemoryCap => f.write_str("hit its memory cap"),
            Failure::Start(reason) => write!(f, "could not start an instance: {reason}"),
            Failure::Invalid(reason) => write!(f, "returned invalid output: {reason}"),
            Failure::StateUnavailable => f.write_str("needed the global state backend (Redis), which is unreachable"),
        }
    }
}
