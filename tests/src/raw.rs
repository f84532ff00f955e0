//! Raw-socket helpers for malformed and hostile input: bytes in, bytes out.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on a raw connection.
#[derive(Debug)]
pub struct RawReply {
    pub text: String,
    /// The gateway closed the connection (EOF or reset) within the wait.
    pub closed: bool,
}

impl RawReply {
    /// The status code of the first response, if any.
    pub fn status(&self) -> Option<u16> {
        self.text.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok())
    }
}

/// Writes `bytes`, then reads until the peer closes or `wait` passes.
pub async fn send_raw(addr: SocketAddr, bytes: &[u8], wait: Duration) -> RawReply {
    let mut stream = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = stream.write_all(bytes).await;
    read_until_close(&mut stream, wait).await
}

/// Reads until EOF, a reset, or `wait` passes.
pub async fn read_until_close(stream: &mut TcpStream, wait: Duration) -> RawReply {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return RawReply { text: String::from_utf8_lossy(&out).into_owned(), closed: true },
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return RawReply { text: String::from_utf8_lossy(&out).into_owned(), closed: false },
        }
    }
}
