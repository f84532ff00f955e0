//! Builds the test plugins (`plugins/testing/*`), the standard plugins
//! (`plugins/*`: `rate-limit`, `jwt-auth`, ...) and the plugin template
//! (`examples/01-write-a-plugin`) for wasm32-wasip2, once per process, and
//! puts them in one folder as `<name>.wasm`. Used by this crate's tests and
//! by the gateway's end-to-end tests (feature `test-support`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The workspace root (this crate is `host/plugin`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Where the plugin build goes: its own target folder under the workspace's,
/// so it never waits for the lock of the build that runs the tests.
fn build_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("wasm-plugins")
}

/// The names of the crate folders (those with a `Cargo.toml`) in `dir`.
fn crate_dirs(dir: &Path) -> Result<Vec<String>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().join("Cargo.toml").is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .collect();
    names.sort();
    Ok(names)
}

/// (package, plugin name) of every plugin to build: `plugins/testing/<dir>`
/// is package `test-<dir>`; a standard plugin `plugins/<name>` is package
/// `<name>`.
fn packages(root: &Path) -> Result<Vec<(String, String)>, String> {
    let mut packages: Vec<(String, String)> = crate_dirs(&root.join("plugins/testing"))?
        .into_iter()
        .map(|dir| (format!("test-{dir}"), dir))
        .collect();
    packages.extend(
        crate_dirs(&root.join("plugins"))?
            .into_iter()
            .map(|name| (name.clone(), name)),
    );
    packages.push(("hello-plugin".into(), "hello-plugin".into()));
    Ok(packages)
}

fn build() -> Result<PathBuf, String> {
    let root = workspace_root();
    let target = build_dir();
    let packages = packages(&root)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(&root)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        // No debug info: smaller components, faster to compile in the tests.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        // Flags meant for the host build (coverage, sanitizers) would break
        // the wasm one.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    for (package, _) in &packages {
        command.args(["-p", package]);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run cargo to build the test plugins: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the test plugins failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let built = target.join("wasm32-wasip2/release");
    let out = target.join("plugins");
    std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
    for (package, name) in &packages {
        let from = built.join(format!("{}.wasm", package.replace('-', "_")));
        // Copy then rename: a reader never sees a half-written file.
        let temp = out.join(format!(".{name}.wasm.{}", std::process::id()));
        let to = out.join(format!("{name}.wasm"));
        std::fs::copy(&from, &temp).map_err(|e| format!("{}: {e}", from.display()))?;
        std::fs::rename(&temp, &to).map_err(|e| format!("{}: {e}", to.display()))?;
    }
    Ok(out)
}

/// The folder holding every test plugin as `<name>.wasm` (`noop`,
/// `header-adder`, `responder`, ..., the standard plugins `rate-limit`,
/// `jwt-auth`, ..., and `hello-plugin` from the template),
/// built on first use. Panics with cargo's output if the build fails: this is
/// for tests.
pub fn test_plugins_dir() -> &'static Path {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match DIR.get_or_init(build) {
        Ok(dir) => dir,
        Err(err) => panic!("{err}"),
    }
}

/// The path of one test or standard plugin, e.g. `test_plugin("responder")`
/// or `test_plugin("rate-limit")`.
pub fn test_plugin(name: &str) -> PathBuf {
    test_plugins_dir().join(format!("{name}.wasm"))
}
