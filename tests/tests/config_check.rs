//! Invalid configs, one file each under `tests/bad/`, each with the message it
//! must produce on its first line: `# expect: <text the error must contain>`.

use std::path::{Path, PathBuf};

use wasmgate::Config;

fn bad_configs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bad");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_bad_config_is_refused_with_file_key_and_reason() {
    let files = bad_configs();
    assert!(files.len() >= 15, "the table lost cases: {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: ...`", file.display()));
        match Config::load(file) {
            Ok(_) => failures.push(format!("{}: accepted", file.display())),
            Err(e) => {
                let message = e.to_string();
                if !message.starts_with(&file.display().to_string()) || !message.contains(expect) {
                    failures.push(format!("{}:\n  expected: {expect}\n  got:      {message}", file.display()));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_examples_are_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let config = entry.unwrap().path().join("wasmgate.toml");
        if config.exists() {
            if let Err(e) = Config::load(&config) {
                panic!("{e}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 1, "no example configs found under {}", root.display());
}
