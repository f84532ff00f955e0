//! Uses every capability and reports through request headers:
//! `x-route`, `x-listener`, `x-client-ip`, `x-upstream`, `x-hits` (a shared
//! counter), `x-last-path` (kv), `x-wall-secs`, `x-mono-ok`; answers 429
//! with `retry-after-ms` when its token bucket (`{"rate": r, "burst": b}`)
//! is empty. Leaves `seen-by` in the scratch map and copies it to the
//! response's `x-scratch`.

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

fn default_rate() -> f64 {
    1000.0
}

fn default_burst() -> u32 {
    1000
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default = "default_rate")]
    rate: f64,
    #[serde(default = "default_burst")]
    burst: u32,
}

struct CapProbe(Config);

impl Plugin for CapProbe {
    type Config = Config;

    fn new(config: Config, cx: &Context) -> Result<Self, String> {
        cx.info("cap-probe ready");
        Ok(Self(config))
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        let take = cx.take_tokens("bucket", 1, self.0.rate, self.0.burst);
        if !take.allowed {
            return RequestFlow::Respond(
                Response::text(429, "slow down")
                    .with_header("retry-after-ms", take.retry_after.as_millis().to_string()),
            );
        }
        let t0 = cx.monotonic_now();
        request.set_header("x-route", cx.route());
        request.set_header("x-listener", cx.listener());
        request.set_header(
            "x-client-ip",
            cx.client_ip().map(|ip| ip.to_string()).unwrap_or_default(),
        );
        request.set_header("x-upstream", cx.upstream().unwrap_or_default());
        request.set_header("x-hits", cx.counter_add("hits", 1).to_string());
        let last = cx.kv_get("last-path").unwrap_or_default();
        request.set_header("x-last-path", last);
        cx.kv_set("last-path", request.path().as_bytes(), None);
        let wall = cx
            .wall_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        request.set_header("x-wall-secs", wall.to_string());
        request.set_header("x-mono-ok", (cx.monotonic_now() >= t0).to_string());
        cx.scratch_set("seen-by", "cap-probe");
        RequestFlow::Continue
    }

    fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
        response.set_header("x-scratch", cx.scratch_get("seen-by").unwrap_or_default());
        ResponseFlow::Continue
    }
}

export_plugin!(CapProbe);
