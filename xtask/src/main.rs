//! Project tasks, run as `cargo xtask <task>`:
//!
//! - `quickstart`: build, start two demo backends and the gateway on the
//!   quickstart config, print what to try.
//! - `test`: install what the test suite needs that a fresh machine lacks,
//!   then run every test in the workspace.
//! - `bench`: the benchmark against nginx and direct (see `docs/benchmark.md`).
//! - `fuzz [SECONDS]`: every cargo-fuzz target for a bounded time (nightly).

mod bench;
mod fuzz;
mod prerequisites;
mod quickstart;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    let result = match args.first().map(String::as_str) {
        Some("quickstart") => quickstart::run(),
        Some("test") => test::run(rest),
        Some("bench") => bench::run(rest),
        Some("fuzz") => fuzz::run(rest),
        _ => {
            eprintln!("usage: cargo xtask <quickstart | test [cargo test args] | bench [--help] | fuzz [SECONDS]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The repository root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// Where cargo puts build output: `$CARGO_TARGET_DIR` or `<root>/target`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace_root().join("target"))
}

/// Runs cargo with these arguments in the workspace root; fails if cargo does.
pub fn cargo(args: &[&str]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let status = std::process::Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}
