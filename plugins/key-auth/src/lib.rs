//! API-key authentication. Keys are hashed (SHA-256) at init and only the
//! hashes are kept; a request's key is hashed and looked up.

#[cfg(test)]
mod tests;

use std::collections::HashMap;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use wasmgate_sdk::prelude::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    keys: Vec<KeyEntry>,
    /// Where the key is read from first.
    #[serde(default = "default_header")]
    header: String,
    /// A query parameter tried when the header is absent.
    query: Option<String>,
    /// The header that carries the consumer id upstream.
    #[serde(default = "default_consumer_header")]
    consumer_header: String,
    /// Remove the key from the request before it goes upstream.
    #[serde(default = "yes")]
    hide_credentials: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyEntry {
    consumer: String,
    /// The key itself...
    key: Option<String>,
    /// ...or its SHA-256 in hex, so the config need not hold the secret.
    sha256: Option<String>,
}

fn default_header() -> String {
    "x-api-key".into()
}

fn default_consumer_header() -> String {
    "x-consumer-id".into()
}

fn yes() -> bool {
    true
}

pub struct KeyAuth {
    /// SHA-256 of a key → consumer id.
    consumers: HashMap<[u8; 32], String>,
    header: String,
    query: Option<String>,
    consumer_header: String,
    hide_credentials: bool,
}

fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_hex(at: &str, hex: &str) -> Result<[u8; 32], String> {
    let bytes = hex.as_bytes();
    let mut out = [0u8; 32];
    if bytes.len() != 64 {
        return Err(format!("invalid config at `{at}`: expected 64 hex digits"));
    }
    if !bytes.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!("invalid config at `{at}`: not hex"));
    }
    for (i, pair) in bytes.chunks(2).enumerate() {
        let text =
            std::str::from_utf8(pair).map_err(|_| format!("invalid config at `{at}`: not hex"))?;
        out[i] = u8::from_str_radix(text, 16)
            .map_err(|_| format!("invalid config at `{at}`: not hex"))?;
    }
    Ok(out)
}

impl Plugin for KeyAuth {
    type Config = Config;

    fn new(config: Config, _cx: &Context) -> Result<Self, String> {
        let mut consumers = HashMap::new();
        for (i, entry) in config.keys.iter().enumerate() {
            let digest = match (&entry.key, &entry.sha256) {
                (Some(key), None) if !key.is_empty() => hash(key),
                (None, Some(hex)) => parse_hex(&format!("keys[{i}].sha256"), hex)?,
                _ => {
                    return Err(format!(
                        "invalid config at `keys[{i}]`: give exactly one of `key` or `sha256`"
                    ))
                }
            };
            if entry.consumer.is_empty() {
                return Err(format!(
                    "invalid config at `keys[{i}].consumer`: must not be empty"
                ));
            }
            if consumers.insert(digest, entry.consumer.clone()).is_some() {
                return Err(format!(
                    "invalid config at `keys[{i}]`: the same key is listed twice"
                ));
            }
        }
        if config.keys.is_empty() {
            return Err("invalid config at `keys`: list at least one key".into());
        }
        for (at, name) in [("header", &config.header), ("consumer_header", &config.consumer_header)] {
            if !valid_header_name(name) {
                return Err(format!("invalid config at `{at}`: {name:?} is not a header name"));
            }
        }
        Ok(Self {
            consumers,
            header: config.header.to_ascii_lowercase(),
            query: config.query,
            consumer_header: config.consumer_header.to_ascii_lowercase(),
            hide_credentials: config.hide_credentials,
        })
    }

    fn on_request(&self, request: &mut Request, cx: &Context) -> RequestFlow {
        let (key, from_query) = match request.header(&self.header) {
            Some(key) => (Some(key.to_owned()), false),
            None => (
                self.query.as_deref().and_then(|q| request.query_param(q)),
                true,
            ),
        };
        let Some(key) = key else {
            return RequestFlow::Respond(unauthorized("missing API key"));
        };
        let Some(consumer) = self.consumers.get(&hash(&key)) else {
            cx.debug("unknown API key");
            return RequestFlow::Respond(unauthorized("invalid API key"));
        };
        if self.hide_credentials {
            match (from_query, &self.query) {
                (true, Some(q)) => {
                    request.remove_query_param(q);
                }
                _ => {
                    request.remove_header(&self.header);
                }
            }
        }
        request.set_header(&self.consumer_header, consumer.as_str());
        cx.scratch_set("consumer", consumer);
        RequestFlow::Continue
    }
}

fn unauthorized(message: &str) -> Response {
    Response::json(401, &json!({ "error": message }))
        .with_header("www-authenticate", "ApiKey realm=\"wasmgate\"")
}

export_plugin!(KeyAuth);
