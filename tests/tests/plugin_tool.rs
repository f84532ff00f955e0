//! `wasmgate plugin new | check | bench`, run in-process as the CLI runs them:
//! a new plugin crate built and tested outside the checkout, then checked and
//! timed; `check`'s lines and `bench`'s table on standard plugins, including
//! chains that answer.

use std::path::{Path, PathBuf};
use std::process::Command;

use wasmgate_plugin::test_support::test_plugin;

/// Runs `wasmgate plugin ARGS...`: whether it succeeded, and what it printed.
fn plugin<S: AsRef<str>>(args: &[S]) -> (bool, String) {
    let mut out = Vec::new();
    let ok = wasmgate::plugin_tool::run_args(args.iter().map(|a| a.as_ref().to_owned()), &mut out);
    (ok, String::from_utf8_lossy(&out).into_owned())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").canonicalize().unwrap()
}

/// A phase row of bench's table: (median, p99), after checking its shape.
fn row(out: &str, phase: &str) -> Option<(f64, f64)> {
    let line = out.lines().find(|l| l.starts_with(&format!("{phase:<14} ")))?;
    let numbers: Vec<&str> = line[15..].split_whitespace().collect();
    match numbers[..] {
        [median, p99] => Some((median.parse().ok()?, p99.parse().ok()?)),
        _ => None,
    }
}

/// Bench's table: a header and the rows, each a median no larger than its p99.
fn assert_table(out: &str, phases: &[&str]) {
    assert!(out.contains("\nphase             median       p99\n"), "{out}");
    for phase in phases {
        let (median, p99) = row(out, phase).unwrap_or_else(|| panic!("no `{phase}` row:\n{out}"));
        assert!(median > 0.0 && median <= p99, "{phase}: {median} {p99}\n{out}");
    }
}

#[test]
fn check_prints_the_contract_and_what_init_says() {
    let wasm = test_plugin("rate-limit");
    let (ok, out) =
        plugin(&["check", &wasm.to_string_lossy(), "--config", "{ rate = 1, per = \"minute\", burst = 1 }"]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with(&format!("plugin:   {} (", wasm.display())) && lines[0].ends_with(" KiB)"), "{out}");
    assert_eq!(lines[1], "contract: wasmgate:plugin@0.3.0");
    assert!(lines[2].starts_with("load:     ok, as plugin `rate-limit` version "), "{out}");
    assert_eq!(lines[3], r#"init:     ok with {"burst":1,"per":"minute","rate":1}"#);

    // JSON works as well as TOML; a config init refuses fails the check.
    let (ok, out) = plugin(&["check", &wasm.to_string_lossy(), "--config", r#"{"rate": "fast"}"#]);
    assert!(!ok, "{out}");
    let init = out.lines().last().unwrap_or_default();
    assert!(init.starts_with(r#"init:     refused {"rate":"fast"}: "#) && init.contains("rate"), "{out}");

    // Not a component: no contract, and the load's reason.
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.wasm");
    std::fs::write(&notes, "some notes, not a plugin").unwrap();
    let (ok, out) = plugin(&["check", &notes.to_string_lossy()]);
    assert!(!ok, "{out}");
    assert!(out.contains("\ncontract: none (not a component that uses wasmgate:plugin: build it with wasmgate-sdk for wasm32-wasip2)\nload:     failed: "), "{out}");

    let (ok, out) = plugin(&["check", &wasm.to_string_lossy(), "--config", "rate = "]);
    assert!(!ok);
    assert!(out.starts_with("error: --config: neither JSON (") && out.lines().count() == 1, "{out}");
    let (ok, out) = plugin(&["check", "/nonexistent/x.wasm"]);
    assert!(!ok);
    assert!(out.starts_with("error: cannot read /nonexistent/x.wasm: "), "{out}");
}

#[test]
fn bench_times_each_phase_of_a_described_request() {
    let key_auth = test_plugin("key-auth").to_string_lossy().into_owned();
    let rate_limit = test_plugin("rate-limit").to_string_lossy().into_owned();
    let keys = r#"{ keys = [{ consumer = "alice", key = "secret" }] }"#;
    let generous = format!("{rate_limit}={{ rate = 1e9, burst = 1000000000 }}");
    let base = ["bench", &key_auth, "--config", keys, "--requests", "300", "--warm-up", "20", "--path", "/api?x=1"];

    // The request's headers reach the plugins: with the key, it goes upstream.
    let mut args = base.to_vec();
    args.extend([
        "--header",
        "x-api-key: secret",
        "--chain",
        &generous,
        "--response-header",
        "content-type: text/plain",
    ]);
    let (ok, out) = plugin(&args);
    assert!(ok, "{out}");
    assert!(out.starts_with("chain:    key-auth ("), "{out}");
    assert!(out.contains(") -> rate-limit ("), "{out}");
    assert!(
        out.contains("\nrequest:  GET /api?x=1 (2 headers); upstream answers 200 (2 headers, 0 body bytes)\n"),
        "{out}"
    );
    assert!(out.contains("\noutcome:  went upstream: 300 of 300 requests\n"), "{out}");
    assert!(out.contains("\nµs per request, 300 requests after 20 to warm up\n"), "{out}");
    assert_table(&out, &["request", "response", "total"]);
    assert!(out.contains("\ncalls per plugin, warm-up included\n"), "{out}");
    assert!(out.contains("\n  rate-limit           request: continue 320"), "{out}");

    // Without it, key-auth answers, and the chain after it never runs.
    let (ok, out) = plugin(&base);
    assert!(ok, "{out}");
    assert!(out.contains("\noutcome:  answered 401 by key-auth: 300 of 300 requests\n"), "{out}");
    assert_table(&out, &["request", "total"]);
}

#[test]
fn bench_runs_a_chain_whose_later_plugin_answers() {
    let headers = test_plugin("headers").to_string_lossy().into_owned();
    let strict = format!("{}={{ rate = 1, per = \"minute\", burst = 1 }}", test_plugin("rate-limit").display());
    let config = r#"{ response = { set = { "x-through" = "headers" } } }"#;
    let (ok, out) =
        plugin(&["bench", &headers, "--config", config, "--chain", &strict, "--requests", "200", "--warm-up", "5"]);
    assert!(ok, "{out}");
    // The warm-up took the one token: every timed request is refused.
    assert!(out.contains("\noutcome:  answered 429 by rate-limit: 200 of 200 requests\n"), "{out}");
    assert_table(&out, &["request", "response", "total"]);

    let (ok, out) = plugin(&["bench", &headers, "--header", "no colon"]);
    assert!(!ok);
    assert_eq!(out, "error: --header: `no colon` is not `name: value`\n");
    let (ok, out) = plugin(&["bench", &headers, "--status", "99"]);
    assert!(!ok);
    assert_eq!(out, "error: --status: 99 is not a status from 200 to 599\n");
}

/// Runs cargo in `dir` with the plugin test's own target folder (kept
/// between runs, so only the first run compiles the SDK's dependencies).
fn cargo(dir: &Path, args: &[&str]) -> String {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
        .join("plugin-new-test");
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(dir)
        .args(args)
        .env("CARGO_TARGET_DIR", &target)
        // What the test build was given is not for the plugin's build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "cargo {args:?} in {}:\n{printed}", dir.display());
    printed
}

#[test]
fn a_new_plugin_tests_builds_checks_and_benches_outside_the_checkout() {
    let root = workspace_root();
    let tmp = tempfile::tempdir().unwrap();
    assert!(!tmp.path().starts_with(&root));
    let dir = tmp.path().join("maint-window");
    let (ok, out) = plugin(&["new", "maint-window", "--dir", &dir.to_string_lossy()]);
    assert!(ok, "{out}");
    let sdk = root.join("sdk");
    assert_eq!(
        out.lines().next(),
        Some(
            format!(
                "created plugin `maint-window` in {} (wasmgate-sdk from the wasmgate checkout at {})",
                dir.display(),
                sdk.display()
            )
            .as_str()
        )
    );
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
    assert!(manifest.contains(&format!("wasmgate-sdk = {{ path = \"{}\" }}", sdk.display())), "{manifest}");
    let (ok, out) = plugin(&["new", "maint-window", "--dir", &dir.to_string_lossy()]);
    assert!(!ok);
    assert_eq!(out, format!("error: {} already exists and is not empty: give another --dir\n", dir.display()));

    // The workspace's lock: the versions it builds with, from the local cache.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).unwrap();
    let tested = cargo(&dir, &["test"]);
    assert!(tested.contains("test result: ok. 4 passed"), "{tested}");
    cargo(&dir, &["wasm"]);

    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("plugin-new-test");
    let wasm = target.join("wasm32-wasip2/release/maint_window.wasm").to_string_lossy().into_owned();
    let (ok, out) = plugin(&["check", &wasm, "--config", r#"{ deny_prefix = "/private" }"#]);
    assert!(ok, "{out}");
    assert!(
        out.contains("\ncontract: wasmgate:plugin@0.3.0\nload:     ok, as plugin `maint_window` version "),
        "{out}"
    );
    assert!(out.ends_with("\ninit:     ok with {\"deny_prefix\":\"/private\"}\n"), "{out}");
    let (ok, out) = plugin(&["check", &wasm, "--config", r#"{ deny_prefix = "private" }"#]);
    assert!(!ok);
    assert!(
        out.ends_with("\ninit:     refused {\"deny_prefix\":\"private\"}: deny_prefix: must start with `/`\n"),
        "{out}"
    );

    let bench = |path: &str| {
        plugin(&[
            "bench",
            &wasm,
            "--config",
            r#"{ deny_prefix = "/private" }"#,
            "--path",
            path,
            "--requests",
            "200",
            "--warm-up",
            "5",
        ])
    };
    let (ok, out) = bench("/api");
    assert!(ok, "{out}");
    assert!(out.contains("\noutcome:  went upstream: 200 of 200 requests\n"), "{out}");
    assert_table(&out, &["request", "response", "total"]);
    let (ok, out) = bench("/private/x");
    assert!(ok, "{out}");
    assert!(out.contains("\noutcome:  answered 403 by maint_window: 200 of 200 requests\n"), "{out}");
}
