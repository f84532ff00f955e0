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
    // The SDK's words, in TOML's terms, without a position in the JSON.
    assert_eq!(
        rejection(r#"{"limt": 1}"#),
        "invalid config at `limt`: unknown key `limt`, expected `limit`"
    );
    assert_eq!(
        rejection(r#"{"limit": "many"}"#),
        r#"invalid config at `limit`: expected an integer, found "many""#
    );
    assert_eq!(
        rejection("{}"),
        "invalid config: missing key `limit`"
    );
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
fn what_is_not_a_plugin_is_refused_saying_what_to_do() {
    let runtime = &shared().runtime;
    let message = |name: &str, bytes: &[u8]| {
        runtime
            .load(name, bytes)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(
        message("notes", b"hello world, these are my notes"),
        "not a WebAssembly file (starts with \"hello wo\u{2026}\"); build the plugin with cargo build --target wasm32-wasip2"
    );
    // A core module, not a component.
    assert_eq!(
        message("core", b"\0asm\x01\0\0\0"),
        "a core WebAssembly module, not a component; build the plugin with cargo build --target wasm32-wasip2 (which makes components)"
    );
    // A component that exports nothing: a crate without `export_plugin!`.
    assert_eq!(
        message("empty", b"\0asm\x0d\0\x01\0"),
        "the component has no `init` export, so it is no wasmgate plugin; the crate must call wasmgate_sdk::export_plugin!(YourType)"
    );
    // Wasm that does not parse is wasmtime's to explain.
    assert!(matches!(
        runtime.load("junk", b"\0asm\x0d\0\x01\0garbage"),
        Err(PluginError::Compile { .. })
    ));
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

    // Files nobody asks for are listed, never read: they cannot fail the set.
    std::fs::write(dir.join("notes.wasm"), b"hello").unwrap_or_else(|e| panic!("{e}"));
    let wanted = |name: &str| name == "noop";
    let third = runtime
        .load_dir_for(&dir, Some(&second), &wanted)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(third.names().collect::<Vec<_>>(), ["noop"]);
    let ignored: Vec<&str> = third.ignored().iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(ignored, ["broken", "header-adder", "notes"]);
    assert_eq!(third.available(), ["broken", "header-adder", "noop", "notes"]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_folder_is_called_a_folder_and_shown_absolute() {
    let runtime = &shared().runtime;
    let parent = temp_dir("missing");
    let relative = parent.join("conf/../plugins");
    std::fs::create_dir_all(parent.join("conf")).unwrap_or_else(|e| panic!("{e}"));
    let err = runtime
        .load_dir(&relative, None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let real = parent
        .canonicalize()
        .unwrap_or_else(|e| panic!("{e}"))
        .join("plugins");
    assert_eq!(
        err,
        format!(
            "cannot read the plugin folder {}: No such file or directory (os error 2); create it, or fix `[plugins] dir` (relative to the config file)",
            real.display()
        )
    );
    let _ = std::fs::remove_dir_all(&parent);
}
