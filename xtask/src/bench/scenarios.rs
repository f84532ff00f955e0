//! The rows of the table: what runs in front of the upstream, and where the load
//! generator points. To add a row, write a `start_*` function and add an entry to
//! `SCENARIOS`. TCP and HTTP/2 rows live in `scenarios/protocols.rs`, rows
//! with Wasm plugins in `scenarios/plugins.rs`, nginx with the same steps in
//! Lua in `scenarios/lua.rs`.

mod fleet;
mod lua;
mod plugins;
mod protocols;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::host::Pinning;
use super::process::{free_port, wait_ready, wait_ready_at, Proc, TempDir};
use crate::prerequisites::Program;

/// The upstream's fixed answer; readiness probes look for it through each proxy.
pub const UPSTREAM_BODY: &str = "hello from upstream";

/// Where the upstream serves a 16 KiB file (starting with `UPSTREAM_BODY`),
/// for the `-16k` rows: a response that is mostly body.
pub const LARGE_PATH: &str = "/16k";
const LARGE_SIZE: usize = 16 * 1024;

/// The path the rows with a path-rewrite step load; their rewrite
/// (`^/bench(.*)` → `$1`) makes it `/`. The upstream refuses it unrewritten
/// (404), so a row whose rewrite did not happen is not ready and counts errors.
pub const REWRITTEN_PATH: &str = "/bench/";

/// The two rows that run the same three steps (a request header, a
/// per-client counter, a path rewrite) in Wasm and in Lua; the report sets
/// what each adds to a request side by side.
pub const SAME_STEPS: [&str; 2] = ["wasmgate-chain3", "nginx-lua"];

/// nginx's dynamic modules, where Debian installs them.
const LUA_MODULES: &[Program] = &[
    Program { path: lua::NDK_MODULE, package: "libnginx-mod-http-ndk" },
    Program { path: lua::LUA_MODULE, package: "libnginx-mod-http-lua" },
];
const STREAM_MODULE: &[Program] = &[Program { path: protocols::STREAM_MODULE, package: "libnginx-mod-stream" }];
const H2_TOOLS: &[Program] = &[
    Program { path: "/usr/bin/h2load", package: "nghttp2-client" },
    Program { path: "/usr/bin/openssl", package: "openssl" },
];

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
    /// Idle upstream connections each nginx proxy keeps (`keepalive`): the
    /// largest concurrency, so nginx, like wasmgate, never closes one for
    /// lack of room and reconnects under load.
    pub keepalive: u32,
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
    /// The same proxy without this row's plugins or scripts: the report gives
    /// the µs a request costs over it.
    pub base: Option<&'static str>,
    /// What the row needs beyond nginx and wrk; `cargo xtask bench` installs
    /// it when it can, like `cargo xtask test`.
    pub needs: &'static [Program],
    pub start: fn(&Env) -> Result<Running, String>,
}

/// Every row, in table order. `nginx` is the reference for the "vs nginx" columns.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "direct",
        about: "wrk -> upstream nginx (the ceiling)",
        load: Load::Wrk,
        vs: Some(REFERENCE),
        base: None,
        needs: &[],
        start: start_direct,
    },
    Scenario {
        name: "nginx",
        about: "wrk -> nginx reverse proxy (1 worker, upstream keepalive) -> upstream",
        load: Load::Wrk,
        vs: Some(REFERENCE),
        base: None,
        needs: &[],
        start: start_nginx_proxy,
    },
    Scenario {
        name: "wasmgate",
        about: "wrk -> wasmgate (1 worker, no plugins) -> upstream",
        load: Load::Wrk,
        vs: Some(REFERENCE),
        base: None,
        needs: &[],
        start: start_wasmgate,
    },
    Scenario {
        name: "wasmgate-metrics-off",
        about: "wrk -> wasmgate (the `wasmgate` row with [metrics] enabled = false) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        base: Some("wasmgate"),
        needs: &[],
        start: start_wasmgate_metrics_off,
    },
    Scenario {
        name: "wasmgate-noop",
        about: "wrk -> wasmgate (1 worker, one pass-through plugin called in both phases) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        base: Some("wasmgate"),
        needs: &[],
        start: plugins::start_wasmgate_noop,
    },
    Scenario {
        name: "wasmgate-chain3",
        about: "wrk -> wasmgate (1 worker, header add + token bucket + path rewrite plugins) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        base: Some("wasmgate"),
        needs: &[],
        start: plugins::start_wasmgate_chain3,
    },
    Scenario {
        name: "nginx-lua",
        about: "wrk -> nginx (the `nginx` row + header add, shared-dict counter, path rewrite in Lua) -> upstream",
        load: Load::Wrk,
        vs: Some(REFERENCE),
        base: Some(REFERENCE),
        needs: LUA_MODULES,
        start: lua::start_nginx_lua,
    },
    Scenario {
        name: "wasmgate-jwt-ratelimit",
        about: "wrk -> wasmgate (1 worker, jwt-auth HS256 + rate-limit on every request) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        base: Some("wasmgate"),
        needs: &[],
        start: plugins::start_wasmgate_jwt_ratelimit,
    },
    Scenario {
        name: "wasmgate-ratelimit-local",
        about: "wrk -> wasmgate (1 worker, rate-limit with state = \"local\", a limit wrk never reaches) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate"),
        base: Some("wasmgate"),
        needs: &[],
        start: fleet::start_ratelimit_local,
    },
    Scenario {
        name: "wasmgate-ratelimit-global",
        about: "wrk -> wasmgate (the `wasmgate-ratelimit-local` row with state = \"global\": leases from a local redis-server) -> upstream",
        load: Load::Wrk,
        vs: Some("wasmgate-ratelimit-local"),
        base: Some("wasmgate"),
        needs: fleet::REDIS_SERVER,
        start: fleet::start_ratelimit_global,
    },
    Scenario {
        name: "direct-16k",
        about: "wrk -> upstream nginx, GET /16k (a 16 KiB body; the ceiling)",
        load: Load::Wrk,
        vs: Some("nginx-16k"),
        base: None,
        needs: &[],
        start: start_direct_16k,
    },
    Scenario {
        name: "nginx-16k",
        about: "wrk -> nginx reverse proxy -> upstream, GET /16k",
        load: Load::Wrk,
        vs: None,
        base: None,
        needs: &[],
        start: start_nginx_proxy_16k,
    },
    Scenario {
        name: "wasmgate-16k",
        about: "wrk -> wasmgate (1 worker, no plugins) -> upstream, GET /16k",
        load: Load::Wrk,
        vs: Some("nginx-16k"),
        base: None,
        needs: &[],
        start: start_wasmgate_16k,
    },
    Scenario {
        name: "nginx-stream",
        about: "wrk -> nginx stream (TCP pipe) -> upstream",
        load: Load::Wrk,
        vs: None,
        base: None,
        needs: STREAM_MODULE,
        start: protocols::start_nginx_stream,
    },
    Scenario {
        name: "wasmgate-tcp",
        about: "wrk -> wasmgate tcp listener (1 worker) -> upstream",
        load: Load::Wrk,
        vs: Some("nginx-stream"),
        base: None,
        needs: &[],
        start: protocols::start_wasmgate_tcp,
    },
    Scenario {
        name: "nginx-h2",
        about: "h2load (TLS, h2) -> nginx ssl http2 -> upstream (HTTP/1.1 keepalive)",
        load: Load::H2load,
        vs: None,
        base: None,
        needs: H2_TOOLS,
        start: protocols::start_nginx_h2,
    },
    Scenario {
        name: "wasmgate-h2",
        about: "h2load (TLS, h2) -> wasmgate https listener (1 worker) -> upstream (HTTP/1.1)",
        load: Load::H2load,
        vs: Some("nginx-h2"),
        base: None,
        needs: H2_TOOLS,
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

/// The shared upstream: nginx on the load CPU answering `GET /` (any path)
/// with a fixed body, `GET /16k` with a 16 KiB file, and refusing an
/// unrewritten `REWRITTEN_PATH`.
pub fn start_upstream(env: &Env) -> Result<Proc, String> {
    let files = env.temp.subdir("upstream-files")?;
    let large = files.join(LARGE_PATH.trim_start_matches('/'));
    std::fs::write(&large, large_body()).map_err(|e| format!("cannot write {}: {e}", large.display()))?;
    let server = format!(
        "listen {addr};\n        default_type text/plain;\n        \
         location / {{ return 200 \"{UPSTREAM_BODY}\\n\"; }}\n        \
         location = {LARGE_PATH} {{ root {root}; sendfile on; open_file_cache max=16 inactive=1h; open_file_cache_valid 1h; }}\n        \
         location ^~ {REWRITTEN_PATH} {{ return 404 \"not rewritten\\n\"; }}",
        addr = env.upstream,
        root = files.display(),
    );
    let mut proc = spawn_nginx(env, "upstream", env.pinning.load_cpu, "", &server)?;
    wait_ready(&mut proc, env.upstream, UPSTREAM_BODY, READY_TIMEOUT)?;
    wait_ready_at(&mut proc, env.upstream, LARGE_PATH, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(proc)
}

/// `UPSTREAM_BODY`, a newline, then lines of filler up to exactly 16 KiB.
fn large_body() -> Vec<u8> {
    let mut body = format!("{UPSTREAM_BODY}\n").into_bytes();
    let line = b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n";
    while body.len() < LARGE_SIZE {
        let room = LARGE_SIZE - body.len();
        body.extend_from_slice(&line[..room.min(line.len())]);
    }
    body
}

fn start_direct(env: &Env) -> Result<Running, String> {
    Ok(Running { url: format!("http://{}/", env.upstream), process: None, ready_in: None })
}

fn start_direct_16k(env: &Env) -> Result<Running, String> {
    Ok(Running { url: format!("http://{}{LARGE_PATH}", env.upstream), process: None, ready_in: None })
}

fn start_nginx_proxy(env: &Env) -> Result<Running, String> {
    start_nginx_proxy_as(env, &NginxProxy { name: "nginx-proxy", ..NginxProxy::default() })
}

fn start_nginx_proxy_16k(env: &Env) -> Result<Running, String> {
    start_nginx_proxy_as(env, &NginxProxy { name: "nginx-16k", target: LARGE_PATH, ..NginxProxy::default() })
}

/// The `nginx` row's reverse proxy, and what other nginx rows add to it.
struct NginxProxy<'a> {
    /// Its prefix dir under the temp dir, and its name in messages.
    name: &'a str,
    /// Directives before `events` (`load_module`), in `http`, and in `location /`.
    main: &'a str,
    http: &'a str,
    location: &'a str,
    /// The path the load generator asks for.
    target: &'a str,
}

impl Default for NginxProxy<'_> {
    fn default() -> Self {
        NginxProxy { name: "nginx-proxy", main: "", http: "", location: "", target: "/" }
    }
}

/// Upstream keep-alive (`keepalive` idle connections, none recycled), HTTP/1.1
/// to the upstream, 1 worker; ready when `target` returns the upstream's body.
fn start_nginx_proxy_as(env: &Env, proxy: &NginxProxy) -> Result<Running, String> {
    let addr = local_addr()?;
    let http = format!("{}\n\n    {}", nginx_upstream_block(env), proxy.http);
    let server = format!(
        "listen {addr};\n        location / {{\n            {}\n            proxy_pass http://up;\n            \
         proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n        }}",
        proxy.location
    );
    let mut proc = spawn_nginx_with(env, proxy.name, env.pinning.proxy_cpu, proxy.main, &http, &server)?;
    let ready_in = wait_ready_at(&mut proc, addr, proxy.target, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running { url: format!("http://{addr}{}", proxy.target), process: Some(proc), ready_in: Some(ready_in) })
}

/// The upstream as every nginx proxy row sees it: `up`, with `env.keepalive`
/// idle connections kept and none recycled.
pub fn nginx_upstream_block(env: &Env) -> String {
    format!(
        "upstream up {{\n        server {};\n        keepalive {};\n        \
         keepalive_requests 10000000;\n    }}",
        env.upstream, env.keepalive
    )
}

fn start_wasmgate(env: &Env) -> Result<Running, String> {
    let addr = local_addr()?;
    spawn_wasmgate(env, "wasmgate", addr, &wasmgate_config(addr, env.upstream))
}

fn start_wasmgate_16k(env: &Env) -> Result<Running, String> {
    let addr = local_addr()?;
    spawn_wasmgate_at(env, "wasmgate-16k", addr, &wasmgate_config(addr, env.upstream), LARGE_PATH)
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
    spawn_wasmgate_at(env, name, addr, config, "/")
}

/// Starts wasmgate on `config`; ready when `GET target` returns the upstream's body.
fn spawn_wasmgate_at(env: &Env, name: &str, addr: SocketAddr, config: &str, target: &str) -> Result<Running, String> {
    let config = env.temp.write(&format!("{name}.toml"), config)?;
    let mut cmd = env.pinning.command(env.pinning.proxy_cpu, env.wasmgate);
    cmd.arg("run").arg("-c").arg(&config);
    let log = env.temp.path().join(format!("{name}.log"));
    let mut proc = Proc::spawn(name, cmd, log)?;
    let ready_in = wait_ready_at(&mut proc, addr, target, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running { url: format!("http://{addr}{target}"), process: Some(proc), ready_in: Some(ready_in) })
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
    spawn_nginx_with(env, name, cpu, "", http_extra, server)
}

/// [`spawn_nginx`] with directives at the top of the file (`load_module`).
fn spawn_nginx_with(
    env: &Env,
    name: &str,
    cpu: Option<usize>,
    main_extra: &str,
    http_extra: &str,
    server: &str,
) -> Result<Proc, String> {
    let prefix = env.temp.subdir(name)?;
    let conf = prefix.join("nginx.conf");
    // Each connection a proxy takes may open one to the upstream.
    let worker_connections = (env.keepalive.saturating_mul(2) + 64).max(4096);
    std::fs::write(&conf, nginx_config(&prefix, worker_connections, main_extra, http_extra, server))
        .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    let mut cmd = env.pinning.command(cpu, env.nginx);
    // -e: error log before the config is read (else the default /var/log path is opened).
    cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf).arg("-e").arg(prefix.join("error.log"));
    Proc::spawn(name, cmd, prefix.join("stderr.log"))
}

fn nginx_config(prefix: &Path, worker_connections: u32, main_extra: &str, http_extra: &str, server: &str) -> String {
    let p = |f: &str| -> PathBuf { prefix.join(f) };
    format!(
        "{main_extra}
daemon off;
master_process on;
worker_processes 1;
pid {pid};
error_log {error_log} warn;

events {{
    worker_connections {worker_connections};
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

    #[test]
    fn compared_rows_exist() {
        for s in SCENARIOS {
            for other in s.vs.iter().chain(s.base.iter()) {
                assert!(names().contains(other), "{}: no row `{other}`", s.name);
            }
        }
        assert!(SAME_STEPS.iter().all(|row| names().contains(row)));
    }

    #[test]
    fn the_large_body_is_16_kib() {
        let body = large_body();
        assert_eq!(body.len(), 16 * 1024);
        assert!(body.starts_with(UPSTREAM_BODY.as_bytes()));
    }
}
