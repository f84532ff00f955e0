//! `[security]` and the per-route security keys: which upgrades a route lets
//! through, and which identity headers are removed from clients' requests.

use http::HeaderName;

use super::super::raw::{RawRoute, RawSecurity};
use super::{invalid, Invalid};
use crate::config::{RouteConfig, SecurityConfig};

/// What `identity_headers` is when the config does not say.
const DEFAULT_IDENTITY_HEADERS: &[&str] = &["x-consumer-id"];

/// The route's upgrade allowlist, lower-cased; `websocket` when unset.
pub fn upgrades(raw: Option<&[String]>, key: &str) -> Result<Vec<String>, Invalid> {
    let Some(raw) = raw else {
        return Ok(vec!["websocket".to_owned()]);
    };
    let mut upgrades = Vec::with_capacity(raw.len());
    for (i, name) in raw.iter().enumerate() {
        let lower = name.trim().to_ascii_lowercase();
        if lower.is_empty() || !lower.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
            return Err(invalid(format!("{key}[{i}]"), format!("`{name}` is not a protocol name")));
        }
        if lower == "h2c" {
            return Err(invalid(
                format!("{key}[{i}]"),
                "h2c is never forwarded: HTTP/2 over cleartext reaches the gateway as h2c directly (RFC 9113 dropped the upgrade)",
            ));
        }
        if !upgrades.contains(&lower) {
            upgrades.push(lower);
        }
    }
    Ok(upgrades)
}

/// `[security]` validated, with the `consumer_header` of every plugin of every
/// route added: a client must not be able to send, on any route, the header an
/// auth plugin sets on another.
pub fn security(raw: &RawSecurity, routes: &[RouteConfig]) -> Result<SecurityConfig, Invalid> {
    let mut identity_headers = Vec::new();
    let configured: Vec<&str> = match &raw.identity_headers {
        Some(names) => names.iter().map(String::as_str).collect(),
        None => DEFAULT_IDENTITY_HEADERS.to_vec(),
    };
    for (i, name) in configured.iter().enumerate() {
        let header = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| invalid(format!("security.identity_headers[{i}]"), format!("`{name}` is not a header name")))?;
        push_unique(&mut identity_headers, header);
    }
    for route in routes {
        for plugin in &route.plugins {
            let Ok(serde_json::Value::Object(config)) = serde_json::from_str(&plugin.config_json) else {
                continue;
            };
            // A plugin checks its own config; a name that is not a header is its error.
            if let Some(Ok(header)) = config.get("consumer_header").and_then(|v| v.as_str()).map(|n| HeaderName::from_bytes(n.trim().as_bytes())) {
                push_unique(&mut identity_headers, header);
            }
        }
    }
    Ok(SecurityConfig { identity_headers })
}

/// Gives each route the identity headers it removes (none when it trusts them).
pub fn apply(security: &SecurityConfig, raw: &[RawRoute], routes: &mut [RouteConfig]) {
    for (route, raw) in routes.iter_mut().zip(raw) {
        route.identity_headers = if raw.trust_identity_headers { Vec::new() } else { security.identity_headers.clone() };
    }
}

fn push_unique(list: &mut Vec<HeaderName>, name: HeaderName) {
    if !list.contains(&name) {
        list.push(name);
    }
}
