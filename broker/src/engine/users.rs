//! Users, tokens and logins: the engine side of authentication (`crate::auth`). Every change is
//! an [`AuthCommand`] through [`Engine::apply_auth`]; everything random or clock-dependent is
//! fixed before the command is built, and password hashing runs on the blocking pool outside
//! the metadata lock.
//!
//! Administering users and tokens needs `Admin` on the tenant, and `Admin` on the cluster too
//! when the user administered holds a cluster-scope binding (or a tenant admin could take over
//! a cluster admin's account). A user's own password and tokens need only its credentials.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rapidmq_proto::ErrorCode;

use super::{Engine, MetaCommand};
use crate::audit::Audit;
use crate::auth::roles::ADMIN_ROLE;
use crate::auth::{
    self, Action, Auth, AuthCommand, BOOTSTRAP_ADMIN, BindingRecord, BindingScope, BootstrapSecret,
    LoginKey, Resource, Token, TokenKind, TokenRecord, UserRecord, password,
};
use crate::error::{Error, Result, check_name};
use crate::principal::PrincipalKind;
use crate::principal::{DEFAULT_TENANT, Principal, Source};
use crate::tls::PeerInfo;

/// How often expired session tokens are deleted.
pub const SESSION_SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// How long an expired session is kept before the sweeper deletes it, so that a client using it
/// (say, one that was suspended) is told `rapidmq-auth-reason: expired` and logs in again.
pub const EXPIRED_SESSION_KEPT: Duration = Duration::from_secs(3600);

/// How long cluster mode's bootstrap waits before it proposes user `admin` again.
const BOOTSTRAP_RETRY: Duration = Duration::from_secs(1);

/// A token as handed to its owner: the full secret, shown once, and its record.
pub struct IssuedToken {
    pub token: Token,
    pub record: TokenRecord,
}

impl Engine {
    pub fn auth(&self) -> &Arc<Auth> {
        &self.auth
    }

    /// Writes an auth change in one fsynced batch, then applies it to memory (which bumps the
    /// epoch). The one way users and tokens change. Call with `meta_lock` held.
    pub(super) async fn apply_auth_locked(&self, command: AuthCommand) -> Result<()> {
        self.apply(MetaCommand::Auth(command)).await
    }

    pub async fn apply_auth(&self, command: AuthCommand) -> Result<()> {
        let _guard = self.meta_lock.lock().await;
        self.apply_auth_locked(command).await
    }

    /// With auth on: creates the first admin from `secret` when none exists, bound to `admin`
    /// at cluster scope in the same command, refuses to go on without one, and ignores a
    /// leftover secret with a warning. A data directory from before roles (users, and no
    /// binding at all) gets that binding here, once.
    pub async fn bootstrap_admin(&self, secret: Option<BootstrapSecret>) -> Result<()> {
        if self.auth.user(DEFAULT_TENANT, BOOTSTRAP_ADMIN).is_some() {
            if secret.is_some() {
                tracing::warn!(
                    "a bootstrap admin secret is set but user `admin` already exists: ignoring it; remove it from the environment or config"
                );
            }
            if !self.auth.acl().has_bindings() {
                self.apply_auth(AuthCommand::PutBinding(bootstrap_binding()))
                    .await?;
                tracing::warn!(
                    user = BOOTSTRAP_ADMIN,
                    tenant = DEFAULT_TENANT,
                    "upgraded a data directory from before roles: user `admin` is bound to role `admin` at cluster scope; every other user has no role until one is bound (Admin.BindRole, POST /v1/role-bindings)"
                );
            }
            return Ok(());
        }
        let now = self.auth.now_ms();
        let mut user = UserRecord {
            tenant: DEFAULT_TENANT.to_string(),
            name: BOOTSTRAP_ADMIN.to_string(),
            password_phc: None,
            disabled: false,
            created_at_ms: now,
        };
        let mut tokens = Vec::new();
        match secret.ok_or_else(BootstrapSecret::missing)? {
            BootstrapSecret::Token(token) => tokens.push(TokenRecord {
                id: token.id().to_string(),
                tenant: user.tenant.clone(),
                user: user.name.clone(),
                kind: TokenKind::Api,
                secret_sha256: token.secret_sha256(),
                roles: None,
                expires_at_ms: None,
                description: "bootstrap admin token".to_string(),
                created_at_ms: now,
            }),
            BootstrapSecret::Password(password) => {
                user.password_phc = Some(hash_password(password).await?);
            }
        }
        self.apply_auth(AuthCommand::PutUser {
            user,
            create: true,
            tokens,
            bindings: vec![bootstrap_binding()],
        })
        .await?;
        tracing::info!(
            user = BOOTSTRAP_ADMIN,
            tenant = DEFAULT_TENANT,
            role = ADMIN_ROLE,
            scope = "cluster",
            "bootstrap admin created"
        );
        Ok(())
    }

    /// Cluster mode's [`Engine::bootstrap_admin`], once the metadata group runs: user `admin`
    /// is created once per cluster. A node with a secret proposes it, retrying while the group
    /// has no leader; the group refuses all but the first (`PutUser::create`), which every node
    /// then has. A node without a secret leaves it to one that has.
    pub async fn bootstrap_admin_in_cluster(self: Arc<Self>, secret: Option<BootstrapSecret>) {
        loop {
            if secret.is_none() && self.auth.user(DEFAULT_TENANT, BOOTSTRAP_ADMIN).is_none() {
                tracing::warn!(
                    "no bootstrap admin secret on this node: user `admin` comes from a node of the cluster that has one"
                );
                return;
            }
            match self.bootstrap_admin(secret.clone()).await {
                Ok(()) => return,
                Err(err) if err.code() == ErrorCode::UserAlreadyExists => return,
                Err(err) => {
                    tracing::warn!(cause = %err, "creating the bootstrap admin through the metadata group; retrying")
                }
            }
            tokio::time::sleep(BOOTSTRAP_RETRY).await;
        }
    }

    pub async fn create_user(
        &self,
        principal: &Principal,
        name: &str,
        password: Option<String>,
    ) -> Result<Arc<UserRecord>> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        check_name("user", name)?;
        let tenant = principal.tenant().to_string();
        let password_phc = match password {
            Some(password) => Some(hash_password(password).await?),
            None => None,
        };
        let _guard = self.meta_lock.lock().await;
        if self.auth.user(&tenant, name).is_some() {
            return Err(Error::new(
                ErrorCode::UserAlreadyExists,
                format!("user `{name}` already exists"),
            ));
        }
        let user = UserRecord {
            tenant: tenant.clone(),
            name: name.to_string(),
            password_phc,
            disabled: false,
            created_at_ms: self.auth.now_ms(),
        };
        let audit = Audit::new(principal, "user.create", format!("user:{tenant}/{name}"));
        let command = AuthCommand::PutUser {
            user,
            create: true,
            tokens: Vec::new(),
            bindings: Vec::new(),
        };
        self.apply_auth_audited(command, audit).await?;
        tracing::info!(user = name, "user created");
        self.auth
            .user(&tenant, name)
            .ok_or_else(|| user_not_found(name))
    }

    /// Deletes a user, every token it owns and every role bound to it.
    pub async fn delete_user(&self, principal: &Principal, name: &str) -> Result<()> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        let tenant = principal.tenant().to_string();
        let _guard = self.meta_lock.lock().await;
        if self.auth.user(&tenant, name).is_none() {
            return Err(user_not_found(name));
        }
        self.check_user_admin(principal, name)?;
        let tokens = self
            .auth
            .tokens(&tenant, Some(name))
            .iter()
            .map(|t| t.id.clone())
            .collect();
        let bindings = self
            .auth
            .acl()
            .bindings(&tenant, Some(name))
            .map(|b| b.role)
            .collect();
        let audit = Audit::new(principal, "user.delete", format!("user:{tenant}/{name}"));
        let command = AuthCommand::DeleteUser {
            tenant,
            name: name.to_string(),
            tokens,
            bindings,
        };
        self.apply_auth_audited(command, audit).await?;
        tracing::info!(user = name, "user deleted");
        Ok(())
    }

    /// Sets a user's password: the caller's own, or, as an admin, anyone's.
    pub async fn set_password(
        &self,
        principal: &Principal,
        name: &str,
        password: String,
    ) -> Result<()> {
        self.check_own_or_admin(principal, name)?;
        let tenant = principal.tenant().to_string();
        if self.auth.user(&tenant, name).is_none() {
            return Err(user_not_found(name));
        }
        self.check_own_or_user_admin(principal, name)?;
        let phc = hash_password(password).await?;
        let _guard = self.meta_lock.lock().await;
        let current = self
            .auth
            .user(&tenant, name)
            .ok_or_else(|| user_not_found(name))?;
        let mut user = UserRecord::clone(&current);
        user.password_phc = Some(phc);
        let audit = Audit::new(principal, "user.password", format!("user:{tenant}/{name}"));
        let command = AuthCommand::PutUser {
            user,
            create: false,
            tokens: Vec::new(),
            bindings: Vec::new(),
        };
        self.apply_auth_audited(command, audit).await?;
        tracing::info!(user = name, "password set");
        Ok(())
    }

    pub fn list_users(&self, principal: &Principal) -> Result<Vec<Arc<UserRecord>>> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        Ok(self.auth.users(principal.tenant().as_str()))
    }

    /// A new API token for `user` (the caller itself when `None`), expiring after `ttl_ms`
    /// when set. A user may create its own; others' need an admin.
    pub async fn create_token(
        &self,
        principal: &Principal,
        user: Option<&str>,
        description: &str,
        ttl_ms: Option<u64>,
    ) -> Result<IssuedToken> {
        let name = match user.or(principal.name()) {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => {
                self.auth
                    .authorize(principal, Action::Admin, Resource::Tenant)?;
                return Err(Error::invalid("name the user the token is for"));
            }
        };
        self.check_own_or_admin(principal, &name)?;
        let tenant = principal.tenant().to_string();
        let token = Token::generate()?;
        let now = self.auth.now_ms();
        let record = TokenRecord {
            id: token.id().to_string(),
            tenant: tenant.clone(),
            user: name.clone(),
            kind: TokenKind::Api,
            secret_sha256: token.secret_sha256(),
            roles: None,
            expires_at_ms: ttl_ms
                .filter(|&ttl| ttl > 0)
                .map(|ttl| now.saturating_add(ttl)),
            description: description.to_string(),
            created_at_ms: now,
        };
        let _guard = self.meta_lock.lock().await;
        if self.auth.user(&tenant, &name).is_none() {
            return Err(user_not_found(&name));
        }
        self.check_own_or_user_admin(principal, &name)?;
        let audit = Audit::new(principal, "token.create", format!("token:{}", record.id))
            .detail(format!("for user {tenant}/{name}"));
        self.apply_auth_audited(AuthCommand::PutToken(record.clone()), audit)
            .await?;
        tracing::info!(user = %name, token = %record.id, "token created");
        Ok(IssuedToken { token, record })
    }

    /// The tokens of the caller's tenant (of one user when `user` is set): a user may list its
    /// own.
    pub fn list_tokens(
        &self,
        principal: &Principal,
        user: Option<&str>,
    ) -> Result<Vec<Arc<TokenRecord>>> {
        match user {
            Some(name) => self.check_own_or_admin(principal, name)?,
            None => self
                .auth
                .authorize(principal, Action::Admin, Resource::Tenant)?,
        }
        let tenant = principal.tenant().as_str();
        if let Some(name) = user
            && self.auth.user(tenant, name).is_none()
        {
            return Err(user_not_found(name));
        }
        Ok(self.auth.tokens(tenant, user))
    }

    /// Revokes tokens of the caller's tenant by id (API and session tokens alike): a user may
    /// revoke its own; others' need an admin.
    pub async fn revoke_tokens(&self, principal: &Principal, ids: &[String]) -> Result<()> {
        self.auth.authenticated(principal)?;
        let tenant = principal.tenant().as_str();
        let _guard = self.meta_lock.lock().await;
        let owners: Vec<Option<String>> = ids
            .iter()
            .map(|id| {
                self.auth
                    .token(id)
                    .filter(|t| t.tenant == tenant)
                    .map(|t| t.user.clone())
            })
            .collect();
        // Whether a token exists is told only to its owner and to admins.
        if !owners
            .iter()
            .all(|o| o.as_deref().is_some_and(|u| is_self(principal, u)))
        {
            self.auth
                .authorize(principal, Action::Admin, Resource::Tenant)?;
        }
        for (id, owner) in ids.iter().zip(&owners) {
            let Some(owner) = owner else {
                return Err(Error::new(
                    ErrorCode::TokenNotFound,
                    format!("token `{id}` does not exist"),
                ));
            };
            self.check_own_or_user_admin(principal, owner)?;
        }
        let targets: Vec<String> = ids.iter().map(|id| format!("token:{id}")).collect();
        let audit = Audit::new(principal, "token.revoke", targets.join(","));
        self.apply_auth_audited(AuthCommand::DeleteTokens { ids: ids.to_vec() }, audit)
            .await?;
        tracing::info!(tokens = ?ids, "tokens revoked");
        Ok(())
    }

    /// Checks a password and hands out a session token (`auth.session_ttl_ms`). Every failure
    /// (unknown user, wrong password, no password, disabled) is the same `UNAUTHENTICATED`, and
    /// unknown users are checked against a dummy hash so the answer takes as long.
    ///
    /// A login over a plaintext connection from another host is refused with
    /// `PERMISSION_DENIED` unless `auth.allow_plaintext_passwords`: the password crossed the
    /// network in clear text.
    ///
    /// After a few failures of the same user from the same address, that pair backs off
    /// (`auth::backoff`): its logins are refused with `RESOURCE_EXHAUSTED` and a retry hint
    /// before any password is checked.
    ///
    /// Every refusal is recorded in the audit log (`auth.login`, outcome `failed`), coalesced
    /// per address, user and reason; `source` is where the login came from.
    pub async fn login(
        &self,
        name: &str,
        password: String,
        peer: &PeerInfo,
        source: Source,
    ) -> Result<IssuedToken> {
        let (tenant, user) = auth::split_user_name(name);
        let failed = |reason: &str| {
            let actor = format!("{tenant}/{user}");
            let target = format!("user:{actor}");
            self.auth
                .record_failure(source, tenant, actor, "auth.login", target, reason);
        };
        if !peer.may_send_passwords(self.auth.config().allow_plaintext_passwords) {
            failed("plaintext password refused");
            return Err(plaintext_password_refused());
        }
        let key = LoginKey::new(peer.remote.map(|a| a.ip()), tenant, user);
        self.auth
            .login_backoff()
            .check(&key, Instant::now())
            .inspect_err(|_| failed("backing off after repeated failures"))?;
        let Ok(_permit) = self.auth.password_checks().clone().try_acquire_owned() else {
            return Err(Error::new(
                ErrorCode::ResourceExhausted,
                "too many logins at once (auth.max_concurrent_password_checks); retry shortly",
            )
            .with_retry_after(Duration::from_millis(100)));
        };
        let phc = self
            .auth
            .user(tenant, user)
            .filter(|u| !u.disabled)
            .and_then(|u| u.password_phc.clone());
        let ok = tokio::task::spawn_blocking(move || password::verify(&password, phc.as_deref()))
            .await
            .map_err(|err| Error::internal(format!("password check failed: {err}")))?;
        if !ok {
            let backoff = self.auth.login_backoff().failed(key, Instant::now());
            failed("invalid credentials");
            tracing::info!(user = name, peer = ?peer.remote, ?backoff, "login refused");
            return Err(Error::bad_credentials());
        }
        self.auth.login_backoff().succeeded(&key);
        let token = Token::generate()?;
        let now = self.auth.now_ms();
        let record = TokenRecord {
            id: token.id().to_string(),
            tenant: tenant.to_string(),
            user: user.to_string(),
            kind: TokenKind::Session,
            secret_sha256: token.secret_sha256(),
            roles: None,
            expires_at_ms: Some(now.saturating_add(self.auth.config().session_ttl_ms)),
            description: "login".to_string(),
            created_at_ms: now,
        };
        self.apply_auth(AuthCommand::PutToken(record.clone()))
            .await?;
        tracing::debug!(user = name, session = %record.id, "login");
        Ok(IssuedToken { token, record })
    }

    /// Checks, before any lookup, that `principal` is user `name` or a tenant admin.
    fn check_own_or_admin(&self, principal: &Principal, name: &str) -> Result<()> {
        if is_self(principal, name) {
            self.auth.authenticated(principal)
        } else {
            self.auth
                .authorize(principal, Action::Admin, Resource::Tenant)
        }
    }

    /// Once user `name` is known to exist: [`Engine::check_user_admin`] unless it is the caller.
    fn check_own_or_user_admin(&self, principal: &Principal, name: &str) -> Result<()> {
        if is_self(principal, name) {
            return Ok(());
        }
        self.check_user_admin(principal, name)
    }

    /// A tenant admin may administer user `name`, unless it holds a cluster-scope binding:
    /// then only a cluster admin may (its password, tokens, deletion, bindings).
    pub(super) fn check_user_admin(&self, principal: &Principal, name: &str) -> Result<()> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        let cluster_bound = self
            .auth
            .acl()
            .bindings(principal.tenant().as_str(), Some(name))
            .any(|b| b.scope == BindingScope::Cluster);
        if cluster_bound {
            self.auth
                .authorize(principal, Action::Admin, Resource::Cluster)?;
        }
        Ok(())
    }

    /// Deletes the session tokens that have expired.
    pub(super) async fn sweep_sessions(&self) {
        let kept = u64::try_from(EXPIRED_SESSION_KEPT.as_millis()).unwrap_or(u64::MAX);
        let ids = self
            .auth
            .expired_sessions(self.auth.now_ms().saturating_sub(kept));
        if ids.is_empty() {
            return;
        }
        let count = ids.len();
        match self.apply_auth(AuthCommand::DeleteTokens { ids }).await {
            Ok(()) => tracing::debug!(count, "expired sessions deleted"),
            Err(err) => tracing::warn!(cause = %err, "deleting expired sessions failed"),
        }
    }
}

/// A password sent in clear text from another host: refused before it is checked, whatever it is.
fn plaintext_password_refused() -> Error {
    Error::new(
        ErrorCode::PermissionDenied,
        "password logins over plaintext connections are accepted only from this host: connect with TLS (https://), or use an API token; the broker's operator can set auth.allow_plaintext_passwords",
    )
}

/// Whether `principal` is user `name` (of its own tenant).
/// Whether user `name` of the tenant the caller acts in is the caller itself.
fn is_self(principal: &Principal, name: &str) -> bool {
    principal.kind() == PrincipalKind::User
        && principal.name() == Some(name)
        && principal.home_tenant() == principal.tenant()
}

/// The bootstrap admin's role: `admin` at cluster scope.
fn bootstrap_binding() -> BindingRecord {
    BindingRecord {
        tenant: DEFAULT_TENANT.to_string(),
        user: BOOTSTRAP_ADMIN.to_string(),
        role: ADMIN_ROLE.to_string(),
        scope: BindingScope::Cluster,
    }
}

pub(super) fn user_not_found(name: &str) -> Error {
    Error::new(
        ErrorCode::UserNotFound,
        format!("user `{name}` does not exist"),
    )
}

/// Hashes a password on the blocking pool (argon2id takes tens of ms of CPU).
async fn hash_password(password: String) -> Result<String> {
    if password.is_empty() {
        return Err(Error::invalid("the password is empty"));
    }
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|err| Error::internal(format!("password hashing failed: {err}")))?
}
