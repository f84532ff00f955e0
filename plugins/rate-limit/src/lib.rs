//! Token-bucket rate limiting on the host's shared buckets: every instance
//! of the plugin, on every worker, sees one bucket per key.

mod config;
#[cfg(test)]
mod tests;

use std::time::Duration;

use wasmgate_sdk::prelude::*;

pub use config::Config;
use config::{KeyBy, Limit};

/// Scratch key carrying the rate headers from `on_request` to `on_response`.
const SCRATCH: &str = "rate-limit.headers";

pub struct RateLimit {
    key: KeyBy,
    limit: Limit,
    /// Per key-value overrides (e.g. a consumer or an app with its own limit).
    overrides: Vec<(String, Limit)>,
    headers: bool,
    status: u16,
}

impl RateLimit {
    /// The bucket key and the limit that applies to it.
    fn bucket(&self, request: &Request, cx: &Context) -> (String, &Limit) {
        let value = match &self.key {
            KeyBy::ClientIp => None,
            KeyBy::Route => Some(String::new()),
            KeyBy::Header(name) => request.header(name).map(str::to_owned),
            KeyBy::Consumer => cx.scratch_get("consumer"),
            KeyBy::Scratch(name) => cx.scratch_get(name),
        };
        let limit = value
            .as_deref()
            .and_then(|v| self.overrides.iter().find(|(k, _)| k == v))
            .map_or(&self.limit, |(_, l)| l);
        // A request without the key's value falls back to its client ip.
        let value = value.unwrap_or_else(|| {
            cx.client_ip()
                .map_or_else(|| "unknown".to_owned(), |ip| format!("ip:{ip}"))
        });
        (format!("{}|{}", cx.route(), value), limit)
    }
}

impl Plugin for RateLimit {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        let (key, limit, overrides) = config.validate()?;
        Ok(Self {
            key,
            limit,
            overrides,
            headers: config.headers,
            status: config.status,
        })
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        let (key, limit) = self.bucket(request, cx);
        let taken = cx.take_tokens(&key, 1, limit.per_second, limit.burst);
        // Seconds until the bucket is full again (or, refused, until one token).
        let missing = f64::from(limit.burst.saturating_sub(taken.remaining));
        let reset = if taken.allowed {
            (missing / limit.per_second).ceil() as u64
        } else {
            ceil_secs(taken.retry_after)
        };
        let rate_headers = [
            ("x-ratelimit-limit", limit.burst.to_string()),
            ("x-ratelimit-remaining", taken.remaining.to_string()),
            ("x-ratelimit-reset", reset.to_string()),
        ];
        if taken.allowed {
            if self.headers {
                let joined = rate_headers.map(|(_, v)| v).join(",");
                cx.scratch_set(SCRATCH, &joined);
            }
            return RequestFlow::Continue;
        }
        let mut response = Response::json(
            self.status,
            &serde_json::json!({ "error": "rate limit exceeded", "retry_after": reset }),
        )
        .with_header("retry-after", reset.to_string());
        if self.headers {
            for (name, value) in rate_headers {
                response = response.with_header(name, value);
            }
        }
        RequestFlow::Respond(response)
    }

    fn on_response(&self, response: &mut ResponseHead, cx: &Context) -> ResponseFlow {
        if let Some(values) = cx.scratch_remove(SCRATCH) {
            let names = [
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
            ];
            for (name, value) in names.into_iter().zip(values.split(',')) {
                response.set_header(name, value);
            }
        }
        ResponseFlow::Continue
    }
}

/// Whole seconds, rounded up, at least 1.
fn ceil_secs(d: Duration) -> u64 {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    ms.div_ceil(1000).max(1)
}

export_plugin!(RateLimit);
