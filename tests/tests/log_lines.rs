//! What log lines say, in both formats the gateway writes (text and JSON, as
//! `logging::init` sets them up): the access line names the plugin that
//! answered (`answered_by`, `-` when the upstream did); every reload line names
//! the config file.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use wasmgate_tests::plugins::{plugin_config, PluginDir};
use wasmgate_tests::{gateway, get, Backend};

/// What a log layer wrote.
#[derive(Clone, Default)]
struct Written(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Written {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Written {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }

    /// The one line that contains `what`.
    fn line(&self, what: &str) -> String {
        let text = self.text();
        let mut lines = text.lines().filter(|l| l.contains(what));
        let line = lines.next().unwrap_or_else(|| panic!("no line with {what} in:\n{text}")).to_owned();
        assert!(lines.next().is_none(), "one line with {what}: {text}");
        line
    }

    /// The lines that contain all of `what`, waiting up to 10 s for the first.
    async fn wait_for(&self, what: &[&str]) -> Vec<String> {
        let started = Instant::now();
        loop {
            let lines: Vec<String> =
                self.text().lines().filter(|l| what.iter().all(|w| l.contains(w))).map(str::to_owned).collect();
            if !lines.is_empty() || started.elapsed() > Duration::from_secs(10) {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// This test binary's log, as text and as JSON (one subscriber per process).
fn logs() -> &'static (Written, Written) {
    static LOGS: OnceLock<(Written, Written)> = OnceLock::new();
    LOGS.get_or_init(|| {
        let (text, json) = (Written::default(), Written::default());
        let (text_writer, json_writer) = (text.clone(), json.clone());
        let targets = tracing_subscriber::filter::Targets::new()
            .with_target("access", tracing::Level::INFO)
            .with_target("wasmgate::reload", tracing::Level::INFO);
        tracing_subscriber::registry()
            .with(targets)
            .with(tracing_subscriber::fmt::layer().with_ansi(false).with_writer(move || text_writer.clone()))
            .with(tracing_subscriber::fmt::layer().json().flatten_event(true).with_writer(move || json_writer.clone()))
            .try_init()
            .unwrap_or_else(|e| panic!("{e}"));
        (text, json)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_names_the_plugin_that_answered() {
    let (text, json) = logs();

    let backend = Backend::start("b").await;
    let dir = PluginDir::with(&[("header-adder", "tag"), ("responder", "gate")]);
    let chain = r#"{ name = "tag", config = { response = { "x-tag" = "1" } } }, { name = "gate", config = { status = 429, body = "slow down" } }"#;
    let gw = gateway(&plugin_config(backend.addr, dir.path(), chain).replace("access = false", "access = true"));
    let reply = get(gw.local_addr("web").unwrap(), "/answered").await;
    assert_eq!(reply.status, 429);
    assert_eq!(reply.headers["x-tag"], "1", "the plugin before the one that answered ran its response phase");

    let passing = r#"{ name = "tag", config = { response = { "x-tag" = "1" } } }"#;
    let gw = gateway(&plugin_config(backend.addr, dir.path(), passing).replace("access = false", "access = true"));
    assert_eq!(get(gw.local_addr("web").unwrap(), "/passed").await.status, 200);

    let answered = text.line("/answered");
    assert!(answered.contains(" status=429 ") && answered.contains(" answered_by=gate "), "{answered}");
    assert!(text.line("/passed").contains(" answered_by=- "), "{}", text.line("/passed"));
    let answered: serde_json::Value = serde_json::from_str(&json.line("/answered")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((answered["status"].clone(), answered["answered_by"].clone()), (429.into(), "gate".into()));
    let passed: serde_json::Value = serde_json::from_str(&json.line("/passed")).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(passed["answered_by"], "-");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reload_line_names_the_config_file() {
    let (text, json) = logs();
    let backend = Backend::start("b").await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("reloaded.toml");
    let config = wasmgate_tests::simple_config("round_robin", &[(backend.addr, 1)], "");
    std::fs::write(&file, &config).unwrap_or_else(|e| panic!("{e}"));
    let loaded = wasmgate::Config::load(&file).unwrap_or_else(|e| panic!("{e}"));
    let _gw = wasmgate::Gateway::start(&loaded).unwrap_or_else(|e| panic!("{e}"));
    let named = format!("config={}", file.display());

    // A change the watcher sees, then one it refuses.
    let partial = dir.path().join(".reloaded.toml.partial");
    let replace = |text: &str| {
        std::fs::write(&partial, text).unwrap_or_else(|e| panic!("{e}"));
        std::fs::rename(&partial, &file).unwrap_or_else(|e| panic!("{e}"));
    };
    replace(&(config.clone() + "\n# edited\n"));
    assert!(!text.wait_for(&[&named, "files changed: reloading"]).await.is_empty(), "{}", text.text());
    assert!(!text.wait_for(&[&named, " reloaded"]).await.is_empty(), "{}", text.text());
    replace(&config.replace("round_robin", "round_and_round"));
    let refused = text.wait_for(&[&named, "reload refused"]).await;
    assert!(!refused.is_empty(), "{}", text.text());
    assert!(refused[0].contains(&format!("error={}:", file.display())), "{}", refused[0]);
    let refused = json.wait_for(&["reload refused", "reloaded.toml"]).await;
    let refused: serde_json::Value = serde_json::from_str(&refused[0]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(refused["config"], file.display().to_string());
}
