//! Tokens are signed here with the test keys in `testdata/` (never used
//! outside tests).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::Signer;
use rsa::pkcs8::DecodePrivateKey;
use sha2::Sha256;
use wasmgate_sdk::json::Value;
use wasmgate_sdk::prelude::*;
use wasmgate_sdk::testing::Harness;

use crate::JwtAuth;

const SECRET: &str = "0123456789abcdef-test-secret";
const RSA_KEY: &str = include_str!("testdata/rsa.key");
const RSA_PUB: &str = include_str!("testdata/rsa.pub");
const EC_KEY: &str = include_str!("testdata/ec.key");
const EC_PUB: &str = include_str!("testdata/ec.pub");
/// The fake host's wall clock.
const NOW: u64 = 1_700_000_000;

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn token(alg: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = json!({ "alg": alg, "typ": "JWT" });
    if let Some(kid) = kid {
        header["kid"] = json!(kid);
    }
    let message = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signature = match alg {
        "HS256" => {
            let mut mac =
                Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap_or_else(|e| panic!("{e}"));
            mac.update(message.as_bytes());
            mac.finalize().into_bytes().to_vec()
        }
        "RS256" => {
            let key = rsa::RsaPrivateKey::from_pkcs8_pem(RSA_KEY).unwrap_or_else(|e| panic!("{e}"));
            let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(key);
            let sig: rsa::pkcs1v15::Signature = signer.sign(message.as_bytes());
            Box::<[u8]>::from(sig).to_vec()
        }
        "ES256" => {
            let key =
                p256::ecdsa::SigningKey::from_pkcs8_pem(EC_KEY).unwrap_or_else(|e| panic!("{e}"));
            let sig: p256::ecdsa::Signature = key.sign(message.as_bytes());
            sig.to_bytes().to_vec()
        }
        other => panic!("{other}"),
    };
    format!("{message}.{}", b64(&signature))
}

fn config(extra: Value) -> String {
    let mut c = json!({
        "keys": [
            { "alg": "HS256", "secret": SECRET },
            { "alg": "RS256", "pem": RSA_PUB },
            { "alg": "ES256", "pem": EC_PUB, "kid": "ec-1" },
        ],
    });
    if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
        c.extend(extra.clone());
    }
    c.to_string()
}

fn run(h: &Harness<JwtAuth>, mut req: Request) -> Result<Request, Response> {
    h.host().next_request();
    match h.on_request(&mut req) {
        RequestFlow::Continue => Ok(req),
        RequestFlow::Respond(r) => Err(r),
    }
}

fn bearer(token: &str) -> Request {
    Request::new("GET", "/").with_header("authorization", &format!("Bearer {token}"))
}

fn harness(extra: Value) -> Harness<JwtAuth> {
    Harness::new(&config(extra)).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn each_algorithm_passes_the_consumer_upstream() {
    let h = harness(json!({}));
    for alg in ["HS256", "RS256", "ES256"] {
        let t = token(
            alg,
            None,
            &json!({ "sub": format!("user-{alg}"), "exp": NOW + 60, "iss": "app-a" }),
        );
        let req = run(&h, bearer(&t)).unwrap_or_else(|r| panic!("{alg}: {:?}", r.body_text()));
        assert_eq!(
            req.header("x-consumer-id"),
            Some(format!("user-{alg}").as_str())
        );
        let scratch = h.host().scratch();
        assert_eq!(scratch.get("consumer"), Some(&format!("user-{alg}")));
        assert_eq!(scratch.get("jwt.iss").map(String::as_str), Some("app-a"));
    }
}

#[test]
fn bad_tokens_get_401_with_a_challenge() {
    let h = harness(json!({ "issuers": ["app-a"], "audiences": ["api"], "leeway": 10 }));
    let claims = |c: Value| {
        let mut base = json!({ "sub": "u", "exp": NOW + 60, "iss": "app-a", "aud": ["x", "api"] });
        if let (Some(b), Some(c)) = (base.as_object_mut(), c.as_object()) {
            b.extend(c.clone());
        }
        base
    };
    assert!(run(&h, bearer(&token("HS256", None, &claims(json!({}))))).is_ok());
    assert!(
        run(
            &h,
            bearer(&token("HS256", None, &claims(json!({ "exp": NOW - 5 }))))
        )
        .is_ok(),
        "within leeway"
    );
    for (why, t) in [
        (
            "token expired",
            token("HS256", None, &claims(json!({ "exp": NOW - 11 }))),
        ),
        (
            "token not yet valid",
            token("HS256", None, &claims(json!({ "nbf": NOW + 11 }))),
        ),
        (
            "issuer not accepted",
            token("HS256", None, &claims(json!({ "iss": "other" }))),
        ),
        (
            "audience not accepted",
            token("HS256", None, &claims(json!({ "aud": "web" }))),
        ),
        (
            "invalid signature",
            token("ES256", Some("other-kid"), &claims(json!({}))),
        ),
        ("malformed token", "a.b".to_owned()),
    ] {
        let r = run(&h, bearer(&t))
            .err()
            .unwrap_or_else(|| panic!("{why}: let through"));
        assert_eq!(r.status(), 401, "{why}");
        let challenge = r.header("www-authenticate").unwrap_or_default();
        assert!(challenge.contains(why), "{why}: {challenge}");
    }
    let r = run(&h, Request::new("GET", "/"))
        .err()
        .unwrap_or_else(|| panic!("let through"));
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"wasmgate\"")
    );
}

#[test]
fn a_tampered_token_or_alg_none_is_refused() {
    let h = harness(json!({}));
    let t = token("HS256", None, &json!({ "sub": "u", "exp": NOW + 60 }));
    let mut parts: Vec<&str> = t.split('.').collect();
    let forged = b64(json!({ "sub": "admin", "exp": NOW + 60 })
        .to_string()
        .as_bytes());
    parts[1] = &forged;
    assert!(run(&h, bearer(&parts.join("."))).is_err());
    let none = format!("{}.{}.", b64(br#"{"alg":"none"}"#), forged);
    assert!(run(&h, bearer(&none)).is_err());
}

#[test]
fn a_cached_token_is_still_checked_for_expiry_and_the_cache_is_bounded() {
    let h = harness(json!({ "cache_size": 2 }));
    let t = token("HS256", None, &json!({ "sub": "u", "exp": NOW + 60 }));
    assert!(run(&h, bearer(&t)).is_ok());
    assert!(run(&h, bearer(&t)).is_ok(), "served from the cache");
    // A forged token that shares nothing but its prefix is verified itself.
    let last = if t.ends_with('A') { 'B' } else { 'A' };
    let forged = format!("{}{last}", &t[..t.len() - 1]);
    assert!(run(&h, bearer(&forged)).is_err());
    for sub in ["a", "b", "c"] {
        let other = token("HS256", None, &json!({ "sub": sub, "exp": NOW + 60 }));
        assert!(run(&h, bearer(&other)).is_ok());
    }
    assert!(h.plugin().verified.borrow().len() <= 2);
    h.host().advance(std::time::Duration::from_secs(120));
    let late = run(&h, bearer(&t)).err().map(|r| r.body_text().unwrap_or_default().to_owned());
    assert_eq!(late.as_deref(), Some(r#"{"error":"token expired"}"#));
}

#[test]
fn query_cookie_custom_claim_and_hiding() {
    let h = harness(
        json!({ "query": "jwt", "cookie": "session", "consumer_claim": "client_id", "hide_credentials": true }),
    );
    let t = token("HS256", None, &json!({ "client_id": 42, "exp": NOW + 60 }));
    let req = run(&h, Request::new("GET", &format!("/?jwt={t}")))
        .unwrap_or_else(|r| panic!("{:?}", r.body_text()));
    assert_eq!(req.header("x-consumer-id"), Some("42"));
    let req = run(
        &h,
        Request::new("GET", "/").with_header("cookie", &format!("a=1; session={t}")),
    )
    .unwrap_or_else(|r| panic!("{:?}", r.body_text()));
    assert_eq!(req.header("x-consumer-id"), Some("42"));
    let req = run(&h, bearer(&t)).unwrap_or_else(|r| panic!("{:?}", r.body_text()));
    assert_eq!(req.header("authorization"), None);
}

#[test]
fn keys_from_an_inline_jwks() {
    let n_e = {
        use rsa::pkcs8::DecodePublicKey;
        use rsa::traits::PublicKeyParts;
        let key = rsa::RsaPublicKey::from_public_key_pem(RSA_PUB).unwrap_or_else(|e| panic!("{e}"));
        (b64(&key.n().to_bytes_be()), b64(&key.e().to_bytes_be()))
    };
    let point = {
        use p256::pkcs8::DecodePublicKey;
        let key = p256::ecdsa::VerifyingKey::from_public_key_pem(EC_PUB)
            .unwrap_or_else(|e| panic!("{e}"));
        key.to_encoded_point(false)
    };
    let jwks = json!({ "keys": [
        { "kty": "RSA", "kid": "r1", "use": "sig", "n": n_e.0, "e": n_e.1 },
        { "kty": "EC", "kid": "e1", "crv": "P-256",
          "x": b64(point.x().map(|x| x.to_vec()).unwrap_or_default().as_slice()),
          "y": b64(point.y().map(|y| y.to_vec()).unwrap_or_default().as_slice()) },
        { "kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB" },
    ]});
    let h: Harness<JwtAuth> = Harness::new(&json!({ "jwks": jwks.to_string() }).to_string())
        .unwrap_or_else(|e| panic!("{e}"));
    for (alg, kid) in [("RS256", "r1"), ("ES256", "e1")] {
        let t = token(alg, Some(kid), &json!({ "sub": "j", "exp": NOW + 60 }));
        assert!(run(&h, bearer(&t)).is_ok(), "{alg}");
    }
    assert!(run(
        &h,
        bearer(&token(
            "HS256",
            None,
            &json!({ "sub": "j", "exp": NOW + 60 })
        ))
    )
    .is_err());
}

#[test]
fn bad_configs_name_the_key() {
    for (config, key) in [
        (
            json!({ "keys": [{ "alg": "HS512", "secret": SECRET }] }),
            "keys[0]",
        ),
        (
            json!({ "keys": [{ "alg": "HS256", "secret": "short" }] }),
            "keys[0]",
        ),
        (
            json!({ "keys": [{ "alg": "RS256", "pem": "nope" }] }),
            "keys[0]",
        ),
        (
            json!({ "keys": [{ "alg": "HS256", "secret": SECRET }], "issuer": "x" }),
            "issuer",
        ),
        (json!({ "jwks": "{}" }), "jwks"),
        (
            json!({ "keys": [{ "alg": "HS256", "secret": SECRET }], "consumer_header": "" }),
            "consumer_header",
        ),
        (
            json!({ "keys": [{ "alg": "HS256", "secret": SECRET }], "header": "bad header" }),
            "header",
        ),
        (json!({}), "keys"),
    ] {
        let err = Harness::<JwtAuth>::new(&config.to_string())
            .err()
            .unwrap_or_default();
        assert!(err.contains(key), "{config}: {err}");
    }
}


#[test]
fn texts_are_the_same_only_when_every_byte_is() {
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.sig-0123456789";
    assert!(crate::same_text(token, &String::from(token)));
    for at in [0, 15, 16, 31, 40, token.len() - 1] {
        let mut other = token.as_bytes().to_vec();
        other[at] ^= 1;
        let other = String::from_utf8(other).unwrap_or_default();
        assert!(!crate::same_text(token, &other), "differs at {at}");
    }
    assert!(!crate::same_text(token, &token[..token.len() - 1]));
    assert!(crate::same_text("", ""));
}
