//! `PluginRuntime`: the engine, the linker, the epoch ticker and the state
//! plugins share; the entry point for loading plugins.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::Engine;

use crate::bindings::HttpMiddlewarePre;
use crate::engine::{self, Ticker};
use crate::error::PluginError;
use crate::plugin::Plugin;
use crate::settings::RuntimeSettings;
use crate::shared::SharedState;
use crate::store_data::{Identity, StoreData};

/// Runs plugins. Cheap to clone (all clones share one engine); create one
/// per process. Loading and configuring are meant for startup and reload,
/// off the hot path; the calls on `Chain` are the hot path.
#[derive(Clone)]
pub struct PluginRuntime {
    pub(crate) inner: Arc<RuntimeInner>,
}

/// A compiled plugin version kept for reuse: name, content digest, and the
/// instantiation template.
type Compiled = (String, [u8; 32], HttpMiddlewarePre<StoreData>);

pub(crate) struct RuntimeInner {
    pub(crate) engine: Engine,
    linker: Linker<StoreData>,
    pub(crate) settings: RuntimeSettings,
    /// Counters, buckets and kv per plugin name, kept across reloads.
    shared: Mutex<HashMap<String, Arc<SharedState>>>,
    /// Recently compiled versions (name, digest, instantiation template), newest
    /// last: swapping back to a version seen a moment ago (a rollback, a flapping
    /// deploy) needs no recompilation. Holds no `Plugin`, so no cycle back here.
    compiled: Mutex<std::collections::VecDeque<Compiled>>,
    /// Drives deadlines; dropped (and joined) with the last reference.
    _ticker: Ticker,
}

/// Compiled versions kept for reuse, across all names.
const RECENTLY_COMPILED: usize = 16;

/// Whether `name` may name a plugin: lower-case ASCII letters, digits, `-`
/// and `_`, starting with a letter or digit, at most 64 bytes.
pub fn valid_plugin_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

impl PluginRuntime {
    /// Sets up the engine (pooling allocator, epoch interruption, cache),
    /// the linker and the epoch ticker thread.
    pub fn new(settings: RuntimeSettings) -> Result<Self, PluginError> {
        crate::pool::quiet_panics_in_plugins();
        let engine = engine::engine(&settings)?;
        let linker = engine::linker(&engine)?;
        let ticker = Ticker::start(engine.clone(), settings.epoch_tick)?;
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                settings,
                shared: Mutex::new(HashMap::new()),
                compiled: Mutex::new(std::collections::VecDeque::new()),
                _ticker: ticker,
            }),
        })
    }

    fn recently_compiled(&self, name: &str, digest: &[u8; 32]) -> Option<HttpMiddlewarePre<StoreData>> {
        let compiled = self.inner.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        compiled.iter().rev().find(|(n, d, _)| n == name && d == digest).map(|(_, _, pre)| pre.clone())
    }

    pub fn settings(&self) -> &RuntimeSettings {
        &self.inner.settings
    }

    /// Compiles `bytes` as plugin `name` and checks it against the world.
    /// Slow (milliseconds, Cranelift): call it off the hot path.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Arc<Plugin>, PluginError> {
        if !valid_plugin_name(name) {
            return Err(PluginError::BadName(name.to_owned()));
        }
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        let version: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let compile_error = |err: wasmtime::Error| PluginError::Compile {
            plugin: name.to_owned(),
            reason: format!("{err:#}"),
        };
        let pre = match self.recently_compiled(name, &digest) {
            Some(pre) => pre,
            None => {
                crate::bad_file::check_header(name, bytes)?;
                let component = Component::new(&self.inner.engine, bytes).map_err(compile_error)?;
                crate::bad_file::check_exports(name, &self.inner.engine, &component)?;
                let pre = self.inner.linker.instantiate_pre(&component).map_err(compile_error)?;
                let pre = HttpMiddlewarePre::new(pre).map_err(compile_error)?;
                let mut compiled = self.inner.compiled.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if compiled.len() >= RECENTLY_COMPILED {
                    compiled.pop_front();
                }
                compiled.push_back((name.to_owned(), digest, pre.clone()));
                pre
            }
        };
        let identity = Arc::new(Identity {
            name: name.into(),
            version: version.into(),
            shared: self.shared_state(name),
        });
        Ok(Arc::new(Plugin::new(
            identity,
            pre,
            digest,
            self.inner.clone(),
        )))
    }

    /// Loads `<dir>/<name>.wasm` style files: the name is the file stem.
    pub fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or_else(|| PluginError::BadName(path.display().to_string()))?;
        let bytes = std::fs::read(path).map_err(|source| PluginError::Read {
            path: path.to_owned(),
            source,
        })?;
        self.load(name, &bytes)
    }

    fn shared_state(&self, name: &str) -> Arc<SharedState> {
        let mut all = self
            .inner
            .shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        all.entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(SharedState::new(
                    self.inner.settings.max_counters,
                    self.inner.settings.max_kv_bytes,
                ))
            })
            .clone()
    }
}
