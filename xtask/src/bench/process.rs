//! Child processes and temp files that clean up after themselves, plus the
//! readiness probe.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A directory under the system temp dir, removed on drop unless kept.
pub struct TempDir {
    path: PathBuf,
    keep: bool,
}

impl TempDir {
    pub fn new(prefix: &str, keep: bool) -> Result<TempDir, String> {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("{prefix}-{}-{nanos:09}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path)
            .map_err(|e| format!("cannot create temp dir {}: {e}", path.display()))?;
        Ok(TempDir { path, keep })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, created if needed.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, String> {
        let dir = self.path.join(name);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(dir)
    }

    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf, String> {
        let file = self.path.join(name);
        std::fs::write(&file, contents)
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        Ok(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("bench: kept temp dir {}", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// A running child, stopped (SIGTERM, then SIGKILL) when dropped — on success
/// and on every error path alike.
pub struct Proc {
    name: String,
    child: Option<Child>,
    log: PathBuf,
    /// A process this one needs (a row's redis-server), stopped after it.
    companion: Option<Box<Proc>>,
}

impl Proc {
    /// Spawn with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, mut cmd: Command, log: PathBuf) -> Result<Proc, String> {
        let out = std::fs::File::create(&log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out.try_clone().map_err(|e| format!("cannot dup log handle: {e}"))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|e| format!("cannot start {name} ({cmd:?}): {e}"))?;
        Ok(Proc { name: name.to_owned(), child: Some(child), log, companion: None })
    }

    /// This process, with `other` kept running as long as it and stopped
    /// right after it.
    pub fn with_companion(mut self, other: Proc) -> Proc {
        self.companion = Some(Box::new(other));
        self
    }

    /// Err (with the end of its log) if the process has exited.
    pub fn check_alive(&mut self) -> Result<(), String> {
        let Some(child) = self.child.as_mut() else {
            return Err(format!("{} was already stopped", self.name));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!(
                "{} exited unexpectedly ({status}); end of its log:\n{}",
                self.name,
                self.log_tail(20)
            )),
            Err(e) => Err(format!("cannot poll {}: {e}", self.name)),
        }
    }

    /// The last `lines` lines of the process's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        let tail = &all[all.len().saturating_sub(lines)..];
        if tail.is_empty() {
            "    (empty)".to_owned()
        } else {
            tail.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
        }
    }

    /// Resident set size in KiB (`VmRSS` from /proc), while it runs.
    pub fn rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stop gracefully; returns how long the process took to exit after SIGTERM
    /// (None if it had to be killed). Idempotent.
    pub fn stop(&mut self) -> Option<Duration> {
        let took = self.stop_own();
        if let Some(companion) = self.companion.as_mut() {
            companion.stop();
        }
        took
    }

    fn stop_own(&mut self) -> Option<Duration> {
        let mut child = self.child.take()?;
        if let Ok(Some(_)) = child.try_wait() {
            return Some(Duration::ZERO);
        }
        let started = Instant::now();
        signal(&child, SIGTERM);
        let deadline = started + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("bench: {} ignored SIGTERM for 5 s; killing it", self.name);
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

const SIGTERM: i32 = 15;

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}

/// Send a signal to a child we own. std only offers SIGKILL, but nginx must
/// get SIGTERM so its master stops the worker too (a SIGKILLed master leaves
/// the worker running), and wasmgate should get the shutdown it handles.
fn signal(child: &Child, sig: i32) {
    let Ok(pid) = i32::try_from(child.id()) else { return };
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own,
    // not yet reaped child, so it cannot name an unrelated process.
    unsafe {
        kill(pid, sig);
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bind to 0, read, release).
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| format!("cannot bind 127.0.0.1:0 to find a free port: {e}"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| format!("cannot read the bound port: {e}"))
}

/// Poll until `GET url_path` on `addr` answers 200 with `expect` in the body,
/// or the process dies, or `timeout` passes. Returns the time it took.
pub fn wait_ready(
    proc: &mut Proc,
    addr: SocketAddr,
    expect: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    wait_ready_at(proc, addr, "/", expect, timeout)
}

/// Like [`wait_ready`], for `GET target` (a path with an optional query).
pub fn wait_ready_at(
    proc: &mut Proc,
    addr: SocketAddr,
    target: &str,
    expect: &str,
    timeout: Duration,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut last_error = String::from("no attempt made");
    while started.elapsed() < timeout {
        proc.check_alive()?;
        match http_get_at(addr, target) {
            Ok(resp) if is_ok_with(&resp, expect) => return Ok(started.elapsed()),
            Ok(resp) => last_error = format!("unexpected answer: {}", first_line(&resp)),
            Err(e) => last_error = e,
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!(
        "{} not ready on {addr} after {timeout:?}: {last_error}; end of its log:\n{}",
        proc.name(),
        proc.log_tail(20)
    ))
}

fn is_ok_with(resp: &str, expect: &str) -> bool {
    let status_ok = resp.starts_with("HTTP/1.1 200") || resp.starts_with("HTTP/1.0 200");
    status_ok && resp.contains(expect)
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("(empty response)")
}

/// One `GET target` with `Connection: close`; the whole response as text.
pub fn http_get_at(addr: SocketAddr, target: &str) -> Result<String, String> {
    let timeout = Duration::from_secs(1);
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| format!("set timeout: {e}"))?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| format!("set timeout: {e}"))?;
    let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
