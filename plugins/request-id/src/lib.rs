//! `X-Request-Id` on every request (kept when the client sent a sane one),
//! echoed on the response, left in the scratch map as `request_id`, and a
//! `trace-in` / `trace-out` log line pair with the time spent in between.

#[cfg(test)]
mod tests;

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "default_header")]
    header: String,
    /// Keep an id the client sent (if it is 1..=128 visible ASCII characters).
    #[serde(default = "yes")]
    trust_incoming: bool,
    /// Echo the id on the response.
    #[serde(default = "yes")]
    response_header: bool,
    /// Log `trace-in` and `trace-out` lines.
    #[serde(default = "yes")]
    trace: bool,
}

fn default_header() -> String {
    "x-request-id".into()
}

fn yes() -> bool {
    true
}

/// Scratch keys: the id (read by other plugins) and the start time.
const ID: &str = "request_id";
const STARTED: &str = "request-id.started";

pub struct RequestId {
    header: String,
    trust_incoming: bool,
    response_header: bool,
    trace: bool,
}

/// A 64-bit mix (splitmix64's finaliser): spreads sequential inputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// 32 hex digits, unique across instances: the wall clock and a sequence
/// number from the host's shared counter.
fn new_id(cx: &Context) -> String {
    let wall = cx
        .wall_now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or_default();
    let seq = cx.counter_add("seq", 1) as u64;
    format!(
        "{:016x}{:016x}",
        mix(wall ^ seq.rotate_left(32)),
        mix(seq) ^ wall
    )
}

fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl Plugin for RequestId {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        let header = config.header.to_ascii_lowercase();
        let token = !header.is_empty()
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !token {
            return Err(format!(
                "invalid config at `header`: `{}` is not a header name",
                config.header
            ));
        }
        if gateway_managed_header(&header) {
            return Err(format!(
                "invalid config at `header`: `{}` is managed by the gateway",
                config.header
            ));
        }
        Ok(Self {
            header,
            trust_incoming: config.trust_incoming,
            response_header: config.response_header,
            trace: config.trace,
        })
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        let incoming = request
            .header(&self.header)
            .filter(|id| self.trust_incoming && acceptable(id));
        let id = match incoming {
            Some(id) => id.to_owned(),
            None => {
                let id = new_id(cx);
                request.set_header(&self.header, id.as_str());
                id
            }
        };
        cx.scratch_set(ID, &id);
        if self.trace {
            cx.scratch_set(STARTED, &cx.monotonic_now().as_nanos().to_string());
            let client = cx
                .client_ip()
                .map(|ip| ip.to_string())
                .unwrap_or_else(|| "-".into());
            cx.info(&format!(
                "trace-in id={id} route={} client={client} {} {}",
                cx.route(),
                request.method(),
                request.path()
            ));
        }
        RequestFlow::Continue
    }

    fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
        let Some(id) = cx.scratch_get(ID) else {
            return ResponseFlow::Continue;
        };
        if self.response_header {
            response.set_header(&self.header, id.as_str());
        }
        if self.trace {
            let started = cx.scratch_get(STARTED).and_then(|s| s.parse::<u128>().ok());
            let took = started.map_or_else(
                || "-".to_owned(),
                |s| {
                    format!(
                        "{:.3}ms",
                        (cx.monotonic_now().as_nanos().saturating_sub(s)) as f64 / 1e6
                    )
                },
            );
            cx.info(&format!(
                "trace-out id={id} status={} took={took}",
                response.status()
            ));
        }
        ResponseFlow::Continue
    }
}

export_plugin!(RequestId);
