//! The admin API's bearer token. Only its SHA-256 digest is kept: the token
//! itself is never stored, logged or shown, and a presented token is compared
//! digest to digest in constant time, so the time taken says nothing about it.

use std::fmt;

use sha2::{Digest, Sha256};

/// The fewest characters a token may have: guessing one must be hopeless.
pub const MIN_TOKEN_LEN: usize = 16;

#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken {
    digest: [u8; 32],
}

impl AdminToken {
    /// A token from its text (surrounding whitespace, such as a file's final
    /// newline, removed). Refuses one that is short or not visible ASCII, the
    /// characters a header value can carry unchanged.
    pub fn new(text: &str) -> Result<AdminToken, String> {
        let token = text.trim();
        if token.is_empty() {
            return Err("is empty".into());
        }
        if !token.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("must be visible ASCII characters without spaces".into());
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(format!("must be at least {MIN_TOKEN_LEN} characters (try `openssl rand -hex 32`)"));
        }
        Ok(AdminToken { digest: Sha256::digest(token.as_bytes()).into() })
    }

    /// Whether `presented` is the token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.iter().zip(&self.digest).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}
