//! Passwords: argon2id with the crate's defaults (m = 19 MiB, t = 2, p = 1, OWASP), stored as
//! PHC strings so the parameters can be raised later. Both functions are CPU-heavy (tens of
//! ms): call them on the blocking pool.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use super::token::fill_random;
use crate::error::{Error, Result};

/// Hashes a password with a fresh random salt.
pub fn hash(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    fill_random(&mut salt)?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|err| Error::internal(format!("password salt: {err}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| Error::internal(format!("password hashing failed: {err}")))
}

/// Whether `password` matches the PHC string `phc`; with `None` (an unknown user, or a user
/// without a password) it checks against a dummy hash, so the answer takes the same time.
pub fn verify(password: &str, phc: Option<&str>) -> bool {
    let (phc, real) = match phc {
        Some(phc) => (phc, true),
        None => (DUMMY.as_str(), false),
    };
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && real
}

/// A hash of a random password nobody knows, computed once.
static DUMMY: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    let _ = fill_random(&mut secret);
    hash(&format!("{secret:?}")).unwrap_or_default()
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&phc)));
        assert!(!verify("wrong horse", Some(&phc)));
        assert!(!verify("correct horse", None));
        assert!(!verify("correct horse", Some("not a phc string")));
    }
}
