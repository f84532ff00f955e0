//! An in-process TCP echo server: every connection gets back what it sends, and
//! when the client half-closes, the server finishes echoing and half-closes too.
//! `Echo::start_then_say` instead answers a greeting after the client's EOF, for
//! half-close tests.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub struct Echo {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Echo {
    pub async fn start() -> Echo {
        Echo::serve(None).await
    }

    /// Reads until the client's EOF, then answers `reply` plus the byte count
    /// and closes: the reply can only arrive if the half-close got through and
    /// the other direction still flows.
    pub async fn start_then_say(reply: &'static str) -> Echo {
        Echo::serve(Some(reply)).await
    }

    async fn serve(reply: Option<&'static str>) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"));
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    match reply {
                        None => {
                            let (mut read, mut write) = stream.split();
                            let _ = tokio::io::copy(&mut read, &mut write).await;
                            let _ = write.shutdown().await;
                        }
                        Some(reply) => {
                            let mut all = Vec::new();
                            let _ = stream.read_to_end(&mut all).await;
                            let _ = stream.write_all(format!("{reply} after {} bytes", all.len()).as_bytes()).await;
                            let _ = stream.shutdown().await;
                        }
                    }
                });
            }
        });
        Echo { addr, task }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.task.abort();
    }
}
