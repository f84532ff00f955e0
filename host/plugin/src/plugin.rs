//! `Plugin`: one compiled version of a plugin, ready to be configured.

use std::fmt;
use std::sync::Arc;

use crate::bindings::HttpMiddlewarePre;
use crate::error::PluginError;
use crate::pool::{ConfiguredPlugin, StartError};
use crate::runtime::RuntimeInner;
use crate::settings::OnError;
use crate::shared::redis::GlobalBinding;
use crate::store_data::{Identity, StoreData};

/// A compiled plugin version: its code and the pre-linked instance template
/// (`InstancePre`), built once. Configure it once per route that uses it.
pub struct Plugin {
    pub(crate) identity: Arc<Identity>,
    pub(crate) pre: HttpMiddlewarePre<StoreData>,
    /// SHA-256 of the bytes it was compiled from (a reload skips files whose
    /// digest did not change).
    digest: [u8; 32],
    pub(crate) runtime: Arc<RuntimeInner>,
}

impl fmt::Debug for Plugin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &&*self.identity.name)
            .field("version", &&*self.identity.version)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn new(
        identity: Arc<Identity>,
        pre: HttpMiddlewarePre<StoreData>,
        digest: [u8; 32],
        runtime: Arc<RuntimeInner>,
    ) -> Self {
        Self {
            identity,
            pre,
            digest,
            runtime,
        }
    }

    /// The plugin's name (its file stem).
    pub fn name(&self) -> &str {
        &self.identity.name
    }

    /// A short hash of the plugin's bytes, naming this version in logs.
    pub fn version(&self) -> &str {
        &self.identity.version
    }

    /// SHA-256 of the plugin's bytes.
    pub fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Binds the plugin to one route's configuration (JSON text; pass `{}`
    /// when the route gives none). Validates it by starting an instance and
    /// calling `init`; that warm instance then serves the first request.
    pub fn configure(
        self: &Arc<Self>,
        config_json: &str,
        on_error: OnError,
    ) -> Result<Arc<ConfiguredPlugin>, PluginError> {
        self.configure_with_state(config_json, on_error, None)
    }

    /// `configure`, with the plugin's token buckets (`take`) kept in the
    /// fleet's global state when `global` is given (`state = "global"`).
    pub fn configure_with_state(
        self: &Arc<Self>,
        config_json: &str,
        on_error: OnError,
        global: Option<GlobalBinding>,
    ) -> Result<Arc<ConfiguredPlugin>, PluginError> {
        let configured = ConfiguredPlugin::new(self.clone(), config_json, on_error, global);
        match configured.start() {
            Ok(instance) => {
                configured.put_back(instance);
                Ok(Arc::new(configured))
            }
            Err(StartError::Rejected(message)) => Err(PluginError::InitRejected {
                plugin: self.name().to_owned(),
                version: self.version().to_owned(),
                message,
            }),
            Err(StartError::Failed(failure)) => Err(PluginError::Start {
                plugin: self.name().to_owned(),
                version: self.version().to_owned(),
                reason: failure.to_string(),
            }),
        }
    }
}
