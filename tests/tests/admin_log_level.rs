//! `PUT /log-level` through a real gateway: a temporary level that expires and
//! gives the configured one back. Alone in its test binary: the logger and its
//! configured level belong to the process, and another test's gateway starting
//! or reloading meanwhile would set a level of its own.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Method;
use serde_json::Value;
use wasmgate_tests::{request, simple_config, Backend, Reply};

const ADMIN: &str = "\n[admin]\naddress = \"127.0.0.1:0\"\n";

async fn admin(addr: SocketAddr, method: Method, path: &str, body: &str) -> Reply {
    request(addr, method, path, &[("host", "admin")], Bytes::from(body.to_owned())).await
}

fn json(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", reply.text()))
}

async fn status(addr: SocketAddr, path: &str) -> Value {
    let reply = admin(addr, Method::GET, path, "").await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    json(&reply)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_level_changes_for_a_while_and_the_configured_one_returns() {
    // This test binary's global logger; its level is what the API changes.
    let _guard = wasmgate::logging::init(&wasmgate::config::LogConfig { access: false, level: "warn".into(), format: wasmgate::config::LogFormat::Text });
    let backend = Backend::start("b").await;
    let gw = wasmgate_tests::gateway(&(simple_config("round_robin", &[(backend.addr, 1)], "") + ADMIN));
    let addr = gw.admin_addr().unwrap();
    let from_env = std::env::var("RUST_LOG").is_ok();

    let level = status(addr, "/log-level").await;
    let configured = level["configured"].clone();
    assert_eq!((level["level"].clone(), level["expires_unix_ms"].clone()), (configured.clone(), Value::Null));
    let max_level = tracing::level_filters::LevelFilter::current;
    if !from_env {
        assert_eq!(configured, "warn");
        assert!(max_level() < tracing::Level::DEBUG);
    }

    // Bad requests change nothing.
    for body in [
        r#"{"level": "loud"}"#,
        r#"{"level": "debug", "expires_in": "2h"}"#,
        r#"{"level": "debug", "expires_in": "0s"}"#,
        r#"{"level": "debug", "colour": "red"}"#,
        "debug",
    ] {
        let reply = admin(addr, Method::PUT, "/log-level", body).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
    }
    let now = status(addr, "/log-level").await;
    assert_eq!(now["level"], now["configured"]);

    // Debug for the admin module only (no flood from the other tests), for 600 ms.
    let directive = "warn,wasmgate::admin=debug";
    let body = format!(r#"{{"level": "{directive}", "expires_in": "600ms"}}"#);
    let reply = admin(addr, Method::PUT, "/log-level", &body).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let level = json(&reply);
    assert_eq!(level["level"], directive);
    assert!(level["expires_unix_ms"].as_u64().is_some());
    assert!(max_level() >= tracing::Level::DEBUG, "the filter was not changed");

    let started = Instant::now();
    loop {
        // Against the configured level as it is now: the logger is the process's,
        // and another test's gateway may reload a different `[log] level` meanwhile.
        let now = status(addr, "/log-level").await;
        if now["level"] == now["configured"] {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the temporary level never expired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(started.elapsed() >= Duration::from_millis(300), "expired too early");
    if !from_env {
        assert!(max_level() < tracing::Level::DEBUG, "the configured level did not return");
    }

    // DELETE ends a temporary level at once.
    let reply = admin(addr, Method::PUT, "/log-level", r#"{"level": "info"}"#).await;
    let expires = json(&reply)["expires_unix_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(expires > now + 9 * 60 * 1000, "the default expiry is 10 minutes");
    let reply = admin(addr, Method::DELETE, "/log-level", "").await;
    assert_eq!(json(&reply)["level"], json(&reply)["configured"]);
}
