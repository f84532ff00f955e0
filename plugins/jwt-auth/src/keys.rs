//! Verification keys from config: HS256 secrets, RS256/ES256 public keys
//! in PEM, and JWKS JSON.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Verifier as _;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::DecodePublicKey;
use rsa::{BigUint, RsaPublicKey};
use serde::Deserialize;
use sha2::Sha256;
use wasmgate_sdk::json;

/// One key from `keys`: `{ alg = "HS256", secret = "..." }`,
/// `{ alg = "RS256", pem = "-----BEGIN PUBLIC KEY-----..." }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    alg: String,
    kid: Option<String>,
    /// HS256: the shared secret as text...
    secret: Option<String>,
    /// ...or in standard base64.
    secret_base64: Option<String>,
    /// RS256/ES256: the public key in PEM (SPKI, or PKCS#1 for RSA).
    pem: Option<String>,
}

/// A JWK as found in a JWKS `keys` array (only the fields we use).
#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    k: Option<String>,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

pub enum Verifier {
    Hs256(Hmac<Sha256>),
    Rs256(Box<rsa::pkcs1v15::VerifyingKey<Sha256>>),
    Es256(Box<p256::ecdsa::VerifyingKey>),
}

pub struct Key {
    pub kid: Option<String>,
    pub verifier: Verifier,
}

impl Key {
    pub fn alg(&self) -> &'static str {
        match self.verifier {
            Verifier::Hs256(_) => "HS256",
            Verifier::Rs256(_) => "RS256",
            Verifier::Es256(_) => "ES256",
        }
    }

    /// Whether `signature` signs `message` under this key.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match &self.verifier {
            Verifier::Hs256(mac) => {
                let mut mac = mac.clone();
                mac.update(message);
                mac.verify_slice(signature).is_ok()
            }
            Verifier::Rs256(key) => rsa::pkcs1v15::Signature::try_from(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
            Verifier::Es256(key) => p256::ecdsa::Signature::from_slice(signature)
                .is_ok_and(|sig| key.verify(message, &sig).is_ok()),
        }
    }
}

fn hs256(secret: &[u8]) -> Result<Verifier, String> {
    if secret.len() < 16 {
        return Err("an HS256 secret needs at least 16 bytes".into());
    }
    Hmac::<Sha256>::new_from_slice(secret)
        .map(Verifier::Hs256)
        .map_err(|e| e.to_string())
}

fn rsa(key: RsaPublicKey) -> Verifier {
    Verifier::Rs256(Box::new(rsa::pkcs1v15::VerifyingKey::<Sha256>::new(key)))
}

impl KeyConfig {
    pub fn build(&self) -> Result<Key, String> {
        let verifier = match (
            self.alg.as_str(),
            &self.secret,
            &self.secret_base64,
            &self.pem,
        ) {
            ("HS256", Some(s), None, None) => hs256(s.as_bytes())?,
            ("HS256", None, Some(b), None) => hs256(
                &STANDARD
                    .decode(b.trim())
                    .map_err(|e| format!("secret_base64: {e}"))?,
            )?,
            ("HS256", ..) => {
                return Err("HS256 takes exactly one of `secret` or `secret_base64`".into())
            }
            ("RS256", None, None, Some(pem)) => {
                let key = RsaPublicKey::from_public_key_pem(pem.trim())
                    .or_else(|_| RsaPublicKey::from_pkcs1_pem(pem.trim()))
                    .map_err(|e| format!("pem: not an RSA public key: {e}"))?;
                rsa(key)
            }
            ("ES256", None, None, Some(pem)) => Verifier::Es256(Box::new(
                p256::ecdsa::VerifyingKey::from_public_key_pem(pem.trim())
                    .map_err(|e| format!("pem: not a P-256 public key: {e}"))?,
            )),
            ("RS256" | "ES256", ..) => {
                return Err(format!("{} takes `pem` (and no secret)", self.alg))
            }
            (other, ..) => {
                return Err(format!(
                    "alg `{other}` is not supported (HS256, RS256, ES256)"
                ))
            }
        };
        Ok(Key {
            kid: self.kid.clone(),
            verifier,
        })
    }
}

fn b64url(field: &str, value: &Option<String>) -> Result<Vec<u8>, String> {
    let text = value
        .as_deref()
        .ok_or_else(|| format!("missing `{field}`"))?;
    URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|e| format!("`{field}`: {e}"))
}

impl Jwk {
    /// `None` for keys we skip (encryption keys, other curves).
    fn build(&self) -> Result<Option<Key>, String> {
        if self.use_.as_deref().is_some_and(|u| u != "sig") {
            return Ok(None);
        }
        let verifier = match (self.kty.as_str(), self.alg.as_deref()) {
            ("RSA", None | Some("RS256")) => {
                let n = BigUint::from_bytes_be(&b64url("n", &self.n)?);
                let e = BigUint::from_bytes_be(&b64url("e", &self.e)?);
                rsa(RsaPublicKey::new(n, e).map_err(|e| e.to_string())?)
            }
            ("EC", None | Some("ES256")) if self.crv.as_deref() == Some("P-256") => {
                let (x, y) = (b64url("x", &self.x)?, b64url("y", &self.y)?);
                if x.len() != 32 || y.len() != 32 {
                    return Err("`x` and `y` must be 32 bytes".into());
                }
                let point = p256::EncodedPoint::from_affine_coordinates(
                    p256::FieldBytes::from_slice(&x),
                    p256::FieldBytes::from_slice(&y),
                    false,
                );
                Verifier::Es256(Box::new(
                    p256::ecdsa::VerifyingKey::from_encoded_point(&point)
                        .map_err(|e| e.to_string())?,
                ))
            }
            ("oct", None | Some("HS256")) => hs256(&b64url("k", &self.k)?)?,
            _ => return Ok(None),
        };
        Ok(Some(Key {
            kid: self.kid.clone(),
            verifier,
        }))
    }
}

/// The signing keys of a JWKS document.
pub fn from_jwks(text: &str) -> Result<Vec<Key>, String> {
    let jwks: Jwks = json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = Vec::new();
    for (i, jwk) in jwks.keys.iter().enumerate() {
        if let Some(key) = jwk.build().map_err(|e| format!("keys[{i}]: {e}"))? {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err("no usable signing key (RS256, ES256 on P-256, HS256)".into());
    }
    Ok(keys)
}
