//! Shared helpers: one runtime per settings, plugins compiled once, request
//! and response builders.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use http::{request, response};
use wasmgate_plugin::test_support::test_plugin;
use wasmgate_plugin::{
    Chain, ConfiguredPlugin, OnError, Plugin, PluginRuntime, RequestContext, RuntimeSettings,
};

/// Settings for tests: a generous deadline (the machine is shared with other
/// builds), few instance slots, and wasmtime's cache so that runtimes after
/// the first do not recompile.
pub fn settings() -> RuntimeSettings {
    let cache = wasmgate_plugin::test_support::test_plugins_dir()
        .parent()
        .map(|p| p.join("compiled-cache"));
    RuntimeSettings {
        call_deadline: Duration::from_millis(200),
        max_instances: 48,
        cache_dir: cache,
        ..RuntimeSettings::default()
    }
}

/// A runtime with [`settings`], shared by the tests that need nothing else,
/// with its plugins compiled once.
pub fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("wasmgate=debug,wasmgate_plugin=debug")
            .try_init();
        Shared {
            runtime: PluginRuntime::new(settings()).unwrap_or_else(|e| panic!("{e}")),
            plugins: Mutex::new(HashMap::new()),
        }
    })
}

pub struct Shared {
    pub runtime: PluginRuntime,
    plugins: Mutex<HashMap<String, Arc<Plugin>>>,
}

impl Shared {
    pub fn plugin(&self, name: &str) -> Arc<Plugin> {
        let mut plugins = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        plugins
            .entry(name.to_owned())
            .or_insert_with(|| load(&self.runtime, name))
            .clone()
    }

    pub fn configure(&self, name: &str, config: &str, on_error: OnError) -> Arc<ConfiguredPlugin> {
        self.plugin(name)
            .configure(config, on_error)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn chain(&self, plugins: &[(&str, &str, OnError)]) -> Chain {
        Chain::new(
            plugins
                .iter()
                .map(|(name, config, on_error)| self.configure(name, config, *on_error))
                .collect(),
        )
    }
}

pub fn load(runtime: &PluginRuntime, name: &str) -> Arc<Plugin> {
    runtime
        .load_file(&test_plugin(name))
        .unwrap_or_else(|e| panic!("{e}"))
}

pub fn request(method: &str, uri: &str) -> request::Parts {
    let (parts, ()) = http::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "example.com")
        .header("user-agent", "test")
        .body(())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_parts();
    parts
}

pub fn response(status: u16) -> response::Parts {
    let (parts, ()) = http::Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .header("content-length", "5")
        .body(())
        .unwrap_or_else(|e| panic!("{e}"))
        .into_parts();
    parts
}

pub fn ctx() -> RequestContext {
    RequestContext::new("test-route", "test-listener")
}

pub fn header<'a>(headers: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// A fresh, empty folder under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "wasmgate-plugin-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
