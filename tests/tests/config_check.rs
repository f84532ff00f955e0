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

/// What `wasmgate check` does once the config parses: load the plugins routes
/// name and initialise each route's chain. Its message as `check` prints it: a
/// plugin file that does not load after the config file's name, a route's
/// plugin entry at the config file's line.
fn check_with_plugins(file: &Path) -> Result<(), String> {
    let config = Config::load(file).map_err(|e| e.to_string())?;
    let mut plugins = config
        .plugins
        .as_ref()
        .map(wasmgate::plugins::Plugins::load)
        .transpose()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    wasmgate::state::State::build(&config, plugins.as_mut(), None).map(|_| ()).map_err(|e| e.to_string())
}

/// `bad/plugins/*.toml`: configs that parse but whose plugins cannot run, each
/// refused with one line that says what to do (`{dir}` in the expectation is
/// that folder).
#[test]
fn every_bad_plugin_setup_is_refused_with_a_line_that_says_what_to_do() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("bad/plugins");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "the table lost cases: {}", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: ...`", file.display()))
            .replace("{dir}", &dir.display().to_string());
        match check_with_plugins(file) {
            Ok(()) => failures.push(format!("{}: accepted", file.display())),
            Err(message) => {
                let one_line = message.lines().count() == 1;
                if !message.starts_with(&file.display().to_string()) || !message.contains(&expect) || !one_line {
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
