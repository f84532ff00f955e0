//! The admin API's actions: reload the config, drain or undrain a target, set
//! the log level for a while. Each answers `(status, JSON)`.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use super::status::unix_ms;
use crate::logging::{self, LevelError};
use crate::plugins::PluginsError;
use crate::reload::{ReloadError, Reloader};
use crate::state::State;

/// How long a temporary log level lasts when the request does not say.
pub const DEFAULT_LEVEL_EXPIRY: Duration = Duration::from_secs(10 * 60);
/// The longest: a forgotten `debug` must not fill the disks for days.
pub const MAX_LEVEL_EXPIRY: Duration = Duration::from_secs(60 * 60);
/// A `PUT /log-level` body larger than this is refused.
const MAX_BODY: usize = 4096;

/// `POST /reload`: the config file read again, as a file change would. Every
/// answer names that file (`config`).
pub async fn reload(reloader: Arc<Reloader>) -> (StatusCode, Value) {
    let file = reloader.config_file().display().to_string();
    // Off the event loop: compiling plugins takes a while, and health checks and
    // discovery share this thread.
    let done = tokio::task::spawn_blocking(move || reloader.reload(None).map(|()| reloader.running())).await;
    match done {
        Ok(Ok(running)) => (
            StatusCode::OK,
            json!({
                "reloaded": true,
                "config": file,
                "hash": running.hash,
                "routes": running.config.routes.len(),
                "upstreams": running.config.upstreams.len(),
                "plugins": running.plugins.iter().map(|p| format!("{} {}", p.name, p.version)).collect::<Vec<_>>(),
            }),
        ),
        Ok(Err(e)) => {
            tracing::error!(config = %file, error = %e, "reload refused; still serving the previous config and plugins");
            let (status, mut answer) = refused(&e);
            answer["config"] = Value::String(file);
            (status, answer)
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": format!("the reload did not finish: {e}"), "config": file }),
        ),
    }
}

/// The answer to a refused reload: what was wrong, where. The old config keeps serving.
pub fn refused(error: &ReloadError) -> (StatusCode, Value) {
    let message = error.to_string();
    match error {
        ReloadError::Config(e) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({
                "error": "invalid config",
                "file": e.file.display().to_string(),
                "line": e.line,
                "key": e.key,
                "reason": e.reason,
                "message": message,
            }),
        ),
        ReloadError::Plugins(e) => {
            let failures: Vec<Value> = match e {
                PluginsError::Load(set) => set
                    .failures
                    .iter()
                    .map(|(file, e)| json!({ "file": file.display().to_string(), "reason": e.to_string() }))
                    .collect(),
                _ => Vec::new(),
            };
            (StatusCode::UNPROCESSABLE_ENTITY, json!({ "error": "plugins not loaded", "failures": failures, "message": message }))
        }
        ReloadError::NeedsRestart(_) => (StatusCode::CONFLICT, json!({ "error": "needs a restart", "message": message })),
        ReloadError::Bind(_) => (StatusCode::CONFLICT, json!({ "error": "cannot bind", "message": message })),
    }
}

/// `POST /upstreams/{name}/targets/{address}/drain` and `/undrain`.
pub fn drain(state: &State, upstream: &str, target: &str, drained: bool) -> (StatusCode, Value) {
    let Some(up) = state.upstream(upstream) else {
        return (StatusCode::NOT_FOUND, json!({ "error": format!("no upstream `{upstream}`") }));
    };
    let Some(address) = up.drain(target, drained) else {
        return (StatusCode::NOT_FOUND, json!({ "error": format!("upstream `{upstream}` has no target `{target}`") }));
    };
    let (_, targets) = up.status();
    (
        StatusCode::OK,
        json!({
            "upstream": upstream,
            "target": address.to_string(),
            "drained": drained,
            "in_rotation": targets.iter().any(|t| t.address == address && t.in_rotation),
            "available": targets.iter().filter(|t| t.in_rotation).count(),
        }),
    )
}

/// `GET /log-level`.
pub fn log_level() -> (StatusCode, Value) {
    match logging::level() {
        Some(status) => (
            StatusCode::OK,
            json!({
                "level": status.level,
                "configured": status.configured,
                "expires_unix_ms": status.until.and_then(unix_ms),
            }),
        ),
        None => not_managed(),
    }
}

/// `PUT /log-level` with `{"level": "debug", "expires_in": "5m"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelRequest {
    /// `error` … `trace`, or filter directives (`info,wasmgate::proxy=debug`).
    level: String,
    /// How long until the configured level returns (default 10 minutes, at most 1 hour).
    #[serde(default, with = "humantime_serde")]
    expires_in: Option<Duration>,
}

pub async fn set_log_level(body: Incoming, deadline: Duration) -> (StatusCode, Value) {
    let bytes = match tokio::time::timeout(deadline, Limited::new(body, MAX_BODY).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(_)) => return bad_request(format!("the body must be JSON of at most {MAX_BODY} bytes")),
        Err(_) => return (StatusCode::REQUEST_TIMEOUT, json!({ "error": "the body did not arrive in time" })),
    };
    let request: LevelRequest = match serde_json::from_slice(&bytes) {
        Ok(request) => request,
        Err(e) => return bad_request(format!("expected {{\"level\": \"debug\", \"expires_in\": \"5m\"}}: {e}")),
    };
    let expires_in = request.expires_in.unwrap_or(DEFAULT_LEVEL_EXPIRY);
    if expires_in.is_zero() || expires_in > MAX_LEVEL_EXPIRY {
        return bad_request("expires_in must be more than 0 and at most 1h".into());
    }
    match logging::set_temporary(&request.level, expires_in) {
        Ok(generation) => {
            // On the control thread's event loop, which lives as long as the process serves.
            tokio::spawn(async move {
                tokio::time::sleep(expires_in).await;
                logging::expire(generation);
            });
            log_level()
        }
        Err(LevelError::Invalid(level)) => bad_request(LevelError::Invalid(level).to_string()),
        Err(LevelError::NotManaged) => not_managed(),
    }
}

/// `DELETE /log-level`: the configured level, now.
pub fn end_log_level() -> (StatusCode, Value) {
    match logging::level() {
        Some(_) => {
            logging::end_temporary();
            log_level()
        }
        None => not_managed(),
    }
}

fn bad_request(message: String) -> (StatusCode, Value) {
    (StatusCode::BAD_REQUEST, json!({ "error": message }))
}

fn not_managed() -> (StatusCode, Value) {
    (StatusCode::CONFLICT, json!({ "error": LevelError::NotManaged.to_string() }))
}
