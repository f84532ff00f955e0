//! JWT bearer authentication: HS256, RS256 and ES256 with keys from config
//! (PEM or an inline JWKS), `exp`/`nbf` with leeway, `iss` and `aud`. The
//! consumer (`sub` or a configured claim) goes upstream in a header and
//! into the scratch map as `consumer`; the issuer as `jwt.iss`.

mod keys;
#[cfg(test)]
mod tests;
mod token;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use serde::Deserialize;
use wasmgate_sdk::json::Value;
use wasmgate_sdk::prelude::*;

use keys::{Key, KeyConfig};
use std::hash::BuildHasher;

use token::{Rules, Verified};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    keys: Vec<KeyConfig>,
    /// A JWKS document: JSON text, or the same as a table.
    jwks: Option<Value>,
    /// The header holding `Bearer <token>`.
    #[serde(default = "default_header")]
    header: String,
    /// A query parameter tried when the header is absent.
    query: Option<String>,
    /// A cookie tried when the header and query are absent.
    cookie: Option<String>,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway")]
    leeway: u64,
    /// Refuse tokens without `exp`.
    #[serde(default = "yes")]
    require_exp: bool,
    /// Accepted `iss` values (any when empty).
    #[serde(default)]
    issuers: Vec<String>,
    /// Accepted `aud` values (any when empty).
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default = "default_consumer_claim")]
    consumer_claim: String,
    #[serde(default = "default_consumer_header")]
    consumer_header: String,
    /// Remove the token's header before the request goes upstream.
    #[serde(default)]
    hide_credentials: bool,
    /// Tokens whose signature was verified, remembered per instance so a
    /// client that sends the same token again costs a lookup, not a
    /// signature check (claims are still checked on every request). 0 turns
    /// the cache off.
    #[serde(default = "default_cache_size")]
    cache_size: usize,
}

fn default_cache_size() -> usize {
    1024
}

fn default_header() -> String {
    "authorization".into()
}
fn default_leeway() -> u64 {
    30
}
fn yes() -> bool {
    true
}
fn default_consumer_claim() -> String {
    "sub".into()
}
fn default_consumer_header() -> String {
    "x-consumer-id".into()
}

/// Verified tokens by a hash of their text, with the text.
type TokenCache = HashMap<u64, (Box<str>, Rc<Verified>)>;

pub struct JwtAuth {
    keys: Vec<Key>,
    rules: Rules,
    header: String,
    query: Option<String>,
    cookie: Option<String>,
    consumer_claim: String,
    consumer_header: String,
    hide_credentials: bool,
    /// Verified tokens and their claims (see `Config::cache_size`).
    /// Tokens verified so far, by a hash of their text, with the text to
    /// compare (a matching hash alone proves nothing).
    verified: RefCell<TokenCache>,
    hasher: foldhash::fast::RandomState,
    cache_size: usize,
}

impl JwtAuth {
    /// The claims of `token` if one of the keys signed it: from the cache,
    /// or verified now (and then remembered; a full cache starts over, which
    /// bounds its memory without bookkeeping on the hot path).
    fn verify(&self, token: &str) -> Result<Rc<Verified>, token::Refusal> {
        let hash = self.hasher.hash_one(token);
        if let Some((text, verified)) = self.verified.borrow().get(&hash) {
            if same_text(text, token) {
                return Ok(verified.clone());
            }
        }
        let claims = token::verify(token, &self.keys)?;
        let verified = Rc::new(self.rules.digest(&claims, &self.consumer_claim));
        if self.cache_size > 0 {
            let mut cache = self.verified.borrow_mut();
            if cache.len() >= self.cache_size {
                cache.clear();
            }
            cache.insert(hash, (token.into(), verified.clone()));
        }
        Ok(verified)
    }

    fn token(&self, request: &Request) -> Option<(String, bool)> {
        if let Some(value) = request.header(&self.header) {
            let value = value.trim();
            let token = match value.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
                // A custom header may carry the bare token.
                _ if self.header != "authorization" => value,
                _ => return None,
            };
            return Some((token.to_owned(), true));
        }
        if let Some(token) = self.query.as_deref().and_then(|q| request.query_param(q)) {
            return Some((token, false));
        }
        let name = self.cookie.as_deref()?;
        request.headers().get_all("cookie").find_map(|line| {
            std::str::from_utf8(line).ok()?.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                (k == name).then(|| (v.to_owned(), false))
            })
        })
    }
}

/// Whether two texts are equal, compared sixteen bytes a step: the C
/// library's `memcmp` goes byte by byte in Wasm, and tokens are long.
fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len()
        && a.chunks(16).zip(b.chunks(16)).all(|(x, y)| {
            match (<&[u8; 16]>::try_from(x), <&[u8; 16]>::try_from(y)) {
                (Ok(x), Ok(y)) => u128::from_le_bytes(*x) == u128::from_le_bytes(*y),
                _ => x == y,
            }
        })
}

fn unauthorized(error: Option<&str>) -> RequestFlow {
    let challenge = match error {
        Some(why) => format!(
            "Bearer realm=\"wasmgate\", error=\"invalid_token\", error_description=\"{why}\""
        ),
        None => "Bearer realm=\"wasmgate\"".to_owned(),
    };
    let message = error.unwrap_or("missing bearer token");
    RequestFlow::Respond(
        Response::json(401, &json!({ "error": message }))
            .with_header("www-authenticate", challenge),
    )
}

impl Plugin for JwtAuth {
    type Config = Config;

    fn new(c: Config, _cx: &Context) -> Result<Self, String> {
        let mut keys = Vec::new();
        for (i, key) in c.keys.iter().enumerate() {
            keys.push(
                key.build()
                    .map_err(|e| format!("invalid config at `keys[{i}]`: {e}"))?,
            );
        }
        if let Some(jwks) = &c.jwks {
            let text = match jwks {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            keys.extend(
                keys::from_jwks(&text).map_err(|e| format!("invalid config at `jwks`: {e}"))?,
            );
        }
        if keys.is_empty() {
            return Err("invalid config at `keys`: give at least one key (or `jwks`)".into());
        }
        if c.consumer_claim.is_empty() {
            return Err("invalid config at `consumer_claim`: must not be empty".into());
        }
        for (at, name) in [("header", &c.header), ("consumer_header", &c.consumer_header)] {
            if !valid_header_name(name) {
                return Err(format!("invalid config at `{at}`: {name:?} is not a header name"));
            }
        }
        Ok(Self {
            keys,
            rules: Rules {
                leeway: c.leeway,
                require_exp: c.require_exp,
                issuers: c.issuers,
                audiences: c.audiences,
            },
            header: c.header.to_ascii_lowercase(),
            query: c.query,
            cookie: c.cookie,
            consumer_claim: c.consumer_claim,
            consumer_header: c.consumer_header.to_ascii_lowercase(),
            hide_credentials: c.hide_credentials,
            verified: RefCell::new(HashMap::new()),
            hasher: foldhash::fast::RandomState::default(),
            cache_size: c.cache_size,
        })
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        let Some((token, in_header)) = self.token(request) else {
            return unauthorized(None);
        };
        let verified = match self.verify(&token) {
            Ok(verified) => verified,
            Err(why) => return unauthorized(Some(why)),
        };
        let now = cx
            .wall_now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        if let Err(why) = self.rules.check(&verified, now) {
            return unauthorized(Some(why));
        }
        if self.hide_credentials && in_header {
            request.remove_header(&self.header);
        }
        request.set_header(&self.consumer_header, &*verified.consumer);
        cx.scratch_set("consumer", &verified.consumer);
        if let Some(iss) = &verified.iss {
            cx.scratch_set("jwt.iss", iss);
        }
        RequestFlow::Continue
    }
}

export_plugin!(JwtAuth);
