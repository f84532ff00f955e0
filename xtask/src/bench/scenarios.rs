//! The rows of the table: what runs in front of the upstream, and where the load
//! generator points. To add a row, write a `start_*` function and add an entry to
//! `SCENARIOS`. TCP and HTTP/2 rows live in `scenarios/protocols.rs`, rows
//! with Wasm plugins in `scenarios/plugins.rs`.

mod plugins;
mod protocols;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::host::Pinning;
use super::process::{free_port, wait_ready, Proc, TempDir};

/// The upstream's fixed answer; readiness probes look for it through each proxy.
pub const UPSTREAM_BODY: &str = "hello from upstream";

/// How long a freshly started server may take to answer its first request.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// What every scenario needs to start itself.
pub struct Env<'a> {
    pub temp: &'a TempDir,
    pub pinning: &'a Pinning,
    pub nginx: &'a Path,
    pub wasmgate: &'a Path,
    /// For the HTTP/2 rows (Debian: nghttp2-client).
    pub h2load: Option<&'a Path>,
    /// Where the shared upstream listens.
    pub upstream: SocketAddr,
}

/// Which load generator drives a row.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Load {
    /// HTTP/1.1, keep-alive connections.
    Wrk,
    /// HTTP/2 over TLS, several streams per connection.
    H2load,
}

/// A started row: the URL to load, and the process (if any) to keep alive.
pub struct Running {
    pub url: String,
    pub process: Option<Proc>,
    /// Time from spawn to the first good answer, for the report.
    pub ready_in: Option<Duration>,
}

/// One row of the table.
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub load: Load,
    /// The row this one's ratio columns compare against.
    pub vs: Option<&'static str>,
    pub start: fn(&Env) -> Result<Running, String>,
}

/// Every row, in table order. `nginx` is the reference for the "vs nginx" columns.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "direct",
        about: "wrk -> upstream nginx (the ceiling)",
        load: Load::Wrk,
        vs: Some(REFERENCE),
        start: start_direct,
    },
    Scenario {
        name: "nginx",
        about: "wrk -> nginx reverse proxy (keepalive 64) -> upstream",
        load: Load::Wrk,
        vs: Some(REFERENCE),
        start: start_nginx_proxy,
    },
    Scenario {
        name: "wasmgate",
        about: "wrk -> wasmgate (1 worker, no plugins) -> upstream",
        load: Load::Wrk,
        vs: Some(REFERENCE),
        start: start_wasmgate,
    },
    Scenario {
        name: "wasmgate-metrics-off",
        about: "wrk -> wasmgate (the `wasmgate` row with [metrics] enabled = false) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        start: start_wasmgate_metrics_off,
    },
    Scenario {
        name: "wasmgate-noop",
        about: "wrk -> wasmgate (1 worker, one pass-through plugin called in both phases) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        start: plugins::start_wasmgate_noop,
    },
    Scenario {
        name: "wasmgate-chain3",
        about: "wrk -> wasmgate (1 worker, header add + token bucket + path rewrite plugins) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        start: plugins::start_wasmgate_chain3,
    },
    Scenario {
        name: "wasmgate-jwt-ratelimit",
        about: "wrk -> wasmgate (1 worker, jwt-auth HS256 + rate-limit on every request) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        start: plugins::start_wasmgate_jwt_ratelimit,
    },
    Scenario {
        name: "nginx-stream",
        about: "wrk -> nginx stream (TCP pipe) -> upstream",
        load: Load::Wrk,
        vs: None,
        start: protocols::start_nginx_stream,
    },
    Scenario {
        name: "wasmgate-tcp",
        about: "wrk -> wasmgate tcp listener (1 worker) -> upstream",
        load: Load::Wrk,
        vs: Some("nginx-stream"),
        start: protocols::start_wasmgate_tcp,
    },
    Scenario {
        name: "nginx-h2",
        about: "h2load (TLS, h2) -> nginx ssl http2 -> upstream (HTTP/1.1 keepalive)",
        load: Load::H2load,
        vs: None,
        start: protocols::start_nginx_h2,
    },
    Scenario {
        name: "wasmgate-h2",
        about: "h2load (TLS, h2) -> wasmgate https listener (1 worker) -> upstream (HTTP/1.1)",
        load: Load::H2load,
        vs: Some("nginx-h2"),
        start: protocols::start_wasmgate_h2,
    },
];

/// The row the ratio columns compare against.
pub const REFERENCE: &str = "nginx";

pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// The scenarios selected by `--only` (all when empty), in table order.
pub fn select(only: &[String]) -> Result<Vec<&'static Scenario>, String> {
    if let Some(unknown) = only.iter().find(|o| !names().contains(&o.as_str())) {
        return Err(format!("--only: unknown row `{unknown}`; rows are {}", names().join(", ")));
    }
    Ok(SCENARIOS
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| o == s.name))
        .collect())
}

/// The shared upstream: nginx answering `GET /` with a fixed body, on the load CPU.
pub fn start_upstream(env: &Env) -> Result<Proc, String> {
    let server = format!(
        "listen {addr};\n        default_type text/plain;\n        \
         location / {{ return 200 \"{UPSTREAM_BODY}\\n\"; }}",
        addr = env.upstream
    );
    let mut proc = spawn_nginx(env, "upstream", env.pinning.load_cpu, "", &server)?;
    wait_ready(&mut proc, env.upstream, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(proc)
}

fn start_direct(env: &Env) -> Result<Running, String> {
    Ok(Running { url: format!("http://{}/", env.upstream), process: None, ready_in: None })
}

fn start_nginx_proxy(env: &Env) -> Result<Running, String> {
    let addr = local_addr()?;
    let upstream_block = format!(
        "upstream up {{\n        server {};\n        keepalive 64;\n        \
         keepalive_requests 10000000;\n    }}",
        env.upstream
    );
    let server = format!(
        "listen {addr};\n        location / {{\n            proxy_pass http://up;\n            \
         proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n        }}"
    );
    let mut proc = spawn_nginx(env, "nginx-proxy", env.pinning.proxy_cpu, &upstream_block, &server)?;
    let ready_in = wait_ready(&mut proc, addr, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running { url: format!("http://{addr}/"), process: Some(proc), ready_in: Some(ready_in) })
}

fn start_wasmgate(env: &Env) -> Result<Running, String> {
    let addr = local_addr()?;
    spawn_wasmgate(env, "wasmgate", addr, &wasmgate_config(addr, env.upstream))
}

/// The `wasmgate` row without metrics: what they cost is the difference.
fn start_wasmgate_metrics_off(env: &Env) -> Result<Running, String> {
    let addr = local_addr()?;
    let config = wasmgate_config(addr, env.upstream) + "
[metrics]
enabled = false
";
    spawn_wasmgate(env, "wasmgate-metrics-off", addr, &config)
}

fn spawn_wasmgate(env: &Env, name: &str, addr: SocketAddr, config: &str) -> Result<Running, String> {
    let config = env.temp.write(&format!("{name}.toml"), config)?;
    let mut cmd = env.pinning.command(env.pinning.proxy_cpu, env.wasmgate);
    cmd.arg("run").arg("-c").arg(&config);
    let log = env.temp.path().join(format!("{name}.log"));
    let mut proc = Proc::spawn("wasmgate", cmd, log)?;
    let ready_in = wait_ready(&mut proc, addr, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running { url: format!("http://{addr}/"), process: Some(proc), ready_in: Some(ready_in) })
}

fn local_addr() -> Result<SocketAddr, String> {
    Ok(SocketAddr::from(([127, 0, 0, 1], free_port()?)))
}

pub fn wasmgate_config(listen: SocketAddr, upstream: SocketAddr) -> String {
    format!(
        r#"[[listener]]
name = "bench"
address = "{listen}"

[[route]]
listener = "bench"
path_prefix = "/"
upstream = "up"

[[upstream]]
name = "up"
balance = "round_robin"
targets = [ {{ address = "{upstream}" }} ]

[runtime]
workers = 1

[log]
access = false
level = "warn"
"#
    )
}

/// Start an nginx (master + 1 worker, in the foreground) whose files all live
/// in its own prefix dir under the temp dir.
fn spawn_nginx(
    env: &Env,
    name: &str,
    cpu: Option<usize>,
    http_extra: &str,
    server: &str,
) -> Result<Proc, String> {
    let prefix = env.temp.subdir(name)?;
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, nginx_config(&prefix, http_extra, server))
        .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    let mut cmd = env.pinning.command(cpu, env.nginx);
    // -e: error log before the config is read (else the default /var/log path is opened).
    cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf).arg("-e").arg(prefix.join("error.log"));
    Proc::spawn(name, cmd, prefix.join("stderr.log"))
}

fn nginx_config(prefix: &Path, http_extra: &str, server: &str) -> String {
    let p = |f: &str| -> PathBuf { prefix.join(f) };
    format!(
        "daemon off;
master_process on;
worker_processes 1;
pid {pid};
error_log {error_log} warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;

    {http_extra}

    server {{
        {server}
    }}
}}
",
        pid = p("nginx.pid").display(),
        error_log = p("error.log").display(),
        tmp = prefix.display(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_rows() {
        let all = select(&[]).map(|v| v.len());
        assert_eq!(all, Ok(SCENARIOS.len()));
        let some = select(&["wasmgate".into()]).map(|v| v.iter().map(|s| s.name).collect::<Vec<_>>());
        assert_eq!(some, Ok(vec!["wasmgate"]));
        assert!(select(&["haproxy".into()]).is_err());
    }

    #[test]
    fn reference_row_exists() {
        assert!(names().contains(&REFERENCE));
    }
}
