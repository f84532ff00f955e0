//! What a reload changes, one case a folder under `tests/diff/`: `old.toml`
//! is the running config, `new.toml` the one reloaded, `expect.txt` the
//! changes `Diff::of` names, a line each, in its order (empty: no change).

use std::path::{Path, PathBuf};

use wasmgate::reload::diff::Diff;
use wasmgate::Config;

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("diff");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    cases
}

#[test]
fn every_pair_of_configs_diffs_to_the_expected_changes() {
    let cases = cases();
    assert!(cases.len() >= 12, "the table lost cases: {}", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let load = |name: &str| Config::load(&case.join(name)).unwrap_or_else(|e| panic!("{e}"));
        let (old, new) = (load("old.toml"), load("new.toml"));
        let expect = std::fs::read_to_string(case.join("expect.txt")).unwrap();
        let got = Diff::of(&old, &new).to_string();
        if got.trim_end() != expect.trim_end() {
            failures.push(format!("{}:\n  expected:\n{expect}\n  got:\n{got}", case.display()));
        }
        // And back: what was added is removed, and nothing is seen as changed from a config to itself.
        assert!(Diff::of(&new, &new).is_empty(), "{}: new.toml differs from itself", case.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
