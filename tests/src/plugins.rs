//! Gateways with Wasm middleware: a temporary plugin folder filled with the test
//! plugins (built once per test run by `wasmgate_plugin::test_support`).

use std::path::{Path, PathBuf};

use tempfile::TempDir;

/// A plugin folder that lives as long as the value.
pub struct PluginDir {
    dir: TempDir,
}

impl PluginDir {
    /// A folder holding the named test plugins, each as `<as_name>.wasm`.
    pub fn with(plugins: &[(&str, &str)]) -> PluginDir {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let folder = PluginDir { dir };
        for (plugin, as_name) in plugins {
            folder.install(plugin, as_name);
        }
        folder
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Puts test plugin `plugin` in place as `<as_name>.wasm` the way a careful
    /// deploy does: written under a hidden name, then renamed over the old one.
    pub fn install(&self, plugin: &str, as_name: &str) {
        let source = wasmgate_plugin::test_support::test_plugin(plugin);
        let bytes = std::fs::read(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        self.write(as_name, &bytes);
    }

    /// Writes raw bytes as `<name>.wasm` (rename into place).
    pub fn write(&self, name: &str, bytes: &[u8]) {
        let temporary = self.dir.path().join(format!(".{name}.wasm.partial"));
        std::fs::write(&temporary, bytes).unwrap_or_else(|e| panic!("write: {e}"));
        std::fs::rename(&temporary, self.file(name)).unwrap_or_else(|e| panic!("rename: {e}"));
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.wasm"))
    }
}

/// Config text: one listener `web`, one route `/` to `backend` running `plugins`
/// (TOML array items), with the plugin folder `dir`.
pub fn plugin_config(backend: std::net::SocketAddr, dir: &Path, plugins: &str) -> String {
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
name = "main"
listener = "web"
upstream = "up"
plugins = [ {plugins} ]

[[upstream]]
name = "up"
targets = [ {{ address = "{backend}" }} ]

[plugins]
dir = "{}"

[runtime]
workers = 2

[log]
access = false
"#,
        dir.display()
    )
}
