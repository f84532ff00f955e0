//! Health checks, circuit breakers and fallbacks: raw → validated.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use super::super::raw::{RawBreaker, RawFallback, RawHealthCheck};
use super::super::resilience::*;
use super::{invalid, positive, Invalid};

pub fn health_check(raw: &RawHealthCheck, key: &str) -> Result<HealthCheckConfig, Invalid> {
    let k = |field: &str| format!("{key}.{field}");
    let kind = match (raw.kind.as_deref().unwrap_or("tcp"), &raw.path) {
        ("tcp", None) => HealthCheckKind::Tcp,
        ("tcp", Some(_)) => return Err(invalid(k("path"), "only applies to kind = \"http\"")),
        ("http", path) => {
            let path = path.as_deref().unwrap_or("/");
            let parsed = path.parse::<http::uri::PathAndQuery>().ok().filter(|_| path.starts_with('/'));
            match parsed {
                Some(path) => HealthCheckKind::Http { path },
                None => return Err(invalid(k("path"), format!("`{path}` is not a path starting with `/`"))),
            }
        }
        (other, _) => return Err(invalid(k("kind"), format!("`{other}` is not one of: tcp, http"))),
    };
    let interval = positive(raw.interval, DEFAULT_HEALTH_INTERVAL, &k("interval"))?;
    let timeout = positive(raw.timeout, DEFAULT_HEALTH_TIMEOUT.min(interval), &k("timeout"))?;
    if timeout > interval {
        return Err(invalid(k("timeout"), format!("must not be longer than interval ({interval:?})")));
    }
    let threshold = |value: Option<u32>, field: &str| match value.unwrap_or(DEFAULT_HEALTH_THRESHOLD) {
        n @ 1..=100 => Ok(n),
        _ => Err(invalid(k(field), "must be between 1 and 100")),
    };
    Ok(HealthCheckConfig {
        kind,
        interval,
        timeout,
        unhealthy_after: threshold(raw.unhealthy_after, "unhealthy_after")?,
        healthy_after: threshold(raw.healthy_after, "healthy_after")?,
    })
}

pub fn breaker(raw: &RawBreaker, key: &str) -> Result<BreakerConfig, Invalid> {
    let k = |field: &str| format!("{key}.{field}");
    let error_percent = raw.error_percent.unwrap_or(DEFAULT_ERROR_PERCENT);
    if !(1..=100).contains(&error_percent) {
        return Err(invalid(k("error_percent"), "must be between 1 and 100"));
    }
    let request_volume = raw.request_volume.unwrap_or(DEFAULT_REQUEST_VOLUME);
    if request_volume == 0 {
        return Err(invalid(k("request_volume"), "must be at least 1"));
    }
    let window = positive(raw.window, DEFAULT_BREAKER_WINDOW, &k("window"))?;
    if window < std::time::Duration::from_millis(100) {
        return Err(invalid(k("window"), "must be at least 100ms"));
    }
    let half_open_requests = raw.half_open_requests.unwrap_or(DEFAULT_HALF_OPEN_REQUESTS);
    if !(1..=1000).contains(&half_open_requests) {
        return Err(invalid(k("half_open_requests"), "must be between 1 and 1000"));
    }
    Ok(BreakerConfig {
        error_percent,
        request_volume,
        window,
        sleep_window: positive(raw.sleep_window, DEFAULT_SLEEP_WINDOW, &k("sleep_window"))?,
        half_open_requests,
    })
}

/// Headers that describe the connection or the body's framing: the gateway sets them.
const GATEWAY_OWNED: &[&str] =
    &["connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade", "content-length"];

pub fn fallback(raw: &RawFallback, key: &str) -> Result<FallbackConfig, Invalid> {
    let k = |field: &str| format!("{key}.{field}");
    let status = StatusCode::from_u16(raw.status.unwrap_or(503))
        .ok()
        .filter(|s| s.as_u16() >= 200)
        .ok_or_else(|| invalid(k("status"), "must be a status code between 200 and 999"))?;
    let mut headers = HeaderMap::new();
    for (name, value) in &raw.headers {
        let hkey = format!("{key}.headers.{name}");
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(&hkey, "is not a header name"))?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid(&hkey, "is not a valid header value"))?;
        if GATEWAY_OWNED.contains(&name.as_str()) {
            return Err(invalid(&hkey, "is set by the gateway and cannot be configured"));
        }
        headers.append(name, value);
    }
    Ok(FallbackConfig { status, headers, body: Bytes::from(raw.body.clone()) })
}
