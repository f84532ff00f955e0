//! A real nginx for tests: Debian's `/usr/sbin/nginx`, one foreground process
//! (`daemon off; master_process off;`) on a free loopback port, with its config,
//! pid file, error log and temp paths in a temporary prefix directory; stopped by
//! its PID on drop. For tests that need a backend which normalises paths and
//! picks virtual hosts the way a production backend does.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tempfile::TempDir;
use tokio::net::TcpStream;

pub const NGINX: &str = "/usr/sbin/nginx";
const START_DEADLINE: Duration = Duration::from_secs(20);
/// Fresh ports tried when nginx exits during start (another process took the port).
const ATTEMPTS: usize = 3;

pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    /// The `-p` prefix: nginx.conf, nginx.pid, error.log and the temp paths.
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx with `servers(addr)` as the `server { ... }` blocks (and any
    /// other `http`-level directives) of its `http` block; each server should
    /// `listen` on `addr`. Waits until a TCP connect to `addr` succeeds.
    pub async fn start(servers: impl Fn(SocketAddr) -> String) -> Nginx {
        let mut failures = Vec::new();
        for _ in 0..ATTEMPTS {
            let addr = crate::closed_port();
            match Nginx::try_start(addr, &servers(addr)).await {
                Ok(nginx) => return nginx,
                Err(reason) => failures.push(reason),
            }
        }
        panic!("nginx did not start:\n{}", failures.join("\n---\n"));
    }

    /// One start on `addr`; `Err` with the error log when nginx exited first.
    async fn try_start(addr: SocketAddr, servers: &str) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), servers)).unwrap_or_else(|e| panic!("write {}: {e}", conf.display()));
        let child = Command::new(NGINX)
            // -e: the error log before the config is read (else /var/log/nginx is opened).
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {NGINX} (is Debian's `nginx` installed?): {e}"));
        let mut nginx = Nginx { addr, child, dir };
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(format!("nginx exited during start ({status}):\n{}", nginx.error_log()));
            }
            if TcpStream::connect(addr).await.is_ok() {
                return Ok(nginx);
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nginx did not accept connections on {addr} within {START_DEADLINE:?}:\n{}",
                nginx.error_log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// nginx's error log so far (warnings and up).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(prefix: &Path, servers: &str) -> String {
    let p = |f: &str| prefix.join(f).display().to_string();
    format!(
        "daemon off;
master_process off;
# Only read as root (then nginx would switch to `nobody`); ignored with a warning otherwise.
user root;
pid {pid};
error_log {error_log} warn;

events {{
    worker_connections 256;
}}

http {{
    access_log off;
    default_type text/plain;
    client_body_temp_path {body};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};

{servers}
}}
",
        pid = p("nginx.pid"),
        error_log = p("error.log"),
        body = p("body"),
        proxy = p("proxy"),
        fastcgi = p("fastcgi"),
        uwsgi = p("uwsgi"),
        scgi = p("scgi"),
    )
}
