//! Rows for the other protocols, each against nginx doing the same job in front
//! of the same upstream:
//! - TCP: wrk's HTTP/1.1 through a TCP byte pipe — wasmgate's `protocol = "tcp"`
//!   listener vs nginx's `stream` module (Debian: `libnginx-mod-stream`);
//!   `direct` is the ceiling for both.
//! - HTTP/2 over TLS: h2load (ALPN h2) → wasmgate's `https` listener vs nginx
//!   `listen ... ssl http2`, both proxying to the upstream over keep-alive HTTP/1.1.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{
    local_addr, nginx_upstream_block, spawn_nginx, wait_ready, Env, Proc, Running, READY_TIMEOUT, UPSTREAM_BODY,
};

/// Where Debian's `libnginx-mod-stream` puts the module.
pub const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";

pub fn start_nginx_stream(env: &Env) -> Result<Running, String> {
    if !Path::new(STREAM_MODULE).exists() {
        return Err(format!(
            "nginx's stream module is not installed ({STREAM_MODULE}): apt-get install libnginx-mod-stream"
        ));
    }
    let addr = local_addr()?;
    let prefix = env.temp.subdir("nginx-stream")?;
    let text = format!(
        "load_module {STREAM_MODULE};\ndaemon off;\nmaster_process on;\nworker_processes 1;\n\
         pid {pid};\nerror_log {log} warn;\n\nevents {{\n    worker_connections 4096;\n}}\n\n\
         stream {{\n    server {{\n        listen {addr};\n        proxy_pass {upstream};\n    }}\n}}\n",
        pid = prefix.join("nginx.pid").display(),
        log = prefix.join("error.log").display(),
        upstream = env.upstream,
    );
    let conf = prefix.join("nginx.conf");
    std::fs::write(&conf, text).map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    let mut cmd = env.pinning.command(env.pinning.proxy_cpu, env.nginx);
    cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf).arg("-e").arg(prefix.join("error.log"));
    let mut proc = Proc::spawn("nginx-stream", cmd, prefix.join("stderr.log"))?;
    let ready_in = wait_ready(&mut proc, addr, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running { url: format!("http://{addr}/"), process: Some(proc), ready_in: Some(ready_in) })
}

pub fn start_wasmgate_tcp(env: &Env) -> Result<Running, String> {
    let addr = local_addr()?;
    let config = format!(
        r#"[[listener]]
name = "bench"
address = "{addr}"
protocol = "tcp"
upstream = "up"

[[upstream]]
name = "up"
targets = [ {{ address = "{}" }} ]

[runtime]
workers = 1

[log]
access = false
level = "warn"
"#,
        env.upstream
    );
    start_wasmgate_with(env, "wasmgate-tcp", &config, addr, false)
}

pub fn start_nginx_h2(env: &Env) -> Result<Running, String> {
    let (cert, key) = certificate(env)?;
    let addr = local_addr()?;
    let upstream_block = nginx_upstream_block(env);
    let server = format!(
        "listen {addr} ssl http2;\n        ssl_certificate {};\n        ssl_certificate_key {};\n        \
         location / {{\n            proxy_pass http://up;\n            \
         proxy_http_version 1.1;\n            proxy_set_header Connection \"\";\n        }}",
        cert.display(),
        key.display()
    );
    let mut proc = spawn_nginx(env, "nginx-h2", env.pinning.proxy_cpu, &upstream_block, &server)?;
    let url = format!("https://{addr}/");
    let ready_in = wait_ready_h2(env, &mut proc, &url)?;
    Ok(Running { url, process: Some(proc), ready_in: Some(ready_in) })
}

pub fn start_wasmgate_h2(env: &Env) -> Result<Running, String> {
    let (cert, key) = certificate(env)?;
    let addr = local_addr()?;
    let config = format!(
        r#"[[listener]]
name = "bench"
address = "{addr}"
protocol = "https"
certificates = [ {{ cert = "{}", key = "{}" }} ]
limits = {{ max_concurrent_streams = 256 }}

[[route]]
listener = "bench"
upstream = "up"

[[upstream]]
name = "up"
targets = [ {{ address = "{}" }} ]

[runtime]
workers = 1

[log]
access = false
level = "warn"
"#,
        cert.display(),
        key.display(),
        env.upstream
    );
    start_wasmgate_with(env, "wasmgate-h2", &config, addr, true)
}

fn start_wasmgate_with(env: &Env, name: &str, config: &str, addr: SocketAddr, tls: bool) -> Result<Running, String> {
    let file = env.temp.write(&format!("{name}.toml"), config)?;
    let mut cmd = env.pinning.command(env.pinning.proxy_cpu, env.wasmgate);
    cmd.arg("run").arg("-c").arg(&file);
    let mut proc = Proc::spawn(name, cmd, env.temp.path().join(format!("{name}.log")))?;
    if tls {
        let url = format!("https://{addr}/");
        let ready_in = wait_ready_h2(env, &mut proc, &url)?;
        return Ok(Running { url, process: Some(proc), ready_in: Some(ready_in) });
    }
    let ready_in = wait_ready(&mut proc, addr, UPSTREAM_BODY, READY_TIMEOUT)?;
    Ok(Running { url: format!("http://{addr}/"), process: Some(proc), ready_in: Some(ready_in) })
}

/// A self-signed certificate for 127.0.0.1, made once per run with openssl.
fn certificate(env: &Env) -> Result<(PathBuf, PathBuf), String> {
    let (cert, key) = (env.temp.path().join("tls.cert.pem"), env.temp.path().join("tls.key.pem"));
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .map_err(|e| format!("cannot run openssl to make a test certificate (Debian package `openssl`): {e}"))?;
    if !out.status.success() {
        return Err(format!("openssl failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    Ok((cert, key))
}

/// Polls with a one-request h2load until it succeeds over h2.
fn wait_ready_h2(env: &Env, proc: &mut Proc, url: &str) -> Result<Duration, String> {
    let h2load = env.h2load.ok_or("h2load not found: apt-get install nghttp2-client")?;
    let started = Instant::now();
    let mut last = String::from("no attempt made");
    while started.elapsed() < READY_TIMEOUT {
        proc.check_alive()?;
        match Command::new(h2load).args(["-n1", "-c1", url]).output() {
            Ok(out) => {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                if text.contains("1 succeeded") && text.contains("Application protocol: h2") {
                    return Ok(started.elapsed());
                }
                last = text.lines().filter(|l| l.contains("succeeded") || l.contains("protocol")).collect::<Vec<_>>().join("; ");
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("{} not ready on {url} after {READY_TIMEOUT:?}: {last}; end of its log:\n{}", proc.name(), proc.log_tail(20)))
}
