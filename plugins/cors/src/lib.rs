//! Cross-origin resource sharing: answers preflight (`OPTIONS` with
//! `Access-Control-Request-Method`) itself and adds the CORS headers to
//! the responses of allowed origins.

#[cfg(test)]
mod tests;

use serde::Deserialize;
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Exact origins (`https://app.example.com`) or `*`.
    allow_origins: Vec<String>,
    #[serde(default = "default_methods")]
    allow_methods: Vec<String>,
    /// Request headers a preflight may ask for; `*` allows any.
    #[serde(default)]
    allow_headers: Vec<String>,
    #[serde(default)]
    expose_headers: Vec<String>,
    #[serde(default)]
    allow_credentials: bool,
    /// Seconds a browser may cache a preflight answer.
    max_age: Option<u32>,
}

fn default_methods() -> Vec<String> {
    ["GET", "HEAD", "POST"].map(String::from).to_vec()
}

/// How a CORS header goes on: replacing the header's values, or next to
/// them (`Vary`).
enum Put {
    Set,
    Append,
}

pub struct Cors {
    any_origin: bool,
    origins: Vec<String>,
    methods: Vec<String>,
    any_header: bool,
    /// Lower-case.
    headers: Vec<String>,
    expose: String,
    credentials: bool,
    max_age: Option<u32>,
}

/// Methods and header names are both RFC 9110 tokens.
fn token(s: &str) -> bool {
    valid_header_name(s)
}

impl Cors {
    fn allowed_origin<'a>(&self, origin: &'a str) -> Option<&'a str> {
        // Scheme and host are case-insensitive; the configured ones are lower-case.
        (self.any_origin || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))).then_some(origin)
    }

    /// `*` only when any origin is allowed without credentials; otherwise
    /// the origin itself (with `Vary: Origin`).
    fn origin_headers(&self, origin: &str, mut put: impl FnMut(Put, &'static str, &str)) {
        if self.any_origin && !self.credentials {
            put(Put::Set, "access-control-allow-origin", "*");
        } else {
            put(Put::Set, "access-control-allow-origin", origin);
            put(Put::Append, "vary", "Origin");
        }
        if self.credentials {
            put(Put::Set, "access-control-allow-credentials", "true");
        }
    }

    fn preflight(&self, request: &Request, origin: &str) -> Response {
        let method = request
            .header("access-control-request-method")
            .unwrap_or_default();
        let asked: Vec<String> = request
            .header("access-control-request-headers")
            .unwrap_or_default()
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        let method_ok = self.methods.iter().any(|m| m == method);
        let headers_ok = self.any_header || asked.iter().all(|h| self.headers.contains(h));
        if self.allowed_origin(origin).is_none() || !method_ok || !headers_ok {
            return Response::text(403, "CORS preflight refused");
        }
        let mut response = Response::new(204);
        self.origin_headers(origin, |put, name, value| match put {
            Put::Set => response.set_header(name, value),
            Put::Append => response.append_header(name, value),
        });
        response.set_header("access-control-allow-methods", self.methods.join(", "));
        if !asked.is_empty() {
            let allow = if self.any_header {
                asked.join(", ")
            } else {
                self.headers.join(", ")
            };
            response.set_header("access-control-allow-headers", allow);
        }
        if let Some(age) = self.max_age {
            response.set_header("access-control-max-age", age.to_string());
        }
        response
    }
}

impl Plugin for Cors {
    type Config = Config;

    fn new(c: Config, _cx: &Context) -> Result<Self, String> {
        if c.allow_origins.is_empty() {
            return Err(
                "invalid config at `allow_origins`: list at least one origin (or `*`)".into(),
            );
        }
        for (i, o) in c.allow_origins.iter().enumerate() {
            // An origin is scheme://host[:port]: nothing after the authority.
            let authority = o.strip_prefix("http://").or_else(|| o.strip_prefix("https://"));
            let ok = o == "*"
                || authority.is_some_and(|a| {
                    !a.is_empty() && !a.contains(['/', '?', '#', '@', ' ']) && !a.bytes().any(|b| b.is_ascii_control())
                });
            if !ok {
                return Err(format!(
                    "invalid config at `allow_origins[{i}]`: `{o}` is not `*` or an origin like `https://example.com`"
                ));
            }
        }
        for (key, list) in [
            ("allow_methods", &c.allow_methods),
            ("allow_headers", &c.allow_headers),
            ("expose_headers", &c.expose_headers),
        ] {
            for (i, item) in list.iter().enumerate() {
                if !(token(item) || (key == "allow_headers" && item == "*")) {
                    return Err(format!(
                        "invalid config at `{key}[{i}]`: `{item}` is not a token"
                    ));
                }
            }
        }
        Ok(Self {
            any_origin: c.allow_origins.iter().any(|o| o == "*"),
            origins: c.allow_origins.iter().map(|o| o.to_ascii_lowercase()).collect(),
            methods: c
                .allow_methods
                .iter()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            any_header: c.allow_headers.iter().any(|h| h == "*"),
            headers: c
                .allow_headers
                .iter()
                .map(|h| h.to_ascii_lowercase())
                .collect(),
            expose: c.expose_headers.join(", "),
            credentials: c.allow_credentials,
            max_age: c.max_age,
        })
    }

    /// Answers preflights; for an allowed origin, puts the CORS headers on
    /// the response from here (the gateway applies them when the response
    /// comes back through this plugin), so there is no response phase.
    fn on_request(&self, request: &mut Request, _cx: &Context) -> RequestFlow {
        let Some(origin) = request.header("origin") else {
            return RequestFlow::Continue;
        };
        if request.method() == "OPTIONS"
            && request.headers().contains("access-control-request-method")
        {
            return RequestFlow::Respond(self.preflight(request, origin));
        }
        let Some(origin) = self.allowed_origin(origin).map(str::to_owned) else {
            return RequestFlow::Continue;
        };
        self.origin_headers(&origin, |put, name, value| match put {
            Put::Set => request.set_response_header(name, value),
            Put::Append => request.append_response_header(name, value),
        });
        if !self.expose.is_empty() {
            request.set_response_header("access-control-expose-headers", self.expose.as_str());
        }
        RequestFlow::Continue
    }
}

export_plugin!(Cors);
