//! Who is making a request. Every engine operation takes a [`Principal`]. The authentication
//! layer (`crate::auth`) builds one per request and puts it in the request's extensions; with
//! authentication off every request is anonymous in `default`.

use std::fmt;
use std::net::SocketAddr;

/// The tenant every single-node broker starts with.
pub const DEFAULT_TENANT: &str = "default";

/// A tenant: the isolation boundary for topics, subscriptions, users and quotas.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn new(name: impl Into<String>) -> TenantId {
        TenantId(name.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TenantId {
    fn default() -> Self {
        TenantId(DEFAULT_TENANT.to_string())
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What kind of caller a [`Principal`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// No credentials were presented.
    Anonymous,
    /// A user authenticated by a token or a session.
    User,
    /// The broker itself (dead letters, scheduled messages).
    System,
}

/// The credential a user authenticated with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// An API token, by id.
    Token(String),
    /// A session token from a login, by id.
    Session(String),
    /// A verified client certificate (`auth.mtls_identity`).
    Certificate,
}

/// Where a request came from, for the audit log: the client's address (when the socket knows
/// it) and the transport, `grpc` or `http`. Empty for the broker's own work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Source {
    pub addr: Option<SocketAddr>,
    pub transport: &'static str,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant the caller acts in: its own, or (a cluster admin with `rapidmq-tenant`)
    /// another.
    tenant: TenantId,
    /// The caller's own tenant while it acts in another: its user record and role bindings
    /// live there.
    home: Option<TenantId>,
    name: Option<String>,
    kind: PrincipalKind,
    credential: Option<Credential>,
    /// When the credential stops being valid, in ms since the epoch.
    expires_at_ms: Option<u64>,
    /// Set by the authentication layer.
    source: Source,
}

impl Principal {
    /// The caller without credentials: anonymous, in the `default` tenant.
    pub fn anonymous() -> Principal {
        Principal {
            tenant: TenantId::default(),
            home: None,
            name: None,
            kind: PrincipalKind::Anonymous,
            credential: None,
            expires_at_ms: None,
            source: Source::default(),
        }
    }

    /// The broker acting on its own behalf inside `tenant` (dead letters, scheduled messages).
    pub fn system(tenant: TenantId) -> Principal {
        Principal {
            tenant,
            home: None,
            name: Some("rapidmq".to_string()),
            kind: PrincipalKind::System,
            credential: None,
            expires_at_ms: None,
            source: Source::default(),
        }
    }

    /// A user that presented a valid credential. Only authentication builds these.
    pub(crate) fn user(
        tenant: TenantId,
        name: String,
        credential: Credential,
        expires_at_ms: Option<u64>,
    ) -> Principal {
        Principal {
            tenant,
            home: None,
            name: Some(name),
            kind: PrincipalKind::User,
            credential: Some(credential),
            expires_at_ms,
            source: Source::default(),
        }
    }

    /// The tenant the caller acts in: where the names it sends resolve.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The caller's own tenant, where its user and role bindings live.
    pub fn home_tenant(&self) -> &TenantId {
        self.home.as_ref().unwrap_or(&self.tenant)
    }

    /// The same caller acting in `tenant` (the authentication layer decides who may).
    pub(crate) fn acting_in(mut self, tenant: TenantId) -> Principal {
        if tenant != self.tenant {
            let home = std::mem::replace(&mut self.tenant, tenant);
            self.home.get_or_insert(home);
        }
        self
    }

    /// The user name, or `None` for anonymous callers.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// The credential a user presented; `None` for anonymous and system callers.
    pub fn credential(&self) -> Option<&Credential> {
        self.credential.as_ref()
    }

    /// When the credential expires, in ms since the epoch; `None` if it does not.
    pub fn expires_at_ms(&self) -> Option<u64> {
        self.expires_at_ms
    }

    /// Where the request came from (the authentication layer sets it).
    pub fn source(&self) -> Source {
        self.source
    }

    pub fn with_source(mut self, source: Source) -> Principal {
        self.source = source;
        self
    }
}
