//! A real Prometheus for tests: Debian's `/usr/bin/prometheus` (package
//! `prometheus`), one process on a free loopback port, with its config and
//! TSDB in a temporary directory, scraping the given targets every second;
//! stopped by its PID on drop. Also `promtool check metrics` on a scrape.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http::Method;
use tempfile::TempDir;

pub const PROMETHEUS: &str = "/usr/bin/prometheus";
pub const PROMTOOL: &str = "/usr/bin/promtool";
const START_DEADLINE: Duration = Duration::from_secs(30);
/// Fresh ports tried when Prometheus exits during start (another process took the port).
const ATTEMPTS: usize = 3;

pub struct Prometheus {
    pub addr: SocketAddr,
    child: Child,
    /// prometheus.yml, the TSDB and Prometheus' own log.
    dir: TempDir,
}

impl Prometheus {
    /// Starts Prometheus scraping `targets` (`/metrics`, every second, job
    /// `wasmgate`) and waits until it reports ready.
    pub async fn start(targets: &[SocketAddr]) -> Prometheus {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            match Prometheus::try_start(crate::closed_port(), targets).await {
                Ok(prometheus) => return prometheus,
                Err(reason) => failures.push(reason),
            }
        }
        panic!("prometheus did not start:\n{}", failures.join("\n---\n"));
    }

    async fn try_start(addr: SocketAddr, targets: &[SocketAddr]) -> Result<Prometheus, String> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: wasmgate\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        let file = dir.path().join("prometheus.yml");
        std::fs::write(&file, config).unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap_or_else(|e| panic!("log file: {e}"));
        let child = Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", file.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {PROMETHEUS} (is Debian's `prometheus` installed?): {e}"));
        let mut prometheus = Prometheus { addr, child, dir };
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = prometheus.child.try_wait() {
                return Err(format!("prometheus exited during start ({status}):\n{}", prometheus.log()));
            }
            if let Some(reply) = prometheus.get("/-/ready").await {
                if reply.status == 200 {
                    return Ok(prometheus);
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "prometheus was not ready on {addr} within {START_DEADLINE:?}:\n{}",
                prometheus.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Prometheus' own log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// `GET path`; `None` when nothing answers yet.
    async fn get(&self, path: &str) -> Option<crate::Reply> {
        tokio::net::TcpStream::connect(self.addr).await.ok()?;
        Some(crate::request(self.addr, Method::GET, path, &[("host", "prometheus")], Bytes::new()).await)
    }

    /// An instant query's result: each series' labels and value.
    pub async fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let path = format!("/api/v1/query?query={}", percent_encode(promql));
        let reply = self.get(&path).await.unwrap_or_else(|| panic!("prometheus is gone:\n{}", self.log()));
        let json: serde_json::Value =
            serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("query answer: {e}: {}", reply.text()));
        assert_eq!(json["status"], "success", "{promql}: {json}");
        let result = json["data"]["result"].as_array().cloned().unwrap_or_default();
        result
            .into_iter()
            .map(|series| {
                let value = series["value"][1].as_str().and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
                (series["metric"].clone(), value)
            })
            .collect()
    }

    /// The single value of `promql`, once Prometheus has one (`None`: no series).
    pub async fn value(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql).await;
        assert!(result.len() <= 1, "{promql}: more than one series: {result:?}");
        result.first().map(|(_, v)| *v)
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs `promtool check metrics` on an exposition: `Err` with what it said
/// when it finds a problem.
pub fn promtool_check(exposition: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {PROMTOOL} (is Debian's `prometheus` installed?): {e}"));
    let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("promtool stdin"));
    stdin.write_all(exposition.as_bytes()).unwrap_or_else(|e| panic!("write to promtool: {e}"));
    drop(stdin);
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("promtool: {e}"));
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    match output.status.success() && said.trim().is_empty() {
        true => Ok(()),
        false => Err(format!("promtool check metrics ({}):\n{said}", output.status)),
    }
}
