//! `protocol = "tcp"` listeners: each accepted connection goes to a target of the
//! listener's upstream (its balancer decides; `consistent_hash` with
//! `hash_key = "client_ip"` keeps a client on one target), dialled within the
//! upstream's connect timeout and retried on other targets like HTTP requests,
//! optionally introduced with a PROXY protocol header, then piped both ways.

mod proxy_protocol;

use std::net::SocketAddr;
use std::sync::Arc;

use http::HeaderMap;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::balance::PickContext;
use crate::config::Limits;
use crate::pipe::{pipe, PipeEnd};
use crate::state::State;
use crate::upstream::Upstream;

/// Serves one client connection to its end. Failures are logged; the client's
/// connection is then closed (no bytes were sent to it).
pub async fn serve(client: TcpStream, client_addr: SocketAddr, state: Arc<State>, listener: usize, limits: Limits) {
    let Some((upstream, tcp)) = state.tcp(listener) else {
        tracing::warn!(client = %client_addr, "tcp listener has no upstream in this configuration: closing");
        return;
    };
    let Some(_slot) = upstream.enter() else {
        tracing::warn!(client = %client_addr, upstream = upstream.name(), "upstream is at its concurrency limit: closing");
        return;
    };
    let Some((mut server, target)) = dial(upstream, client_addr).await else { return };
    if let Some(version) = tcp.proxy_protocol {
        let gateway_addr = client.local_addr().unwrap_or(client_addr);
        let header = proxy_protocol::header(version, client_addr, gateway_addr);
        if let Err(e) = server.write_all(&header).await {
            tracing::warn!(client = %client_addr, %target, error = %e, "cannot send the PROXY protocol header");
            return;
        }
    }
    match pipe(client, server, limits.idle_timeout).await {
        PipeEnd::Closed(sent, received) => {
            tracing::debug!(client = %client_addr, %target, sent, received, "tcp connection closed")
        }
        PipeEnd::Idle => {
            tracing::debug!(client = %client_addr, %target, idle = ?limits.idle_timeout, "tcp connection idle: closed")
        }
        PipeEnd::Failed(e) => tracing::debug!(client = %client_addr, %target, error = %e, "tcp connection failed"),
    }
}

/// Connects to a target the balancer picks; on failure tries up to `retries` others.
async fn dial(upstream: &Upstream, client: SocketAddr) -> Option<(TcpStream, SocketAddr)> {
    let targets = upstream.targets();
    let headers = HeaderMap::new();
    let pick = PickContext { uri: "", client_ip: client.ip(), headers: &headers };
    let timeout = upstream.config.timeouts.connect;
    let mut tried = Vec::new();
    loop {
        let Some(index) = targets.pick(&pick, &tried) else {
            tracing::warn!(%client, upstream = upstream.name(), "no target available: closing the client connection");
            return None;
        };
        let target = &targets.targets[index];
        let error = match tokio::time::timeout(timeout, TcpStream::connect(target.address)).await {
            Ok(Ok(stream)) => {
                target.state.report(false);
                let _ = stream.set_nodelay(true);
                return Some((stream, target.address));
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no connection within {timeout:?}"),
        };
        target.state.report(true);
        tried.push(index);
        if tried.len() > upstream.config.retries as usize {
            tracing::warn!(%client, upstream = upstream.name(), target = %target.address, %error, "cannot connect: closing the client connection");
            return None;
        }
        tracing::warn!(%client, upstream = upstream.name(), target = %target.address, %error, "connect failed, trying another target");
    }
}
