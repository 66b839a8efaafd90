//! The durable auth records, stored as JSON in the `meta` column family beside the topics:
//! `user/<tenant>/<user>`, `token/<id>`, `role/<tenant>/<role>` (custom roles) and
//! `binding/<tenant>/<user>/<role>` (docs/adr/0004-security.md §3).

use serde::{Deserialize, Serialize};

use super::roles::Permission;

pub const USER_PREFIX: &[u8] = b"user/";
pub const TOKEN_PREFIX: &[u8] = b"token/";
pub const ROLE_PREFIX: &[u8] = b"role/";
pub const BINDING_PREFIX: &[u8] = b"binding/";

pub fn role_key(tenant: &str, role: &str) -> Vec<u8> {
    format!("role/{tenant}/{role}").into_bytes()
}

pub fn binding_key(tenant: &str, user: &str, role: &str) -> Vec<u8> {
    format!("binding/{tenant}/{user}/{role}").into_bytes()
}

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
    /// A subset of the user's roles; `None`: all of them. Nothing sets it yet.
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

/// A custom role of a tenant (the built-in ones are not stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRecord {
    pub tenant: String,
    pub name: String,
    pub permissions: Vec<Permission>,
    pub created_at_ms: u64,
}

/// Where a bound role applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BindingScope {
    /// In the user's tenant.
    Tenant,
    /// Across the broker: `admin` bound so is a cluster admin.
    Cluster,
}

impl BindingScope {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingScope::Tenant => "tenant",
            BindingScope::Cluster => "cluster",
        }
    }
}

/// A role bound to a user of the same tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRecord {
    pub tenant: String,
    pub user: String,
    pub role: String,
    pub scope: BindingScope,
}
