//! What the tests and the quickstart need beyond cargo, and how a fresh machine
//! gets it: the wasm32-wasip2 Rust target through rustup, system programs through
//! apt-get when we are root on Debian, otherwise a message naming what to install.

use std::path::Path;
use std::process::Command;

/// The Rust target plugins are compiled for.
pub fn wasm_target() -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|e| format!("cannot run rustup ({e}); install the wasm32-wasip2 target for your toolchain"))?;
    if String::from_utf8_lossy(&installed.stdout).lines().any(|l| l.trim() == "wasm32-wasip2") {
        return Ok(());
    }
    eprintln!("xtask: adding the Rust target wasm32-wasip2 (once)");
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .map_err(|e| format!("cannot run rustup: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err("`rustup target add wasm32-wasip2` failed".into())
    }
}

/// A program (or file) the tests or the benchmark need, and the Debian package that has it.
#[derive(Clone, Copy, Debug)]
pub struct Program {
    pub path: &'static str,
    pub package: &'static str,
}

/// Makes sure every program exists, installing the missing ones' packages with
/// apt-get when that is possible, else failing with the exact command to run.
pub fn programs(needed: &[Program]) -> Result<(), String> {
    let missing: Vec<&Program> = needed.iter().filter(|p| !Path::new(p.path).exists()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|p| p.package).collect();
    let command = format!("apt-get install -y {}", packages.join(" "));
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false);
    if !is_root || !Path::new("/usr/bin/apt-get").exists() {
        return Err(format!("missing {}; install them with: sudo {command}", packages.join(", ")));
    }
    eprintln!("xtask: installing {}", packages.join(", "));
    let run = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    let mut install = vec!["install", "-y", "-qq"];
    install.extend(&packages);
    // Try without refreshing the package lists first; refresh once if that fails.
    let installed = run(&install) || (run(&["update", "-qq"]) && run(&install));
    if !installed {
        return Err(format!("`{command}` failed"));
    }
    Ok(())
}
