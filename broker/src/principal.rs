//! Who is making a request. Every engine operation takes a [`Principal`], so authentication can
//! arrive later without changing any signature: today every request is anonymous in `default`.

use std::fmt;

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

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    tenant: TenantId,
    name: Option<String>,
}

impl Principal {
    /// The caller when no authentication is configured: anonymous, in the `default` tenant.
    pub fn anonymous() -> Principal {
        Principal {
            tenant: TenantId::default(),
            name: None,
        }
    }

    /// The broker acting on its own behalf inside `tenant` (dead letters, scheduled messages).
    pub fn system(tenant: TenantId) -> Principal {
        Principal {
            tenant,
            name: Some("rapidmq".to_string()),
        }
    }

    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// The user name, or `None` for anonymous callers.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}
