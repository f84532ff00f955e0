//! Building (or locating) the wasmgate binary under test.

use std::path::{Path, PathBuf};

/// `cargo build --release -p wasmgate`, then the path of the binary.
pub fn build_release() -> Result<PathBuf, String> {
    eprintln!("bench: cargo build --release -p wasmgate");
    crate::cargo(&["build", "--release", "-p", "wasmgate"])?;
    existing(release_dir().join("wasmgate"))
}

/// The release dir the build above wrote to. `crate::cargo` runs in the
/// workspace root, so a relative `CARGO_TARGET_DIR` is relative to that root.
fn release_dir() -> PathBuf {
    let target = crate::target_dir();
    let target = if target.is_relative() { crate::workspace_root().join(target) } else { target };
    target.join("release")
}

/// A binary given with `--wasmgate-bin`.
pub fn given(path: &Path) -> Result<PathBuf, String> {
    existing(path.to_path_buf())
}

fn existing(bin: PathBuf) -> Result<PathBuf, String> {
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("wasmgate binary not found at {}", bin.display()))
    }
}
