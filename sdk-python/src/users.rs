//! The users and API tokens of a broker with authentication on, as Python classes: who the
//! caller is, users, tokens without their secret, and a new token (whose secret is never in its
//! repr).

use pyo3::prelude::*;
use rapidmq_core as core;

/// The caller as the broker sees it.
#[pyclass(module = "rapidmq", name = "Identity", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    /// The caller's tenant.
    tenant: String,
    /// The user; empty when anonymous (a broker without authentication).
    user: String,
}

impl From<(String, String)> for Identity {
    fn from((tenant, user): (String, String)) -> Self {
        Identity { tenant, user }
    }
}

#[pymethods]
impl Identity {
    fn __repr__(&self) -> String {
        format!("Identity(tenant='{}', user='{}')", self.tenant, self.user)
    }
}

/// A user of the caller's tenant.
#[pyclass(module = "rapidmq", name = "UserInfo", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct UserInfo {
    /// The user's tenant.
    tenant: String,
    /// The user name.
    name: String,
    /// Whether the user can log in with a password.
    has_password: bool,
    /// When the user was created, ms since the epoch.
    created_at_ms: u64,
}

impl From<core::UserInfo> for UserInfo {
    fn from(u: core::UserInfo) -> Self {
        UserInfo {
            tenant: u.tenant,
            name: u.name,
            has_password: u.has_password,
            created_at_ms: u.created_at_ms,
        }
    }
}

#[pymethods]
impl UserInfo {
    fn __repr__(&self) -> String {
        format!(
            "UserInfo(tenant='{}', name='{}', has_password={})",
            self.tenant,
            self.name,
            if self.has_password { "True" } else { "False" }
        )
    }
}

/// A token without its secret.
#[pyclass(module = "rapidmq", name = "TokenInfo", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct TokenInfo {
    /// The public id (the part after `rmq_`).
    id: String,
    /// The owner's tenant.
    tenant: String,
    /// The user the token acts as.
    user: String,
    /// `"api"` (created by an admin) or `"session"` (from a login).
    kind: String,
    /// What it is for.
    description: String,
    /// When it was created, ms since the epoch.
    created_at_ms: u64,
    /// When it expires, ms since the epoch; `None` if it does not.
    expires_at_ms: Option<u64>,
}

impl From<core::TokenInfo> for TokenInfo {
    fn from(t: core::TokenInfo) -> Self {
        TokenInfo {
            id: t.id,
            tenant: t.tenant,
            user: t.user,
            kind: t.kind,
            description: t.description,
            created_at_ms: t.created_at_ms,
            expires_at_ms: t.expires_at_ms,
        }
    }
}

#[pymethods]
impl TokenInfo {
    fn __repr__(&self) -> String {
        format!(
            "TokenInfo(id='{}', user='{}', kind='{}', description='{}')",
            self.id, self.user, self.kind, self.description
        )
    }
}

/// A new API token: the full token, shown only here, and its description. The repr hides the
/// token.
#[pyclass(module = "rapidmq", name = "CreatedToken", frozen, get_all)]
#[derive(Clone)]
pub(crate) struct CreatedToken {
    /// The token in full, `rmq_<id>_<secret>`.
    token: String,
    /// The token without its secret.
    info: TokenInfo,
}

impl From<core::CreatedToken> for CreatedToken {
    fn from(t: core::CreatedToken) -> Self {
        CreatedToken {
            token: t.token,
            info: t.info.into(),
        }
    }
}

#[pymethods]
impl CreatedToken {
    fn __repr__(&self) -> String {
        format!("CreatedToken(token='***', info={})", self.info.__repr__())
    }
}
