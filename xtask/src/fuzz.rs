//! `cargo xtask fuzz [SECONDS]`: every cargo-fuzz target, one after another,
//! each for a bounded time (default 120 s), on its checked-in corpus. Needs
//! the nightly toolchain and `cargo install cargo-fuzz`. All targets share one
//! build directory (`target/fuzz`), so wasmtime is built for fuzzing once.

use std::process::Command;

/// (crate folder holding `fuzz/`, target name).
const TARGETS: &[(&str, &str)] = &[
    ("host/gateway", "config"),
    ("host/gateway", "http1_framing"),
    ("host/gateway", "path"),
    ("host/plugin", "plugin_output"),
];

pub fn run(args: &[String]) -> Result<(), String> {
    let seconds: u64 = match args.first() {
        None => 120,
        Some(text) => text.parse().map_err(|_| format!("usage: cargo xtask fuzz [SECONDS] (got {text:?})"))?,
    };
    let root = crate::workspace_root();
    let target_dir = crate::target_dir().join("fuzz");
    for (dir, target) in TARGETS {
        eprintln!("xtask: fuzzing `{target}` ({dir}/fuzz) for {seconds} s");
        let status = Command::new("cargo")
            .args(["+nightly", "fuzz", "run", target, "--target-dir"])
            .arg(&target_dir)
            .args(["--", &format!("-max_total_time={seconds}"), "-print_final_stats=1"])
            .current_dir(root.join(dir))
            .status()
            .map_err(|e| format!("cannot run cargo +nightly fuzz (cargo install cargo-fuzz?): {e}"))?;
        if !status.success() {
            return Err(format!("fuzz target `{target}` failed ({status}): see the crash input under {dir}/fuzz/artifacts/"));
        }
    }
    Ok(())
}
