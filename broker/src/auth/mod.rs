//! Authentication (docs/adr/0004-security.md §3–§5): who a request comes from.
//!
//! Layout:
//! - `records`: the durable [`UserRecord`] and [`TokenRecord`], JSON in the `meta` column
//!   family under `user/<tenant>/<user>` and `token/<id>`.
//! - `command`: [`AuthCommand`], the plain-data change that `Engine::apply_auth` writes in one
//!   fsynced batch and [`Auth::apply`] applies to memory, from the command alone (the same at
//!   recovery and, later, on Raft followers).
//! - `token`: `rmq_<id>_<secret>` tokens, stored as SHA-256 and compared in constant time.
//! - `password`: argon2id hashing, used only by logins and user admin.
//! - `backoff`: failed logins back off per `(peer IP, tenant, user)`.
//! - `layer`: the one tower [`AuthLayer`] on both servers, which turns a request's credentials
//!   into a [`Principal`] in its extensions.
//! - `mtls`: the user a verified client certificate names (`auth.mtls_identity`).
//! - `bootstrap`: the first admin, from an environment variable or a file.
//!
//! [`Auth`] holds the in-memory state: users and tokens by key, and an `epoch` bumped per
//! change so that open streams can re-check their caller. No lock is held across `.await`.

mod backoff;
mod bootstrap;
mod command;
mod layer;
mod mtls;
pub mod password;
mod records;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use rapidmq_proto::ErrorCode;
use tokio::sync::{Semaphore, watch};

use crate::config::AuthConfig;
use crate::error::{Error, Result};
use crate::principal::{Credential, Principal, PrincipalKind, TenantId};
use crate::storage::{Cf, Store};

pub use backoff::{LoginBackoff, LoginKey};
pub use bootstrap::{BOOTSTRAP_ADMIN, BootstrapSecret};
pub use command::AuthCommand;
pub use layer::{AuthLayer, GrpcReject, HttpReject, SESSION_COOKIE};
pub use records::{TOKEN_PREFIX, TokenKind, TokenRecord, USER_PREFIX, UserRecord};
pub use token::Token;

/// What a caller wants to do (docs/adr/0004-security.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Consume,
    Create,
    Delete,
    Alter,
    Describe,
    Admin,
}

/// What a caller wants to do it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Topic(&'a str),
    Subscription { topic: &'a str, name: &'a str },
    Tenant,
    Cluster,
}

/// The one answer to every credential that does not work (unknown, wrong, expired, malformed,
/// revoked), so that none of them tells an attacker more than another.
const BAD_CREDENTIALS: &str = "invalid or expired credentials";

impl Error {
    /// Credentials were presented and do not work.
    pub fn bad_credentials() -> Error {
        Error::new(ErrorCode::Unauthenticated, BAD_CREDENTIALS)
    }

    /// A token whose secret matched but that has expired: the same answer as
    /// [`Error::bad_credentials`], plus `rapidmq-auth-reason: expired`.
    pub fn expired_credentials() -> Error {
        Error::bad_credentials().with_credentials_expired()
    }

    /// No credentials were presented where they are needed.
    pub fn credentials_required() -> Error {
        Error::new(
            ErrorCode::Unauthenticated,
            "this request needs credentials: send `authorization: Bearer rmq_...` (a token from `rapidmq token create`, or a session from a login)",
        )
    }
}

/// Users and tokens in memory, derived from the store at startup and from each applied
/// [`AuthCommand`] afterwards.
pub struct Auth {
    config: AuthConfig,
    users: RwLock<HashMap<(String, String), Arc<UserRecord>>>,
    tokens: RwLock<HashMap<String, Arc<TokenRecord>>>,
    epoch: watch::Sender<u64>,
    password_checks: Arc<Semaphore>,
    login_backoff: LoginBackoff,
}

impl Auth {
    pub fn new(config: &AuthConfig) -> Auth {
        Auth {
            config: config.clone(),
            users: RwLock::new(HashMap::new()),
            tokens: RwLock::new(HashMap::new()),
            epoch: watch::channel(0).0,
            password_checks: Arc::new(Semaphore::new(config.max_concurrent_password_checks)),
            login_backoff: LoginBackoff::default(),
        }
    }

    /// Whether requests need credentials.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Reads every user and token record of `store` into memory (at startup), through the same
    /// [`Auth::apply`] as live changes.
    pub fn recover(&self, store: &dyn Store) -> Result<()> {
        for (_, value) in store.scan(Cf::Meta, USER_PREFIX, &prefix_end(USER_PREFIX), usize::MAX)? {
            let user: UserRecord = serde_json::from_slice(&value)
                .map_err(|err| Error::internal(format!("unreadable user record: {err}")))?;
            self.apply(&AuthCommand::PutUser {
                user,
                tokens: Vec::new(),
            });
        }
        for (_, value) in store.scan(
            Cf::Meta,
            TOKEN_PREFIX,
            &prefix_end(TOKEN_PREFIX),
            usize::MAX,
        )? {
            let token: TokenRecord = serde_json::from_slice(&value)
                .map_err(|err| Error::internal(format!("unreadable token record: {err}")))?;
            self.apply(&AuthCommand::PutToken(token));
        }
        Ok(())
    }

    /// Applies a written command to memory and bumps the epoch. Only `Engine::apply_auth` (and
    /// recovery) calls it.
    pub fn apply(&self, command: &AuthCommand) {
        match command {
            AuthCommand::PutUser { user, tokens } => {
                let key = (user.tenant.clone(), user.name.clone());
                self.users.write().insert(key, Arc::new(user.clone()));
                let mut map = self.tokens.write();
                for token in tokens {
                    map.insert(token.id.clone(), Arc::new(token.clone()));
                }
            }
            AuthCommand::DeleteUser {
                tenant,
                name,
                tokens,
            } => {
                self.users.write().remove(&(tenant.clone(), name.clone()));
                let mut map = self.tokens.write();
                for id in tokens {
                    map.remove(id);
                }
            }
            AuthCommand::PutToken(token) => {
                self.tokens
                    .write()
                    .insert(token.id.clone(), Arc::new(token.clone()));
            }
            AuthCommand::DeleteTokens { ids } => {
                let mut map = self.tokens.write();
                for id in ids {
                    map.remove(id);
                }
            }
        }
        self.epoch.send_modify(|epoch| *epoch += 1);
    }

    /// Changes each time users or tokens change (open streams re-check their caller on it).
    pub fn epoch(&self) -> watch::Receiver<u64> {
        self.epoch.subscribe()
    }

    /// The caller that `bearer` (`rmq_<id>_<secret>`) identifies, or the one
    /// `UNAUTHENTICATED` answer for any token that does not work; only a right secret of an
    /// expired token says so ([`Error::credentials_expired`]).
    pub fn authenticate(&self, bearer: &str) -> Result<Principal> {
        let token: Token = bearer.trim().parse()?;
        let record = self
            .tokens
            .read()
            .get(token.id())
            .cloned()
            .ok_or_else(Error::bad_credentials)?;
        if !token.matches(&record.secret_sha256) {
            return Err(Error::bad_credentials());
        }
        if record.expired(now_ms()) {
            return Err(Error::expired_credentials());
        }
        let user = self.user(&record.tenant, &record.user);
        if user.is_none_or(|user| user.disabled) {
            return Err(Error::bad_credentials());
        }
        let credential = match record.kind {
            TokenKind::Api => Credential::Token(record.id.clone()),
            TokenKind::Session => Credential::Session(record.id.clone()),
        };
        Ok(Principal::user(
            TenantId::new(record.tenant.clone()),
            record.user.clone(),
            credential,
            record.expires_at_ms,
        ))
    }

    /// The user a verified client certificate (DER) names under `auth.mtls_identity`: `None`
    /// when the mode is off or the certificate has no such field, `UNAUTHENTICATED` when the
    /// user does not exist, is disabled, or the certificate has expired.
    pub fn authenticate_certificate(&self, der: &[u8]) -> Result<Option<Principal>> {
        let Some((name, not_after)) = mtls::identity(der, self.config.mtls_identity) else {
            return Ok(None);
        };
        let (tenant, user) = split_user_name(&name);
        if self.user(tenant, user).is_none_or(|u| u.disabled) {
            return Err(Error::bad_credentials());
        }
        let expires_at_ms = u64::try_from(not_after.as_millis()).unwrap_or(u64::MAX);
        if expires_at_ms <= now_ms() {
            return Err(Error::bad_credentials());
        }
        Ok(Some(Principal::user(
            TenantId::new(tenant.to_string()),
            user.to_string(),
            Credential::Certificate,
            Some(expires_at_ms),
        )))
    }

    /// Whether `principal` may do `action` to `resource`. With auth off everything is allowed,
    /// and so is the broker's own work; anonymous callers are refused with `UNAUTHENTICATED`.
    ///
    /// Until roles and ACLs land (slice 3 of the security work) any authenticated user may do
    /// anything in its tenant.
    pub fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        resource: Resource<'_>,
    ) -> Result<()> {
        let _ = (action, resource);
        if !self.enabled() {
            return Ok(());
        }
        match principal.kind() {
            PrincipalKind::System | PrincipalKind::User => Ok(()),
            PrincipalKind::Anonymous => Err(Error::credentials_required()),
        }
    }

    pub fn user(&self, tenant: &str, name: &str) -> Option<Arc<UserRecord>> {
        self.users
            .read()
            .get(&(tenant.to_string(), name.to_string()))
            .cloned()
    }

    /// The users of `tenant`, by name.
    pub fn users(&self, tenant: &str) -> Vec<Arc<UserRecord>> {
        let mut users: Vec<_> = self
            .users
            .read()
            .values()
            .filter(|u| u.tenant == tenant)
            .cloned()
            .collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    pub fn token(&self, id: &str) -> Option<Arc<TokenRecord>> {
        self.tokens.read().get(id).cloned()
    }

    /// The tokens of `tenant` (of one user when `user` is set), oldest first.
    pub fn tokens(&self, tenant: &str, user: Option<&str>) -> Vec<Arc<TokenRecord>> {
        let mut tokens: Vec<_> = self
            .tokens
            .read()
            .values()
            .filter(|t| t.tenant == tenant && user.is_none_or(|u| t.user == u))
            .cloned()
            .collect();
        tokens.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        tokens
    }

    /// Ids of the session tokens that had expired by `before_ms` (for the sweeper).
    pub fn expired_sessions(&self, before_ms: u64) -> Vec<String> {
        self.tokens
            .read()
            .values()
            .filter(|t| t.kind == TokenKind::Session && t.expired(before_ms))
            .map(|t| t.id.clone())
            .collect()
    }

    /// Whether `principal`'s credential still works: its token exists, has not expired, and its
    /// user exists. Always true with auth off and for anonymous and system callers.
    pub fn still_valid(&self, principal: &Principal) -> Result<()> {
        let id = match principal.credential() {
            Some(Credential::Token(id) | Credential::Session(id)) if self.enabled() => id,
            Some(Credential::Certificate) if self.enabled() => {
                let user = self.user(principal.tenant().as_str(), principal.name().unwrap_or(""));
                let expired = principal.expires_at_ms().is_some_and(|at| at <= now_ms());
                if user.is_none_or(|u| u.disabled) || expired {
                    return Err(Error::bad_credentials());
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        let Some(token) = self.token(id) else {
            return Err(Error::bad_credentials());
        };
        if self
            .user(&token.tenant, &token.user)
            .is_none_or(|u| u.disabled)
        {
            return Err(Error::bad_credentials());
        }
        if token.expired(now_ms()) {
            return Err(Error::expired_credentials());
        }
        Ok(())
    }

    /// What an open stream of `principal` watches to end when its credential stops working
    /// (revoked, expired, its user deleted); `None` when nothing can end it (auth off, or not
    /// a user).
    pub fn watch(self: &Arc<Self>, principal: &Principal) -> Option<CredentialWatch> {
        (self.enabled() && principal.credential().is_some()).then(|| CredentialWatch {
            auth: self.clone(),
            principal: principal.clone(),
            epoch: self.epoch(),
        })
    }

    /// One permit per password check running (`auth.max_concurrent_password_checks`).
    pub fn password_checks(&self) -> &Arc<Semaphore> {
        &self.password_checks
    }

    /// Recent failed logins, per `(peer IP, tenant, user)`.
    pub fn login_backoff(&self) -> &LoginBackoff {
        &self.login_backoff
    }
}

/// Ends open streams whose credential stops working (docs/adr/0004-security.md §5): a
/// consumer or publish stream checks it before each step and wakes on [`CredentialWatch::changed`]
/// in the `select!` where it waits, so a revocation or an expiry ends it within one wakeup.
pub struct CredentialWatch {
    auth: Arc<Auth>,
    principal: Principal,
    epoch: watch::Receiver<u64>,
}

impl CredentialWatch {
    /// `UNAUTHENTICATED` once the credential no longer works.
    pub fn check(&self) -> Result<()> {
        self.auth.still_valid(&self.principal)
    }

    /// Resolves when the credential may have stopped working: at its expiry, or when users or
    /// tokens change. Cancel-safe; call [`CredentialWatch::check`] after it.
    pub async fn changed(&mut self) {
        let expiry = match self.principal.expires_at_ms() {
            Some(at) => futures::future::Either::Left(tokio::time::sleep(
                std::time::Duration::from_millis(at.saturating_sub(now_ms())),
            )),
            None => futures::future::Either::Right(std::future::pending()),
        };
        tokio::select! {
            _ = expiry => {}
            changed = self.epoch.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        }
    }
}

/// `alice` (tenant `default`) or `acme/alice`.
pub fn split_user_name(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((tenant, user)) => (tenant, user),
        None => (crate::principal::DEFAULT_TENANT, name),
    }
}

/// The first key past every key starting with `prefix` (which ends in `/`).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
