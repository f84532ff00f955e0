use std::path::PathBuf;

use super::bench::chain_entries;
use super::bench::samples::Samples;
use super::load::config_json;
use super::new::{check_name, files, type_name, SdkSource};

#[test]
fn a_config_is_json_or_toml_and_reaches_init_as_json() {
    let json = |text| config_json(Some(text), "--config");
    assert_eq!(config_json(None, "--config").as_deref(), Ok("{}"));
    assert_eq!(json(r#"{"rate": 10, "burst": 5}"#).as_deref(), Ok(r#"{"burst":5,"rate":10}"#));
    assert_eq!(json(r#"{ rate = 10, burst = 5 }"#).as_deref(), Ok(r#"{"burst":5,"rate":10}"#));
    assert_eq!(json("rate = 10\nburst = 5\n").as_deref(), Ok(r#"{"burst":5,"rate":10}"#));
    assert_eq!(json(r#"{ request = { x-a = "1" } }"#).as_deref(), Ok(r#"{"request":{"x-a":"1"}}"#));
    assert_eq!(
        json("[1, 2]").unwrap_err(),
        "--config: a plugin's config is a table (a JSON object, or TOML `{ key = value }`)"
    );
    let err = json("{ rate = }").unwrap_err();
    assert!(err.starts_with("--config: neither JSON (") && err.contains(") nor TOML ("), "{err}");
    assert!(!err.contains('\n'), "{err}");
    let err = config_json(Some("@/nonexistent/config.toml"), "--chain b.wasm").unwrap_err();
    assert!(err.starts_with("--chain b.wasm: cannot read /nonexistent/config.toml: "), "{err}");
}

#[test]
fn chain_lists_split_on_commas_unless_they_carry_a_config() {
    assert_eq!(
        chain_entries(&["a.wasm,b.wasm".into(), r#"c.wasm={"x": 1, "y": 2}"#.into()]),
        vec![
            (PathBuf::from("a.wasm"), None),
            (PathBuf::from("b.wasm"), None),
            (PathBuf::from("c.wasm"), Some(r#"{"x": 1, "y": 2}"#.to_owned())),
        ]
    );
}

#[test]
fn median_and_p99_are_nearest_rank() {
    let mut samples = Samples::default();
    assert_eq!(samples.median_p99(), (0.0, 0.0));
    for us in (1..=100).rev() {
        samples.push(std::time::Duration::from_micros(us));
    }
    assert_eq!(samples.median_p99(), (50.0, 99.0));
}

#[test]
fn plugin_names_are_those_routes_can_use() {
    assert_eq!(check_name("my-plugin"), Ok(()));
    assert_eq!(check_name("maint_window2"), Ok(()));
    for bad in ["My-Plugin", "2fa", "-x", "a b", ""] {
        let err = check_name(bad).unwrap_err();
        assert!(err.contains("use lower-case letters, digits, `-` and `_`, starting with a letter"), "{err}");
    }
    assert_eq!(check_name("test").unwrap_err(), "`test` is a name cargo keeps for itself: choose another");
    assert_eq!(type_name("my-plugin_v2"), "MyPluginV2");
}

#[test]
fn the_templates_are_filled_in_completely() {
    let sdk = SdkSource::Git { url: "https://example.org/wasmgate.git".into(), rev: Some("v0.1.0".into()) };
    let written = files("maint-window", &sdk);
    for (path, text) in &written {
        assert!(!text.contains("{{") && !text.contains("}}"), "{path} has a placeholder left");
    }
    let text = |name: &str| written.iter().find(|(p, _)| *p == name).map(|(_, t)| t.as_str()).unwrap_or_default();
    assert!(
        text("Cargo.toml").contains("wasmgate-sdk = { git = \"https://example.org/wasmgate.git\", rev = \"v0.1.0\" }")
    );
    assert!(text("Cargo.toml").contains("name = \"maint-window\""));
    assert!(text("src/lib.rs").contains("export_plugin!(MaintWindow);"));
    assert!(text(".cargo/config.toml").contains("target/wasm32-wasip2/release/maint_window.wasm"));
    let path = SdkSource::Path(PathBuf::from("/opt/wasm\"gate/sdk"));
    let cargo = files("a", &path).into_iter().find(|(p, _)| *p == "Cargo.toml").map(|(_, t)| t).unwrap_or_default();
    assert!(cargo.contains(r#"wasmgate-sdk = { path = '/opt/wasm"gate/sdk' }"#), "{cargo}");
    let cargo = files("a", &SdkSource::Registry("0.1".into())).remove(0).1;
    assert!(cargo.contains("wasmgate-sdk = \"0.1\"\n"), "{cargo}");
}
