//! The end-to-end harness: in-process backends, a gateway launcher and a small
//! HTTP client. Everything binds `127.0.0.1:0`; nothing waits by sleeping.

pub mod backend;
pub mod client;
pub mod plugins;
pub mod echo;
pub mod grpc;
pub mod nginx;
pub mod otlp;
pub mod prometheus;
pub mod raw;
pub mod redis;
pub mod tls;
pub mod zookeeper;

use std::path::Path;

pub use backend::{Backend, Seen};
pub use client::{get, request, Reply};

use wasmgate::{Config, Gateway};

/// Starts a gateway from config text. Listener addresses should use port 0;
/// ask the returned gateway for the real ones.
pub fn gateway(config: &str) -> Gateway {
    let config = Config::parse(config, Path::new("test.toml")).unwrap_or_else(|e| panic!("test config: {e}"));
    Gateway::start(&config).unwrap_or_else(|e| panic!("gateway start: {e}"))
}

/// Config text for one listener `web` and one route `/` to upstream `up`
/// with the given balance and targets, plus any extra TOML appended.
pub fn simple_config(balance: &str, targets: &[(std::net::SocketAddr, u32)], extra_upstream: &str) -> String {
    let targets: Vec<String> =
        targets.iter().map(|(addr, weight)| format!("{{ address = \"{addr}\", weight = {weight} }}")).collect();
    format!(
        r#"
[[listener]]
name = "web"
address = "127.0.0.1:0"

[[route]]
listener = "web"
upstream = "up"

[[upstream]]
name = "up"
balance = "{balance}"
targets = [ {} ]
{extra_upstream}

[runtime]
workers = 2

[log]
access = false
"#,
        targets.join(", ")
    )
}

/// Polls `condition` every 10 ms until it holds; returns how long that took, or
/// `None` when `deadline` passed first.
pub async fn wait_until(deadline: std::time::Duration, mut condition: impl FnMut() -> bool) -> Option<std::time::Duration> {
    let started = std::time::Instant::now();
    loop {
        if condition() {
            return Some(started.elapsed());
        }
        if started.elapsed() > deadline {
            return None;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// The addresses an upstream balances over right now, sorted.
pub fn rotation(gateway: &Gateway, upstream: &str) -> Vec<std::net::SocketAddr> {
    let state = gateway.state().load_full();
    let upstream = state.upstream(upstream).unwrap_or_else(|| panic!("no upstream `{upstream}`"));
    let mut addresses: Vec<_> = upstream.targets().targets.iter().map(|t| t.address).collect();
    addresses.sort();
    addresses
}

/// An address on which nothing listens: bound, then released.
pub fn closed_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("local_addr: {e}"));
    drop(listener);
    addr
}
