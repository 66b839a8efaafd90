//! The caller, users and API tokens of a broker with authentication on (docs/security.md): the
//! records and the `NativeAdmin` calls that return them. The Java facade wraps `CreatedToken` so
//! its secret never reaches a `toString()`.

use std::time::Duration;

use rapidmq_core as core;

use crate::admin::NativeAdmin;
use crate::error::Result;
use crate::runtime::on_runtime;

/// The caller as the broker sees it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Identity {
    /// The caller's tenant.
    pub tenant: String,
    /// The user; empty when anonymous (a broker without authentication).
    pub user: String,
}

/// A user of the caller's tenant.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UserInfo {
    /// The user's tenant.
    pub tenant: String,
    /// The user name.
    pub name: String,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    /// When the user was created, ms since the Unix epoch.
    pub created_at_ms: u64,
}

impl From<core::UserInfo> for UserInfo {
    fn from(u: core::UserInfo) -> UserInfo {
        UserInfo {
            tenant: u.tenant,
            name: u.name,
            has_password: u.has_password,
            created_at_ms: u.created_at_ms,
        }
    }
}

/// A token without its secret.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TokenInfo {
    /// The public id (the part after `rmq_`).
    pub id: String,
    /// The owner's tenant.
    pub tenant: String,
    /// The user the token acts as.
    pub user: String,
    /// `api` (created by an admin) or `session` (from a login).
    pub kind: String,
    /// What it is for.
    pub description: String,
    /// When it was created, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// When it expires, ms since the Unix epoch; `None` if it does not.
    pub expires_at_ms: Option<u64>,
}

impl From<core::TokenInfo> for TokenInfo {
    fn from(t: core::TokenInfo) -> TokenInfo {
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

/// A new API token: the full token (`rmq_<id>_<secret>`), shown only here, and its
/// description.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct CreatedToken {
    /// The token in full.
    pub token: String,
    /// The token without its secret.
    pub info: TokenInfo,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("token", &"***")
            .field("info", &self.info)
            .finish()
    }
}

#[uniffi::export]
impl NativeAdmin {
    /// The caller as the broker sees it.
    pub async fn whoami(&self) -> Result<Identity> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let (tenant, user) = admin.whoami().await?;
            Ok(Identity { tenant, user })
        })
        .await
    }

    /// Creates a user, with a password or (`None`) for API tokens only.
    pub async fn create_user(&self, name: String, password: Option<String>) -> Result<UserInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.create_user(name, password).await.map(Into::into)
        })
        .await
    }

    /// Deletes a user and revokes its tokens.
    pub async fn delete_user(&self, name: String) -> Result<()> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move { admin.delete_user(name).await }).await
    }

    /// The users of the caller's tenant, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let users = admin.list_users().await?;
            Ok(users.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// Sets a user's password.
    pub async fn set_password(&self, name: String, password: String) -> Result<()> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.set_password(name, password).await
        })
        .await
    }

    /// Creates an API token for `user` (the caller when `None`), expiring after `ttl` if set.
    pub async fn create_token(
        &self,
        user: Option<String>,
        description: String,
        ttl: Option<Duration>,
    ) -> Result<CreatedToken> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let created = admin.create_token(user, description, ttl).await?;
            Ok(CreatedToken {
                token: created.token,
                info: created.info.into(),
            })
        })
        .await
    }

    /// The tokens of the caller's tenant (of one user when set), without secrets.
    pub async fn list_tokens(&self, user: Option<String>) -> Result<Vec<TokenInfo>> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let tokens = admin.list_tokens(user).await?;
            Ok(tokens.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// Revokes tokens (API or session) by id, at once.
    pub async fn revoke_tokens(&self, ids: Vec<String>) -> Result<()> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move { admin.revoke_tokens(ids).await }).await
    }
}
