//! One health probe: a TCP connect, or an HTTP/1.1 `GET` that must answer 2xx or 3xx.

use std::time::Duration;

use bytes::Bytes;
use http::{header, Request};
use http_body_util::Empty;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::config::{HealthCheckKind, TargetConfig};

pub async fn probe(kind: &HealthCheckKind, target: &TargetConfig, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, exchange(kind, target)).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {timeout:?}")),
    }
}

async fn exchange(kind: &HealthCheckKind, target: &TargetConfig) -> Result<(), String> {
    let stream = TcpStream::connect(target.address).await.map_err(|e| format!("cannot connect: {e}"))?;
    let HealthCheckKind::Http { path } = kind else {
        return Ok(());
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let connection = tokio::spawn(connection);
    let request = Request::get(path.as_str())
        .header(header::HOST, target.authority.as_str())
        .header(header::USER_AGENT, "wasmgate-health-check")
        .header(header::CONNECTION, "close")
        .body(Empty::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = sender.send_request(request).await.map_err(|e| format!("request failed: {e}"));
    connection.abort();
    let status = response?.status();
    if status.is_success() || status.is_redirection() {
        Ok(())
    } else {
        Err(format!("status {}", status.as_u16()))
    }
}
