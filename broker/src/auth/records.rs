//! The durable auth records, stored as JSON in the `meta` column family beside the topics:
//! `user/<tenant>/<user>` and `token/<id>` (docs/adr/0004-security.md §3).

use serde::{Deserialize, Serialize};

pub const USER_PREFIX: &[u8] = b"user/";
pub const TOKEN_PREFIX: &[u8] = b"token/";

pub fn user_key(tenant: &str, user: &str) -> Vec<u8> {
    format!("user/{tenant}/{user}").into_bytes()
}

pub fn token_key(id: &str) -> Vec<u8> {
    format!("token/{id}").into_bytes()
}

/// A user of a tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    pub tenant: String,
    pub name: String,
    /// The argon2id PHC string of the password; `None`: the user logs in with tokens only.
    pub password_phc: Option<String>,
    pub disabled: bool,
    pub created_at_ms: u64,
}

/// Whether a token was created by an admin or handed out by a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    Api,
    Session,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Api => "api",
            TokenKind::Session => "session",
        }
    }
}

/// A token: its owner and the hash of its secret (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub tenant: String,
    pub user: String,
    pub kind: TokenKind,
    /// Hex SHA-256 of the secret.
    pub secret_sha256: String,
    /// A subset of the user's roles (from slice 3 of the security work); `None`: all of them.
    pub roles: Option<Vec<String>>,
    /// Ms since the epoch; `None`: never expires.
    pub expires_at_ms: Option<u64>,
    pub description: String,
    pub created_at_ms: u64,
}

impl TokenRecord {
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_some_and(|at| at <= now_ms)
    }
}
