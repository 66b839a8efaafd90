//! Authentication (docs/adr/0004-security.md §3–§5): who a request comes from.
//!
//! Layout:
//! - `records`: the durable [`UserRecord`], [`TokenRecord`], [`RoleRecord`] and
//!   [`BindingRecord`], JSON in the `meta` column family under `user/<tenant>/<user>`,
//!   `token/<id>`, `role/<tenant>/<role>` and `binding/<tenant>/<user>/<role>`.
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
//! - `roles`: [`Permission`]s, the built-in roles and the checks a custom role passes.
//! - `pattern`: the literal, prefix and glob (`*`, `?`) matching of permission patterns.
//! - `acl`: custom roles, bindings and each user's compiled ACL, which [`Auth::authorize`]
//!   evaluates (deny wins, else allow, else denied).
//!
//! [`Auth`] holds the in-memory state: users and tokens by key, the [`acl::AclSnapshot`]
//! (copy-on-write), and an `epoch` bumped per change so that open streams can re-check their
//! caller. No lock is held across `.await`.

mod acl;
mod backoff;
mod bootstrap;
mod command;
mod layer;
mod mtls;
pub mod password;
mod pattern;
mod records;
pub mod roles;
pub mod token;

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;
use rapidmq_proto::ErrorCode;
use tokio::sync::{Semaphore, watch};

use crate::audit::{Audit, AuditSink, Outcome};
use crate::clock::Clock;
use crate::config::AuthConfig;
use crate::error::{Error, Result};
use crate::principal::{Credential, Principal, PrincipalKind, TenantId};
use crate::storage::{Cf, Store};
use crate::tenant::Tenants;

pub use backoff::{LoginBackoff, LoginKey};
pub use bootstrap::{BOOTSTRAP_ADMIN, BootstrapSecret};
pub use command::AuthCommand;
pub use layer::{AuthLayer, GrpcReject, HttpReject, SESSION_COOKIE};
pub use records::{
    BINDING_PREFIX, BindingRecord, BindingScope, ROLE_PREFIX, RoleRecord, TOKEN_PREFIX, TokenKind,
    TokenRecord, USER_PREFIX, UserRecord, role_key,
};
pub use roles::{Effect, PatternType, Permission, ResourceType};
pub use token::Token;

pub use acl::AclSnapshot;

/// What a caller wants to do (docs/adr/0004-security.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Publish,
    Consume,
    Create,
    Delete,
    Alter,
    Describe,
    Admin,
}

impl Action {
    pub const ALL: [Action; 7] = [
        Action::Publish,
        Action::Consume,
        Action::Create,
        Action::Delete,
        Action::Alter,
        Action::Describe,
        Action::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Consume => "consume",
            Action::Create => "create",
            Action::Delete => "delete",
            Action::Alter => "alter",
            Action::Describe => "describe",
            Action::Admin => "admin",
        }
    }
}

/// What a caller wants to do it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    Topic(&'a str),
    Subscription { topic: &'a str, name: &'a str },
    Tenant,
    Cluster,
}

impl std::fmt::Display for Resource<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Resource::Topic(name) => write!(f, "topic `{name}`"),
            Resource::Subscription { topic, name } => write!(f, "subscription `{topic}/{name}`"),
            Resource::Tenant => f.write_str("the tenant"),
            Resource::Cluster => f.write_str("the cluster"),
        }
    }
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

    /// No role bound to `user` allows `action` on `resource`, or one denies it. The text names
    /// only what the caller sent.
    pub fn permission_denied(user: &str, action: Action, resource: Resource<'_>) -> Error {
        Error::new(
            ErrorCode::PermissionDenied,
            format!("user `{user}` may not {} on {resource}", action.as_str()),
        )
    }
}

/// Users, tokens, roles and bindings in memory, derived from the store at startup and from each
/// applied [`AuthCommand`] afterwards.
pub struct Auth {
    config: AuthConfig,
    users: RwLock<HashMap<(String, String), Arc<UserRecord>>>,
    tokens: RwLock<HashMap<String, Arc<TokenRecord>>>,
    acl: RwLock<Arc<AclSnapshot>>,
    epoch: watch::Sender<u64>,
    password_checks: Arc<Semaphore>,
    login_backoff: LoginBackoff,
    /// For the layer, which resolves `rapidmq-tenant` and counts connections per tenant.
    tenants: Arc<Tenants>,
    /// Where authentication failures and denials are recorded.
    audit: AuditSink,
    /// Token and certificate expiry are checked against it.
    clock: Arc<dyn Clock>,
}

impl Auth {
    /// `audit` records the failures and denials (`AuditSink::detached` records nothing).
    pub fn new(
        config: &AuthConfig,
        tenants: Arc<Tenants>,
        audit: AuditSink,
        clock: Arc<dyn Clock>,
    ) -> Auth {
        Auth {
            config: config.clone(),
            users: RwLock::new(HashMap::new()),
            tokens: RwLock::new(HashMap::new()),
            acl: RwLock::new(Arc::default()),
            epoch: watch::channel(0).0,
            password_checks: Arc::new(Semaphore::new(config.max_concurrent_password_checks)),
            login_backoff: LoginBackoff::default(),
            tenants,
            audit,
            clock,
        }
    }

    pub fn tenants(&self) -> &Arc<Tenants> {
        &self.tenants
    }

    /// Where authentication failures and denials go (the audit log's writer).
    pub fn audit(&self) -> &AuditSink {
        &self.audit
    }

    /// Whether requests need credentials.
    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn config(&self) -> &AuthConfig {
        &self.config
    }

    /// Reads every user, token, role and binding record of `store` into memory (at startup),
    /// through the same [`Auth::apply`] as live changes. Roles come before the bindings that
    /// name them.
    pub fn recover(&self, store: &dyn Store) -> Result<()> {
        for user in scan::<UserRecord>(store, USER_PREFIX, "user")? {
            self.apply(&AuthCommand::PutUser {
                user,
                create: false,
                tokens: Vec::new(),
                bindings: Vec::new(),
            });
        }
        for token in scan(store, TOKEN_PREFIX, "token")? {
            self.apply(&AuthCommand::PutToken(token));
        }
        for role in scan(store, ROLE_PREFIX, "role")? {
            self.apply(&AuthCommand::PutRole(role));
        }
        for binding in scan(store, BINDING_PREFIX, "binding")? {
            self.apply(&AuthCommand::PutBinding(binding));
        }
        Ok(())
    }

    /// Replaces users, tokens, roles and bindings with what `store` holds (a cluster node
    /// installed a metadata snapshot). Open sessions re-check on the epoch bump.
    pub fn reload(&self, store: &dyn Store) -> Result<()> {
        self.users.write().clear();
        self.tokens.write().clear();
        *self.acl.write() = Arc::default();
        self.recover(store)?;
        self.epoch.send_modify(|epoch| *epoch += 1);
        Ok(())
    }

    /// Applies a written command to memory and bumps the epoch. Only `Engine::apply_auth` (and
    /// recovery) calls it.
    pub fn apply(&self, command: &AuthCommand) {
        match command {
            AuthCommand::PutUser {
                user,
                tokens,
                bindings,
                ..
            } => {
                let key = (user.tenant.clone(), user.name.clone());
                self.users.write().insert(key, Arc::new(user.clone()));
                let mut map = self.tokens.write();
                for token in tokens {
                    map.insert(token.id.clone(), Arc::new(token.clone()));
                }
                if !bindings.is_empty() {
                    let mut acl = self.acl.write();
                    let acl = Arc::make_mut(&mut acl);
                    for binding in bindings {
                        acl.put_binding(binding);
                    }
                }
            }
            AuthCommand::DeleteUser {
                tenant,
                name,
                tokens,
                bindings,
            } => {
                self.users.write().remove(&(tenant.clone(), name.clone()));
                let mut map = self.tokens.write();
                for id in tokens {
                    map.remove(id);
                }
                if !bindings.is_empty() {
                    let mut acl = self.acl.write();
                    let acl = Arc::make_mut(&mut acl);
                    for role in bindings {
                        acl.delete_binding(tenant, name, role);
                    }
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
            AuthCommand::PutRole(role) => {
                Arc::make_mut(&mut self.acl.write()).put_role(role.clone());
            }
            AuthCommand::DeleteRole {
                tenant,
                name,
                bindings,
            } => {
                Arc::make_mut(&mut self.acl.write()).delete_role(tenant, name, bindings);
            }
            AuthCommand::PutBinding(binding) => {
                Arc::make_mut(&mut self.acl.write()).put_binding(binding);
            }
            AuthCommand::DeleteBinding { tenant, user, role } => {
                Arc::make_mut(&mut self.acl.write()).delete_binding(tenant, user, role);
            }
        }
        self.epoch.send_modify(|epoch| *epoch += 1);
    }

    /// Changes each time users, tokens, roles or bindings change (open streams re-check their
    /// caller on it).
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
        if record.expired(self.now_ms()) {
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
        if expires_at_ms <= self.now_ms() {
            return Err(Error::bad_credentials());
        }
        Ok(Some(Principal::user(
            TenantId::new(tenant.to_string()),
            user.to_string(),
            Credential::Certificate,
            Some(expires_at_ms),
        )))
    }

    /// Whether `principal` may do `action` to `resource` (docs/adr/0004-security.md §6). With
    /// auth off everything is allowed, and so is the broker's own work; anonymous callers are
    /// refused with `UNAUTHENTICATED`. A user may do what the roles bound to it allow: those
    /// bound in its tenant and at cluster scope, the cluster itself only through the latter. A
    /// matching deny refuses, else a matching allow permits, else `PERMISSION_DENIED`.
    ///
    /// Runs on every publish: a read lock for two hash lookups, then the user's compiled ACL.
    /// A `PERMISSION_DENIED` is recorded in the audit log (`authz.denied`); [`Auth::check`]
    /// gives the same answer without recording it.
    pub fn authorize(
        &self,
        principal: &Principal,
        action: Action,
        resource: Resource<'_>,
    ) -> Result<()> {
        let result = self.check(principal, action, resource);
        if let Err(err) = &result
            && err.code() == ErrorCode::PermissionDenied
        {
            let target = match resource {
                Resource::Topic(name) => format!("topic:{name}"),
                Resource::Subscription { topic, name } => format!("subscription:{topic}/{name}"),
                Resource::Tenant => format!("tenant:{}", principal.tenant()),
                Resource::Cluster => "cluster".to_string(),
            };
            let mut denial = Audit::new(principal, "authz.denied", target)
                .detail(format!("may not {}", action.as_str()));
            denial.outcome = Outcome::Denied;
            self.audit.record(denial);
        }
        result
    }

    /// What [`Auth::authorize`] answers, unrecorded: for lists, which filter instead of
    /// refusing, and for probes such as "is this a cluster admin".
    pub fn check(
        &self,
        principal: &Principal,
        action: Action,
        resource: Resource<'_>,
    ) -> Result<()> {
        self.authenticated(principal)?;
        if principal.kind() != PrincipalKind::User || !self.enabled() {
            return Ok(());
        }
        let name = principal.name().unwrap_or_default();
        let acl = self
            .acl
            .read()
            .user(principal.home_tenant().as_str(), name)
            .cloned();
        if acl.is_some_and(|acl| acl.permits(action, resource)) {
            Ok(())
        } else {
            Err(Error::permission_denied(name, action, resource))
        }
    }

    /// Records a failed authentication of `actor` (`tenant/user`, `token:<id>`, `anonymous`)
    /// in `tenant`: `action` is `auth.login`, `auth.token` or `auth.certificate`, `reason`
    /// never holds a secret.
    pub fn record_failure(
        &self,
        source: crate::principal::Source,
        tenant: &str,
        actor: String,
        action: &'static str,
        target: String,
        reason: &str,
    ) {
        self.audit.record(Audit {
            tenant: tenant.to_string(),
            actor,
            source: source.into(),
            action,
            target,
            outcome: Outcome::Failed,
            detail: reason.to_string(),
        });
    }

    /// Whether `principal` may act at all: anything but an anonymous caller while auth is on.
    /// What a user may do to its own account (who am I, its password, its tokens) needs no
    /// more.
    pub fn authenticated(&self, principal: &Principal) -> Result<()> {
        if self.enabled() && principal.kind() == PrincipalKind::Anonymous {
            return Err(Error::credentials_required());
        }
        Ok(())
    }

    /// The current roles and bindings, for the admin operations to read.
    pub fn acl(&self) -> Arc<AclSnapshot> {
        self.acl.read().clone()
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
                let user = self.user(
                    principal.home_tenant().as_str(),
                    principal.name().unwrap_or(""),
                );
                let expired = principal
                    .expires_at_ms()
                    .is_some_and(|at| at <= self.now_ms());
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
        if token.expired(self.now_ms()) {
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

    /// The clock's time as auth and audit records count it (ms since the Unix epoch, `u64`).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.now_ms()).unwrap_or(0)
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
                std::time::Duration::from_millis(at.saturating_sub(self.auth.now_ms())),
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

/// Every record under `prefix`, parsed.
pub(crate) fn scan<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    prefix: &[u8],
    what: &str,
) -> Result<Vec<T>> {
    store
        .scan(Cf::Meta, prefix, &prefix_end(prefix), usize::MAX)?
        .into_iter()
        .map(|(_, value)| {
            serde_json::from_slice(&value)
                .map_err(|err| Error::internal(format!("unreadable {what} record: {err}")))
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MemStore;

    fn auth(enabled: bool) -> Auth {
        Auth::new(
            &AuthConfig {
                enabled,
                ..AuthConfig::default()
            },
            Arc::new(Tenants::new(Default::default())),
            AuditSink::detached(),
            crate::clock::system(),
        )
    }

    fn user(name: &str) -> Principal {
        Principal::user(
            TenantId::default(),
            name.to_string(),
            Credential::Token(format!("{name}-token")),
            None,
        )
    }

    fn bind(name: &str, role: &str, scope: BindingScope) -> AuthCommand {
        AuthCommand::PutBinding(BindingRecord {
            tenant: "default".into(),
            user: name.into(),
            role: role.into(),
            scope,
        })
    }

    #[test]
    fn authorize_allows_with_auth_off_and_the_system_and_refuses_anonymous_callers() {
        let orders = Resource::Topic("orders");
        let off = auth(false);
        for principal in [Principal::anonymous(), user("alice")] {
            off.authorize(&principal, Action::Delete, orders).unwrap();
        }
        let on = auth(true);
        on.authorize(
            &Principal::system(TenantId::default()),
            Action::Admin,
            Resource::Cluster,
        )
        .unwrap();
        let err = on
            .authorize(&Principal::anonymous(), Action::Describe, orders)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated);
    }

    #[test]
    fn a_user_may_do_only_what_its_roles_allow_and_is_told_what_it_asked() {
        let auth = auth(true);
        let alice = user("alice");
        let err = auth
            .authorize(&alice, Action::Publish, Resource::Topic("orders"))
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied);
        assert_eq!(
            err.message(),
            "user `alice` may not publish on topic `orders`"
        );

        let epoch = *auth.epoch().borrow();
        auth.apply(&bind("alice", "producer", BindingScope::Tenant));
        assert!(*auth.epoch().borrow() > epoch, "open streams re-check");
        auth.authorize(&alice, Action::Publish, Resource::Topic("orders"))
            .unwrap();
        let sub = Resource::Subscription {
            topic: "orders",
            name: "billing",
        };
        let err = auth.authorize(&alice, Action::Consume, sub).unwrap_err();
        assert_eq!(
            err.message(),
            "user `alice` may not consume on subscription `orders/billing`"
        );
        // Another tenant's alice has no roles.
        let other = Principal::user(
            TenantId::new("acme"),
            "alice".into(),
            Credential::Certificate,
            None,
        );
        assert!(
            auth.authorize(&other, Action::Publish, Resource::Topic("orders"))
                .is_err()
        );
    }

    #[test]
    fn roles_and_bindings_are_recovered_from_what_the_commands_wrote() {
        let store = MemStore::new();
        let before = auth(true);
        let commands = [
            AuthCommand::PutUser {
                create: true,
                user: UserRecord {
                    tenant: "default".into(),
                    name: "bob".into(),
                    password_phc: None,
                    disabled: false,
                    created_at_ms: 1,
                },
                tokens: Vec::new(),
                bindings: vec![BindingRecord {
                    tenant: "default".into(),
                    user: "bob".into(),
                    role: "viewer".into(),
                    scope: BindingScope::Tenant,
                }],
            },
            AuthCommand::PutRole(RoleRecord {
                tenant: "default".into(),
                name: "writer".into(),
                permissions: vec![
                    Permission::new(
                        Effect::Allow,
                        vec![Action::Publish],
                        ResourceType::Topic,
                        "orders.".into(),
                        Some(PatternType::Prefix),
                    )
                    .unwrap(),
                ],
                created_at_ms: 2,
            }),
            bind("bob", "writer", BindingScope::Tenant),
            bind("bob", "admin", BindingScope::Cluster),
            AuthCommand::DeleteBinding {
                tenant: "default".into(),
                user: "bob".into(),
                role: "admin".into(),
            },
        ];
        for command in &commands {
            let mut batch = crate::storage::WriteBatch::new();
            command.write_to(&mut batch);
            store.write(batch, true).unwrap();
            before.apply(command);
        }
        let after = auth(true);
        after.recover(&store).unwrap();
        let bob = user("bob");
        for auth in [&before, &after] {
            auth.authorize(&bob, Action::Publish, Resource::Topic("orders.eu"))
                .unwrap();
            auth.authorize(&bob, Action::Describe, Resource::Tenant)
                .unwrap();
            assert!(
                auth.authorize(&bob, Action::Admin, Resource::Cluster)
                    .is_err()
            );
            let roles: Vec<_> = auth
                .acl()
                .bindings("default", Some("bob"))
                .map(|b| b.role)
                .collect();
            assert_eq!(roles, ["viewer", "writer"]);
        }

        // Deleting the role and the user takes their bindings with them, on disk too.
        for command in [
            AuthCommand::DeleteRole {
                tenant: "default".into(),
                name: "writer".into(),
                bindings: vec!["bob".into()],
            },
            AuthCommand::DeleteUser {
                tenant: "default".into(),
                name: "bob".into(),
                tokens: Vec::new(),
                bindings: vec!["viewer".into()],
            },
        ] {
            let mut batch = crate::storage::WriteBatch::new();
            command.write_to(&mut batch);
            store.write(batch, true).unwrap();
        }
        let end = auth(true);
        end.recover(&store).unwrap();
        assert!(!end.acl().has_bindings());
        assert!(end.acl().role("default", "writer").is_none());
    }
}
