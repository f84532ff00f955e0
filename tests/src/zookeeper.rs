//! A real ZooKeeper for tests: Debian's `zookeeper` package, started as a child
//! process on a free port with its own config and data directory, stopped by its
//! PID. `stop` and `start_again` (same port, same data) simulate an outage.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const JARS: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";
const MAIN: &str = "org.apache.zookeeper.server.ZooKeeperServerMain";
/// `tickTime`: sessions may negotiate timeouts from 2 to 20 ticks (0.4 s to 4 s).
const TICK_MS: u64 = 200;
/// How long a JVM gets to start answering `ruok` on a busy 2-core machine.
const START_DEADLINE: Duration = Duration::from_secs(60);

pub struct ZooKeeper {
    pub addr: SocketAddr,
    dir: PathBuf,
    child: Option<Child>,
}

impl ZooKeeper {
    /// Starts a server on a free port and waits until it answers `ruok`.
    pub async fn start() -> ZooKeeper {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
            probe.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}")).port()
        };
        let dir = std::env::temp_dir().join(format!(
            "wasmgate-zk-{}-{}-{port}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let config = format!(
            "tickTime={TICK_MS}\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\n4lw.commands.whitelist=ruok\nmaxClientCnxns=0\n",
            dir.join("data").display()
        );
        std::fs::write(dir.join("zoo.cfg"), config).unwrap_or_else(|e| panic!("zoo.cfg: {e}"));
        let mut zk = ZooKeeper { addr: SocketAddr::from(([127, 0, 0, 1], port)), dir, child: None };
        zk.start_again().await;
        zk
    }

    /// The connect string for clients and configs: `127.0.0.1:<port>`.
    pub fn hosts(&self) -> String {
        self.addr.to_string()
    }

    /// Starts the (stopped) server again on the same port with the same data.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "zookeeper is already running");
        let log = std::fs::File::create(self.dir.join("zookeeper.log")).unwrap_or_else(|e| panic!("log: {e}"));
        let err = log.try_clone().unwrap_or_else(|e| panic!("log: {e}"));
        let child = Command::new("java")
            .args(["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", JARS, MAIN])
            .arg(self.dir.join("zoo.cfg"))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start java (is Debian's `zookeeper` package installed?): {e}"));
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + START_DEADLINE;
        loop {
            if self.ruok().await {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("zookeeper exited ({status}) during start:\n{}", self.log_tail());
            }
            if tokio::time::Instant::now() > deadline {
                panic!("zookeeper did not answer `ruok` within {START_DEADLINE:?}:\n{}", self.log_tail());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (as a crash would) and waits for the process to end.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn ruok(&self) -> bool {
        let exchange = async {
            let mut stream = TcpStream::connect(self.addr).await.ok()?;
            stream.write_all(b"ruok").await.ok()?;
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.ok()?;
            Some(reply == b"imok")
        };
        matches!(tokio::time::timeout(Duration::from_secs(2), exchange).await, Ok(Some(true)))
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("zookeeper.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
