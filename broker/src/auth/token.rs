//! API and session tokens: `rmq_<id>_<secret>` (docs/adr/0004-security.md §5).
//!
//! The id (12 base32 characters) is public and is the lookup key; the secret is 32 bytes from
//! the OS RNG, base64url without padding. Only `SHA-256(secret)` is stored: a 256-bit random
//! secret cannot be guessed offline, so a slow KDF would add cost (per request) and no safety.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Every token starts with this, so secret scanners can find leaked ones.
pub const PREFIX: &str = "rmq_";
/// Characters of a token id.
pub const ID_LEN: usize = 12;
const SECRET_BYTES: usize = 32;

/// A token in full, as handed to its owner once.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    id: String,
    secret: String,
}

impl Token {
    /// A fresh token from the OS RNG.
    pub fn generate() -> Result<Token> {
        let mut id = [0u8; 8];
        let mut secret = [0u8; SECRET_BYTES];
        fill_random(&mut id)?;
        fill_random(&mut secret)?;
        let mut id = data_encoding::BASE32_NOPAD.encode(&id).to_ascii_lowercase();
        id.truncate(ID_LEN);
        Ok(Token {
            id,
            secret: URL_SAFE_NO_PAD.encode(secret),
        })
    }

    /// The public id: the lookup key, shown in listings.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// What is stored: the hex SHA-256 of the secret.
    pub fn secret_sha256(&self) -> String {
        sha256_hex(self.secret.as_bytes())
    }

    /// Whether this token's secret hashes to `stored` (hex SHA-256), in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        self.secret_sha256()
            .as_bytes()
            .ct_eq(stored.as_bytes())
            .into()
    }
}

/// `rmq_<id>_<secret>`. Never logged: `Debug` shows the id only.
impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}_{}", self.id, self.secret)
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({PREFIX}{}_…)", self.id)
    }
}

impl FromStr for Token {
    type Err = Error;

    /// Parses `rmq_<id>_<secret>`; the secret is base64url and may itself contain `_`.
    fn from_str(s: &str) -> Result<Token> {
        let malformed = Error::bad_credentials;
        let rest = s.strip_prefix(PREFIX).ok_or_else(malformed)?;
        let (id, secret) = (rest.get(..ID_LEN), rest.get(ID_LEN..));
        let (Some(id), Some(secret)) = (id, secret) else {
            return Err(malformed());
        };
        let secret = secret.strip_prefix('_').ok_or_else(malformed)?;
        let id_ok = id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || (b'2'..=b'7').contains(&b));
        let secret_ok = URL_SAFE_NO_PAD
            .decode(secret)
            .is_ok_and(|bytes| bytes.len() == SECRET_BYTES);
        if !id_ok || !secret_ok {
            return Err(malformed());
        }
        Ok(Token {
            id: id.to_string(),
            secret: secret.to_string(),
        })
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    getrandom::fill(buf).map_err(|err| Error::internal(format!("OS random source failed: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_round_trips_and_matches_only_its_own_hash() {
        let token = Token::generate().unwrap();
        let text = token.to_string();
        assert!(text.starts_with("rmq_"));
        let parsed: Token = text.parse().unwrap();
        assert_eq!(parsed, token);
        assert!(parsed.matches(&token.secret_sha256()));
        let other = Token::generate().unwrap();
        assert_ne!(other.id(), token.id());
        assert!(!other.matches(&token.secret_sha256()));
        assert!(!format!("{token:?}").contains(&token.secret));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = Token::generate().unwrap().to_string();
        for bad in [
            "",
            "rmq_",
            "abc",
            &good[..good.len() - 1],
            &good.replacen("rmq_", "rmx_", 1),
            &format!("{good}A"),
            "rmq_ABCDEFGHIJKL_AAAA",
        ] {
            assert!(bad.parse::<Token>().is_err(), "{bad}");
        }
    }
}
