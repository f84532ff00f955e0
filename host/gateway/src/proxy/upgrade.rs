//! HTTP/1.1 upgrades (WebSocket). The upgrade request takes the ordinary request
//! path — route, headers, balancer, and whatever runs there — so only what follows
//! a `101 Switching Protocols` is special: the gateway then relays bytes between
//! the client's and the target's connections until both close (WebSocket frames,
//! close frames and codes included, pass untouched), or until neither side sent
//! anything for the listener's `idle_timeout`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::body::ResponseBody;
use super::pool::Sender;
use crate::pipe::{pipe, PipeEnd};

/// The target's side of a `101`, carried from `send` to `forward` in the
/// response's extensions (which need `Clone`, hence the shared slot).
#[derive(Clone)]
struct UpstreamUpgrade(Arc<Mutex<Option<(OnUpgrade, Sender)>>>);

/// The `Upgrade` value when `headers` ask for an upgrade (HTTP/1.1, `Connection:
/// upgrade`, `Upgrade: ...`).
#[inline]
pub fn requested(version: Version, headers: &HeaderMap) -> Option<HeaderValue> {
    let upgrade = headers.get(header::UPGRADE)?;
    let asks = version == Version::HTTP_11
        && headers.get_all(header::CONNECTION).iter().any(|v| {
            v.to_str().is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
        });
    asks.then(|| upgrade.clone())
}

/// The protocols of `Upgrade` the route allows (`websocket` by default), as
/// the value to send upstream; `None` when none is allowed: the request then
/// goes on as a plain request without its `Upgrade` (so `h2c`, which the
/// config cannot allow, never reaches a backend, RFC 9113 §3.1).
pub fn allowed(requested: &HeaderValue, allowlist: &[String]) -> Option<HeaderValue> {
    let text = requested.to_str().ok().filter(|t| !t.trim().is_empty())?;
    let is_allowed = |protocol: &&str| {
        let name = protocol.split('/').next().unwrap_or_default().trim();
        allowlist.iter().any(|allowed| name.eq_ignore_ascii_case(allowed))
    };
    let mut protocols = text.split(',').map(str::trim).filter(|p| !p.is_empty());
    if protocols.clone().all(|p| is_allowed(&p)) {
        return Some(requested.clone());
    }
    let kept: Vec<&str> = protocols.by_ref().filter(is_allowed).collect();
    if kept.is_empty() {
        return None;
    }
    HeaderValue::from_str(&kept.join(", ")).ok()
}

/// Puts back the two hop-by-hop headers an upgrade needs upstream.
pub fn restore(headers: &mut HeaderMap, upgrade: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, upgrade);
}

/// The target agreed to switch: a `101` for the client with the target's headers
/// (`Upgrade`, `Sec-WebSocket-Accept`, ...), holding the target's connection.
pub fn switching(mut response: Response<Incoming>, sender: Sender) -> Response<ResponseBody> {
    let upgrade = hyper::upgrade::on(&mut response);
    let (mut parts, _) = response.into_parts();
    // The sender is kept until the upgrade completes, so the connection is not closed under it.
    parts.extensions.insert(UpstreamUpgrade(Arc::new(Mutex::new(Some((upgrade, sender))))));
    Response::from_parts(parts, ResponseBody::Full(None))
}

/// Starts relaying once both sides have switched; returns the response to send
/// the client (a refusal by the target passes through as it is).
pub fn relay(mut response: Response<ResponseBody>, client: OnUpgrade, idle: Duration) -> Response<ResponseBody> {
    if response.status() != StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let target = response.extensions_mut().remove::<UpstreamUpgrade>();
    let Some((target, sender)) = target.and_then(|t| t.0.lock().ok()?.take()) else {
        return response;
    };
    tokio::spawn(async move {
        let joined = tokio::try_join!(client, target);
        drop(sender);
        let (client, target) = match joined {
            Ok(both) => both,
            Err(e) => {
                tracing::debug!(error = %e, "upgrade did not complete");
                return;
            }
        };
        match pipe(TokioIo::new(client), TokioIo::new(target), idle).await {
            PipeEnd::Closed(sent, received) => tracing::debug!(sent, received, "upgraded connection closed"),
            PipeEnd::Idle => tracing::debug!(?idle, "upgraded connection idle: closed"),
            PipeEnd::Failed(e) => tracing::debug!(error = %e, "upgraded connection failed"),
        }
    });
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_protocols_are_upgraded_to() {
        let websocket = ["websocket".to_owned()];
        let allowed = |value: &'static str, list: &[String]| {
            allowed(&HeaderValue::from_static(value), list).map(|v| v.to_str().unwrap().to_owned())
        };
        assert_eq!(allowed("websocket", &websocket).as_deref(), Some("websocket"));
        assert_eq!(allowed("WebSocket", &websocket).as_deref(), Some("WebSocket"));
        assert_eq!(allowed("h2c", &websocket), None);
        assert_eq!(allowed("h2c, websocket", &websocket).as_deref(), Some("websocket"));
        assert_eq!(allowed("foo/2", &websocket), None);
        assert_eq!(allowed("foo/2", &["foo".to_owned()]).as_deref(), Some("foo/2"));
        assert_eq!(allowed(" ", &websocket), None);
        assert_eq!(allowed("websocket", &[]), None);
    }
}
