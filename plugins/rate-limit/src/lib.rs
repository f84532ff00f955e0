//! Token-bucket rate limiting on the host's shared buckets: every instance
//! of the plugin, on every worker, sees one bucket per key.

mod config;
#[cfg(test)]
mod tests;

use std::time::{Duration, UNIX_EPOCH};

/// Seconds in a (UTC) day: the window of `per = "day"` quotas.
const DAY: u64 = 86_400;

use wasmgate_sdk::prelude::*;

pub use config::Config;
use config::{KeyBy, Limit};

pub struct RateLimit {
    key: KeyBy,
    limit: Limit,
    /// Per key-value overrides (e.g. a consumer or an app with its own limit).
    overrides: Vec<(String, Limit)>,
    headers: bool,
    status: u16,
}

impl RateLimit {
    /// The bucket key (`<route>|<value>`) and the limit that applies to it.
    fn bucket(&self, request: &Request, cx: &Context) -> (String, &Limit) {
        let value = match &self.key {
            KeyBy::ClientIp => None,
            KeyBy::Route => Some(String::new()),
            KeyBy::Header(name) => request.header(name).map(str::to_owned),
            KeyBy::Consumer => cx.scratch_get("consumer"),
            KeyBy::Scratch(name) => cx.scratch_get(name),
        };
        // Without a value (the default `client-ip` key, or a request without
        // the key's header or consumer) the client's address is the key, and
        // overrides are looked up by it too.
        let ip = match value {
            None => cx.client_ip_text(),
            Some(_) => None,
        };
        let limit = value
            .as_deref()
            .or(ip.as_deref())
            .and_then(|v| self.overrides.iter().find(|(k, _)| k == v))
            .map_or(&self.limit, |(_, l)| l);
        let mut key = cx.route();
        key.reserve(48);
        key.push('|');
        match (value, ip) {
            (Some(value), _) => key.push_str(&value),
            (None, Some(ip)) => {
                key.push_str("ip:");
                key.push_str(&ip);
            }
            (None, None) => key.push_str("unknown"),
        }
        (key, limit)
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
        let (mut key, limit) = self.bucket(request, cx);
        // A daily quota is a bucket that never refills, one per UTC day.
        let until_midnight = limit.daily.then(|| {
            let now = cx.wall_now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
            key.push_str("|day:");
            key.push_str(core::str::from_utf8(decimal(now / DAY).as_ref()).unwrap_or("0"));
            DAY - now % DAY
        });
        let taken = cx.take_tokens(&key, 1, limit.per_second, limit.burst);
        // Seconds until the bucket is full again (or, refused, until one token).
        let missing = f64::from(limit.burst.saturating_sub(taken.remaining));
        let reset = if let Some(seconds) = until_midnight {
            seconds
        } else if taken.allowed {
            (missing / limit.per_second).ceil() as u64
        } else {
            ceil_secs(taken.retry_after)
        };
        let rate_headers = [
            ("x-ratelimit-limit", u64::from(limit.burst)),
            ("x-ratelimit-remaining", u64::from(taken.remaining)),
            ("x-ratelimit-reset", reset),
        ];
        if taken.allowed {
            // Known now: the gateway puts them on the response as it comes
            // back through this plugin (no response phase needed).
            if self.headers {
                for (name, value) in rate_headers {
                    request.set_response_header(name, decimal(value));
                }
            }
            return RequestFlow::Continue;
        }
        let mut response = Response::json(
            self.status,
            &json!({ "error": "rate limit exceeded", "retry_after": reset }),
        )
        .with_header("retry-after", reset.to_string());
        if self.headers {
            for (name, value) in rate_headers {
                response = response.with_header(name, value.to_string());
            }
        }
        RequestFlow::Respond(response)
    }
}

/// `n` in decimal digits, on the stack. `to_string` goes through
/// `core::fmt` and allocates, which in Wasm costs about ten times as much,
/// three times on every request.
struct Decimal {
    digits: [u8; 20],
    at: usize,
}

impl AsRef<[u8]> for Decimal {
    fn as_ref(&self) -> &[u8] {
        &self.digits[self.at..]
    }
}

fn decimal(mut n: u64) -> Decimal {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return Decimal { digits, at };
        }
    }
}

/// Whole seconds, rounded up, at least 1.
fn ceil_secs(d: Duration) -> u64 {
    let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    ms.div_ceil(1000).max(1)
}

export_plugin!(RateLimit);
