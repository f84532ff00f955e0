//! Loading files and folders, and refusing what cannot run.

use std::sync::Arc;

use wasmgate_plugin::test_support::test_plugin;
use wasmgate_plugin::{OnError, PluginError};

use super::support::{shared, temp_dir};

fn rejection(config: &str) -> String {
    match shared()
        .plugin("strict-config")
        .configure(config, OnError::FailClosed)
    {
        Err(PluginError::InitRejected { message, .. }) => message,
        Err(other) => panic!("expected a rejection, got {other}"),
        Ok(_) => panic!("expected {config} to be rejected"),
    }
}

#[test]
fn init_rejections_carry_the_plugins_message() {
    assert_eq!(rejection(r#"{"limit": 0}"#), "limit must be at least 1");
    let unknown = rejection(r#"{"limt": 1}"#);
    assert!(unknown.contains("unknown field `limt`"), "{unknown}");
    let wrong = rejection(r#"{"limit": "many"}"#);
    assert!(wrong.contains("invalid config at `limit`"), "{wrong}");
    let missing = rejection("{}");
    assert!(missing.contains("missing field `limit`"), "{missing}");
    assert!(shared()
        .plugin("strict-config")
        .configure(r#"{"limit": 3}"#, OnError::FailClosed)
        .is_ok());

    let err = shared()
        .plugin("strict-config")
        .configure(r#"{"limit": 0}"#, OnError::FailClosed)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.starts_with("plugin `strict-config` ("), "{err}");
    assert!(
        err.contains("rejected its config: limit must be at least 1"),
        "{err}"
    );
}

#[test]
fn what_is_not_a_plugin_is_refused() {
    let runtime = &shared().runtime;
    assert!(matches!(
        runtime.load("junk", b"not wasm"),
        Err(PluginError::Compile { .. })
    ));
    // A core module, not a component.
    let core = b"\0asm\x01\0\0\0";
    assert!(matches!(
        runtime.load("core", core),
        Err(PluginError::Compile { .. })
    ));
    // A component that exports nothing.
    let empty = b"\0asm\x0d\0\x01\0";
    let err = runtime
        .load("empty", empty)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("plugin `empty`"), "{err}");
    assert!(matches!(
        runtime.load("Bad Name", b""),
        Err(PluginError::BadName(_))
    ));
}

#[test]
fn a_folder_loads_as_a_unit_and_reuses_unchanged_plugins() {
    let runtime = &shared().runtime;
    let dir = temp_dir("set");
    let copy = |name: &str, as_name: &str| {
        std::fs::copy(test_plugin(name), dir.join(as_name)).unwrap_or_else(|e| panic!("{e}"));
    };
    copy("noop", "noop.wasm");
    copy("header-adder", "header-adder.wasm");
    copy("noop", ".partial.wasm");
    std::fs::write(dir.join("README.txt"), "not a plugin").unwrap_or_else(|e| panic!("{e}"));

    let first = runtime
        .load_dir(&dir, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.names().collect::<Vec<_>>(), ["header-adder", "noop"]);

    // Replace one file: the other keeps its compiled version.
    copy("recorder", "header-adder.wasm");
    let second = runtime
        .load_dir(&dir, Some(&first))
        .unwrap_or_else(|e| panic!("{e}"));
    let same = |name| match (first.get(name), second.get(name)) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => panic!("{name} missing"),
    };
    assert!(same("noop"));
    assert!(!same("header-adder"));

    // One bad file fails the whole folder, naming it.
    std::fs::write(dir.join("broken.wasm"), b"\0asm garbage").unwrap_or_else(|e| panic!("{e}"));
    let err = runtime
        .load_dir(&dir, Some(&second))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("broken.wasm"), "{err}");
    assert!(!err.contains("noop.wasm"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
