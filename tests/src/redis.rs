//! A real Redis for tests: Debian's `redis-server`, started as a child process on
//! a free port with persistence off, stopped by its PID on drop. Includes a tiny
//! RESP client, enough for PING/SET/GET.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub const REDIS_SERVER: &str = "/usr/bin/redis-server";
const START_DEADLINE: Duration = Duration::from_secs(20);

pub struct Redis {
    pub addr: SocketAddr,
    child: Child,
}

impl Redis {
    /// Starts a server on a free port and waits until it answers PING.
    pub async fn start() -> Redis {
        Redis::start_on(crate::closed_port().port()).await
    }

    /// Starts a server on `port` (e.g. the port of one stopped a moment ago)
    /// and waits until it answers PING.
    pub async fn start_on(port: u16) -> Redis {
        let child = Command::new(REDIS_SERVER)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {REDIS_SERVER} (is Debian's `redis-server` installed?): {e}"));
        let mut redis = Redis { addr: SocketAddr::from(([127, 0, 0, 1], port)), child };
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            if let Ok(mut client) = Resp::connect(redis.addr).await {
                if client.command(&["PING"]).await.ok().as_deref() == Some("+PONG") {
                    return redis;
                }
            }
            if let Ok(Some(status)) = redis.child.try_wait() {
                panic!("redis-server exited during start: {status}");
            }
            assert!(tokio::time::Instant::now() < deadline, "redis-server did not answer PING within {START_DEADLINE:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Redis {
    /// Kills the server (by its PID) and waits for it to exit, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal RESP client: sends commands as arrays of bulk strings and returns
/// each reply as one line (`+OK`, `$5` followed by the value as `$value`, ...).
pub struct Resp {
    stream: BufReader<TcpStream>,
}

impl Resp {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Resp> {
        Ok(Resp { stream: BufReader::new(TcpStream::connect(addr).await?) })
    }

    /// Sends one command; the reply: simple strings, errors and integers as the
    /// line itself (`+PONG`, `-ERR ...`, `:1`), bulk strings as `$<value>`, nil as `$nil`.
    pub async fn command(&mut self, args: &[&str]) -> std::io::Result<String> {
        let mut out = format!("*{}\r\n", args.len());
        for arg in args {
            out += &format!("${}\r\n{arg}\r\n", arg.len());
        }
        self.stream.get_mut().write_all(out.as_bytes()).await?;
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let line = line.trim_end().to_owned();
        let Some(len) = line.strip_prefix('$') else { return Ok(line) };
        let Ok(len) = len.parse::<usize>() else { return Ok("$nil".to_owned()) };
        let mut value = vec![0; len + 2];
        self.stream.read_exact(&mut value).await?;
        value.truncate(len);
        Ok(format!("${}", String::from_utf8_lossy(&value)))
    }
}
