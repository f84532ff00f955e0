//! Compact JWS parsing and claim checks.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use wasmgate_sdk::json::{Map, Value};

use crate::keys::Key;

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

/// Why a token was refused (the `error_description` of the 401).
pub type Refusal = &'static str;

/// The verified claims of `token`, if one of `keys` signed it.
pub fn verify(token: &str, keys: &[Key]) -> Result<Map<String, Value>, Refusal> {
    let mut parts = token.split('.');
    let (Some(head), Some(body), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed token");
    };
    let header: Header = decode_json(head).ok_or("malformed token header")?;
    let signature = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| "malformed signature")?;
    // The key decides the algorithm: a token cannot pick `none` or switch
    // an RSA key to HMAC.
    let message = &token.as_bytes()[..head.len() + 1 + body.len()];
    let verified = keys
        .iter()
        .filter(|k| k.alg() == header.alg)
        .filter(|k| header.kid.is_none() || k.kid.is_none() || k.kid == header.kid)
        .any(|k| k.verify(message, &signature));
    if !verified {
        return Err("invalid signature");
    }
    decode_json(body).ok_or("malformed token claims")
}

fn decode_json<T: serde::de::DeserializeOwned>(part: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    wasmgate_sdk::json::from_slice(&bytes).ok()
}

/// What the claims must satisfy.
pub struct Rules {
    pub leeway: u64,
    pub require_exp: bool,
    pub issuers: Vec<String>,
    pub audiences: Vec<String>,
}

fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .filter(|n| *n >= 0.0)
            .map(|n| Some(n as u64))
            .ok_or("malformed time claim"),
    }
}

/// What a request needs of a verified token, worked out once per token
/// (tokens are cached): its time claims, and the outcome of every check
/// that does not depend on the time.
pub struct Verified {
    exp: Result<Option<u64>, Refusal>,
    nbf: Result<Option<u64>, Refusal>,
    /// Issuer, audience and consumer checks.
    standing: Result<(), Refusal>,
    /// The consumer id (the configured claim), when `standing` is `Ok`.
    pub consumer: Box<str>,
    pub iss: Option<Box<str>>,
}

impl Rules {
    /// Checks `claims` once: everything but the time.
    pub fn digest(&self, claims: &Map<String, Value>, consumer_claim: &str) -> Verified {
        let consumer = match claims.get(consumer_claim) {
            Some(Value::String(s)) => Ok(s.as_str().into()),
            Some(Value::Number(n)) => Ok(n.to_string().into()),
            _ => Err("token names no consumer"),
        };
        let consumer = consumer.and_then(|c: Box<str>| match c.bytes().any(|b| b < b' ' || b == 0x7f) {
            true => Err("consumer claim holds control characters"),
            false => Ok(c),
        });
        let standing = self.claims_accepted(claims);
        let (standing, consumer) = match (standing, consumer) {
            (Ok(()), Ok(consumer)) => (Ok(()), consumer),
            (Err(why), _) | (Ok(()), Err(why)) => (Err(why), Box::from("")),
        };
        Verified {
            exp: number(claims, "exp"),
            nbf: number(claims, "nbf"),
            standing,
            consumer,
            iss: claims.get("iss").and_then(Value::as_str).map(Box::from),
        }
    }

    /// Whether a token checked by `digest` is good at `now` (seconds since
    /// the epoch).
    pub fn check(&self, token: &Verified, now: u64) -> Result<(), Refusal> {
        match token.exp? {
            Some(exp) if now > exp.saturating_add(self.leeway) => return Err("token expired"),
            None if self.require_exp => return Err("token has no exp"),
            _ => {}
        }
        if token.nbf?.is_some_and(|nbf| now.saturating_add(self.leeway) < nbf) {
            return Err("token not yet valid");
        }
        token.standing
    }

    fn claims_accepted(&self, claims: &Map<String, Value>) -> Result<(), Refusal> {
        if !self.issuers.is_empty() {
            let iss = claims.get("iss").and_then(Value::as_str);
            if !iss.is_some_and(|iss| self.issuers.iter().any(|i| i == iss)) {
                return Err("issuer not accepted");
            }
        }
        if !self.audiences.is_empty() {
            let ok = match claims.get("aud") {
                Some(Value::String(a)) => self.audiences.contains(a),
                Some(Value::Array(list)) => list
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|a| self.audiences.iter().any(|x| x == a)),
                _ => false,
            };
            if !ok {
                return Err("audience not accepted");
            }
        }
        Ok(())
    }
}
