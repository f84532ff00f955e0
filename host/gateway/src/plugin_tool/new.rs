//! `wasmgate plugin new NAME [--dir PATH]`: writes a plugin crate that
//! builds and tests green as written, from the templates in `templates/`.
//!
//! The crate does not force the wasm32-wasip2 target (its tests run natively
//! with the SDK's harness); `.cargo/config.toml` gives `cargo wasm` for the
//! component's release build and turns on Wasm SIMD for that target.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;

use super::say;

#[derive(Args)]
pub struct NewArgs {
    /// The plugin's name, as routes will name it: lower-case letters,
    /// digits, `-` and `_`, starting with a letter.
    name: String,
    /// The folder to create (default: ./NAME). It must not exist, or be empty.
    #[arg(long, value_name = "PATH")]
    dir: Option<PathBuf>,
    /// Take wasmgate-sdk from this folder (a path dependency).
    #[arg(long, value_name = "PATH", conflicts_with_all = ["sdk_git", "sdk_version"])]
    sdk_path: Option<PathBuf>,
    /// Take wasmgate-sdk from this git repository of wasmgate.
    #[arg(long, value_name = "URL", conflicts_with = "sdk_version")]
    sdk_git: Option<String>,
    /// With --sdk-git: the commit, tag or branch to take.
    #[arg(long, value_name = "REV", requires = "sdk_git")]
    sdk_rev: Option<String>,
    /// Take wasmgate-sdk from crates.io, this version requirement.
    #[arg(long, value_name = "VERSION")]
    sdk_version: Option<String>,
}

/// Where the generated crate takes `wasmgate-sdk` from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SdkSource {
    Path(PathBuf),
    Git { url: String, rev: Option<String> },
    Registry(String),
}

impl SdkSource {
    /// The dependency's value in `Cargo.toml`.
    fn dependency(&self) -> String {
        let quoted = |s: &str| toml::Value::String(s.to_owned()).to_string();
        match self {
            SdkSource::Path(path) => format!("{{ path = {} }}", quoted(&path.to_string_lossy())),
            SdkSource::Git { url, rev: None } => format!("{{ git = {} }}", quoted(url)),
            SdkSource::Git { url, rev: Some(rev) } => format!("{{ git = {}, rev = {} }}", quoted(url), quoted(rev)),
            SdkSource::Registry(version) => quoted(version),
        }
    }

    /// Where it is, in words.
    fn describe(&self) -> String {
        match self {
            SdkSource::Path(path) => format!("the wasmgate checkout at {}", path.display()),
            SdkSource::Git { url, .. } => format!("the git repository {url}"),
            SdkSource::Registry(version) => format!("crates.io, version {version}"),
        }
    }
}

/// The SDK of the checkout this binary was built from, when it is still
/// there; else the release of crates.io that matches this gateway.
fn default_sdk() -> SdkSource {
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../sdk");
    match checkout.join("Cargo.toml").is_file().then(|| checkout.canonicalize()) {
        Some(Ok(path)) => SdkSource::Path(path),
        _ => SdkSource::Registry(env!("CARGO_PKG_VERSION").to_owned()),
    }
}

/// Names cargo or Rust keep for themselves.
const RESERVED: [&str; 9] = ["test", "core", "std", "alloc", "proc_macro", "proc-macro", "self", "crate", "super"];

/// Why `name` cannot name a plugin crate, if it cannot.
pub(super) fn check_name(name: &str) -> Result<(), String> {
    if !wasmgate_plugin::valid_plugin_name(name) || !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err(format!(
            "`{name}` cannot name a plugin: use lower-case letters, digits, `-` and `_`, starting with a letter"
        ));
    }
    if RESERVED.contains(&name) {
        return Err(format!("`{name}` is a name cargo keeps for itself: choose another"));
    }
    Ok(())
}

/// `my-plugin` -> `MyPlugin`.
pub(super) fn type_name(name: &str) -> String {
    name.split(['-', '_'])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// The files of the crate for plugin `name`, as (path in the crate, text).
pub fn files(name: &str, sdk: &SdkSource) -> Vec<(&'static str, String)> {
    let crate_name = name.replace('-', "_");
    let type_name = type_name(name);
    let render = |template: &str| {
        template
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &crate_name)
            .replace("{{type_name}}", &type_name)
            .replace("{{sdk}}", &sdk.dependency())
            .replace("{{sdk_note}}", &sdk.describe())
    };
    vec![
        ("Cargo.toml", render(include_str!("templates/Cargo.toml.tmpl"))),
        (".cargo/config.toml", render(include_str!("templates/cargo-config.toml.tmpl"))),
        (".gitignore", render(include_str!("templates/gitignore.tmpl"))),
        ("README.md", render(include_str!("templates/README.md.tmpl"))),
        ("src/lib.rs", render(include_str!("templates/lib.rs.tmpl"))),
        ("src/tests.rs", render(include_str!("templates/tests.rs.tmpl"))),
    ]
}

pub fn run(args: &NewArgs, out: &mut dyn Write) -> Result<bool, String> {
    check_name(&args.name)?;
    let sdk = match (&args.sdk_path, &args.sdk_git, &args.sdk_version) {
        (Some(path), _, _) => {
            if !path.join("Cargo.toml").is_file() {
                return Err(format!(
                    "--sdk-path: {} holds no Cargo.toml (give the sdk/ folder of wasmgate)",
                    path.display()
                ));
            }
            SdkSource::Path(path.canonicalize().map_err(|e| format!("--sdk-path: {}: {e}", path.display()))?)
        }
        (None, Some(url), _) => SdkSource::Git { url: url.clone(), rev: args.sdk_rev.clone() },
        (None, None, Some(version)) => SdkSource::Registry(version.clone()),
        (None, None, None) => default_sdk(),
    };
    let dir = args.dir.clone().unwrap_or_else(|| PathBuf::from(&args.name));
    let occupied = std::fs::read_dir(&dir).map(|mut entries| entries.next().is_some()).unwrap_or(false);
    if occupied {
        return Err(format!("{} already exists and is not empty: give another --dir", dir.display()));
    }
    for (path, text) in files(&args.name, &sdk) {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    let crate_name = args.name.replace('-', "_");
    say!(out, "created plugin `{}` in {} (wasmgate-sdk from {})", args.name, dir.display(), sdk.describe());
    say!(out);
    say!(out, "  cd {}", dir.display());
    say!(out, "  cargo test                      # natively, with the SDK's harness");
    say!(out, "  cargo wasm                      # = cargo build --release --target wasm32-wasip2");
    say!(out, "  wasmgate plugin check target/wasm32-wasip2/release/{crate_name}.wasm");
    say!(out, "  wasmgate plugin bench target/wasm32-wasip2/release/{crate_name}.wasm --path /api");
    Ok(true)
}
