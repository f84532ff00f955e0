//! Rows for global state (`[state]`, docs/fleet.md): the same rate-limit route
//! with its buckets in the gateway (`local`) and in a redis-server the bench
//! starts on this box (`global`). The limit is one wrk never reaches, so both
//! rows measure what keeping the buckets costs a request, not refusals.

use std::net::SocketAddr;
use std::process::Command;

use super::super::process::{free_port, wait_ready_at, Proc};
use super::plugins::{config_with_plugins, plugins_dir};
use super::{local_addr, Env, Running, READY_TIMEOUT, UPSTREAM_BODY};
use crate::prerequisites::Program;

pub const REDIS_SERVER: &[Program] = &[Program { path: "/usr/bin/redis-server", package: "redis-server" }];

fn entry(state: &str) -> String {
    format!(r#"{{ name = "rate-limit", state = "{state}", config = {{ rate = 1000000000, burst = 1000000000 }} }}"#)
}

pub fn start_ratelimit_local(env: &Env) -> Result<Running, String> {
    start(env, "wasmgate-ratelimit-local", &entry("local"), "", None)
}

/// Redis runs on the load generator's and upstream's core (the proxy keeps
/// its own), persistence off.
pub fn start_ratelimit_global(env: &Env) -> Result<Running, String> {
    let port = free_port()?;
    let mut cmd = env.pinning.command(env.pinning.load_cpu, std::path::Path::new(REDIS_SERVER[0].path));
    cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
    let redis = Proc::spawn("redis-server", cmd, env.temp.path().join("redis-server.log"))?;
    let state = format!("\n[state]\nredis = \"redis://127.0.0.1:{port}\"\nfleet_size = 1\n");
    start(env, "wasmgate-ratelimit-global", &entry("global"), &state, Some(redis))
}

fn start(env: &Env, row: &str, plugins: &str, extra: &str, companion: Option<Proc>) -> Result<Running, String> {
    let dir = plugins_dir(env, &["rate-limit"])?;
    let addr: SocketAddr = local_addr()?;
    let config = config_with_plugins(addr, env.upstream, plugins, &dir) + extra;
    let path = env.temp.write(&format!("{row}.toml"), &config)?;
    let mut cmd: Command = env.pinning.command(env.pinning.proxy_cpu, env.wasmgate);
    cmd.arg("run").arg("-c").arg(&path);
    let mut proc = Proc::spawn(row, cmd, env.temp.path().join(format!("{row}.log")))?;
    if let Some(companion) = companion {
        proc = proc.with_companion(companion);
    }
    let ready_in = wait_ready_at(&mut proc, addr, "/", UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running { url: format!("http://{addr}/"), process: Some(proc), ready_in: Some(ready_in) })
}
