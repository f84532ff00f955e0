//! Which version of the plugin contract (`wit/plugin.wit`, package
//! `wasmgate:plugin@<semver>`) a component was built against, for tools that
//! tell an author why a plugin does not load.

use wasmtime::component::Component;

use crate::runtime::PluginRuntime;

/// The package every plugin interface belongs to.
const PACKAGE: &str = "wasmgate:plugin";

/// The version of the contract this runtime runs plugins of.
pub const CONTRACT_VERSION: &str = "0.3.0";

impl PluginRuntime {
    /// The `wasmgate:plugin` version `bytes` were built against (`"0.3.0"`),
    /// read from the names of the component's imports and exports
    /// (`wasmgate:plugin/types@0.3.0`). `None` when the bytes are not a
    /// component or name no `wasmgate:plugin` interface. Compiles the
    /// component: for tools, not the hot path.
    pub fn contract_of(&self, bytes: &[u8]) -> Option<String> {
        let engine = &self.inner.engine;
        let component = Component::new(engine, bytes).ok()?;
        let ty = component.component_type();
        let names: Vec<&str> = ty
            .imports(engine)
            .chain(ty.exports(engine))
            .map(|(name, _)| name)
            .collect();
        names.into_iter().find_map(version_in)
    }
}

/// `0.3.0` of `wasmgate:plugin/types@0.3.0`.
fn version_in(name: &str) -> Option<String> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    let (_, version) = rest.split_once('@')?;
    Some(version.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_interface_names() {
        assert_eq!(version_in("wasmgate:plugin/types@0.3.0").as_deref(), Some("0.3.0"));
        assert_eq!(version_in("wasmgate:plugin/log@1.0.0-rc.1").as_deref(), Some("1.0.0-rc.1"));
        assert_eq!(version_in("wasi:io/streams@0.2.0"), None);
        assert_eq!(version_in("wasmgate:plugin/types"), None);
    }

    #[test]
    fn the_version_matches_the_wit_package() {
        let wit = include_str!("../../../wit/plugin.wit");
        let package = format!("package {PACKAGE}@{CONTRACT_VERSION};");
        assert!(wit.lines().any(|l| l.trim() == package), "wit/plugin.wit does not declare {package}");
    }
}
