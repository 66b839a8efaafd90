//! Tenants through the engine (docs/adr/0004-security.md §7–§8): their admin operations, the
//! count quotas checked when a topic is created, and the usage a describe reports. Quota rates
//! and stored bytes live in each tenant's [`TenantRuntime`], which topics hold.

use std::sync::Arc;
use std::time::Duration;

use rapidmq_proto::ErrorCode;

use super::{Engine, MetaCommand};
use crate::audit::Audit;
use crate::auth::{Action, Resource};
use crate::error::{Error, Result};
use crate::principal::{DEFAULT_TENANT, Principal, TenantId};
use crate::storage::Store;
use crate::tenant::{
    EffectiveQuotas, Quota, TENANT_PREFIX, TenantQuotas, TenantRecord, TenantRuntime, Tenants,
};

/// A tenant as the admin API shows it.
#[derive(Debug, Clone)]
pub struct TenantStatus {
    pub name: String,
    pub quotas: EffectiveQuotas,
    pub usage: TenantUsage,
    pub created_at_ms: u64,
}

/// What a tenant uses now, on this node.
#[derive(Debug, Clone, Copy, Default)]
pub struct TenantUsage {
    pub topics: u64,
    pub partitions: u64,
    pub storage_bytes: u64,
    pub connections: u64,
    pub users: u64,
}

/// Reads every tenant record into `tenants` (at startup, before the topics that use them).
pub fn recover(tenants: &Tenants, store: &dyn Store) -> Result<()> {
    for record in crate::auth::scan::<TenantRecord>(store, TENANT_PREFIX, "tenant")? {
        tenants.put(record);
    }
    Ok(())
}

/// The quotas set, as `name=value` pairs for an audit record.
fn quota_detail(quotas: &TenantQuotas) -> String {
    Quota::ALL
        .iter()
        .filter_map(|&q| quotas.get(q).map(|v| format!("{}={v}", q.name())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `[A-Za-z0-9._-]{1,64}`.
fn check_tenant_name(name: &str) -> Result<()> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::InvalidName,
            format!(
                "invalid tenant name `{}`: use 1 to 64 characters from [A-Za-z0-9._-]",
                name.escape_debug()
            ),
        ))
    }
}

impl Error {
    /// The same answer for a tenant that does not exist and one the caller may not see.
    pub fn tenant_not_found(name: &str) -> Error {
        Error::new(
            ErrorCode::TenantNotFound,
            format!("tenant `{name}` does not exist"),
        )
    }
}

impl Engine {
    pub fn tenants(&self) -> &Arc<Tenants> {
        &self.tenants
    }

    /// The quotas and spending of the tenant `principal` acts in.
    pub fn tenant_runtime(&self, principal: &Principal) -> Arc<TenantRuntime> {
        self.tenants.runtime(principal.tenant().as_str())
    }

    /// Applies a tenant change with its audit record, filed under the tenant changed. Callers
    /// hold `meta_lock`.
    async fn apply_tenant(&self, command: MetaCommand, audit: Audit) -> Result<()> {
        let tenant = match &command {
            MetaCommand::PutTenant(record) => record.name.clone(),
            MetaCommand::DeleteTenant { name, .. } => name.clone(),
            _ => unreachable!("apply_tenant takes tenant commands"),
        };
        self.apply_audited(command, audit.in_tenant(tenant)).await
    }

    pub async fn create_tenant(
        &self,
        principal: &Principal,
        name: &str,
        quotas: TenantQuotas,
    ) -> Result<TenantStatus> {
        self.authorize(principal, Action::Admin, Resource::Cluster)?;
        check_tenant_name(name)?;
        let _guard = self.meta_lock.lock().await;
        if self.tenants.exists(name) {
            return Err(Error::new(
                ErrorCode::TenantAlreadyExists,
                format!("tenant `{name}` already exists"),
            ));
        }
        let record = TenantRecord {
            name: name.to_string(),
            quotas,
            created_at_ms: self.auth.now_ms(),
        };
        let audit = Audit::new(principal, "tenant.create", format!("tenant:{name}"))
            .detail(quota_detail(&quotas));
        self.apply_tenant(MetaCommand::PutTenant(record), audit)
            .await?;
        tracing::info!(tenant = name, "tenant created");
        self.tenant_status(name)
    }

    /// Deletes a tenant with no topics and no users, and its custom roles.
    pub async fn delete_tenant(&self, principal: &Principal, name: &str) -> Result<()> {
        self.authorize(principal, Action::Admin, Resource::Cluster)?;
        check_tenant_name(name)?;
        if name == DEFAULT_TENANT {
            return Err(Error::new(
                ErrorCode::PermissionDenied,
                "the `default` tenant cannot be deleted",
            ));
        }
        let _guard = self.meta_lock.lock().await;
        if !self.tenants.exists(name) {
            return Err(Error::tenant_not_found(name));
        }
        let usage = self.usage(name);
        if usage.topics > 0 || usage.users > 0 {
            return Err(Error::new(
                ErrorCode::TenantNotEmpty,
                format!(
                    "tenant `{name}` still has {} topics and {} users: delete them first",
                    usage.topics, usage.users
                ),
            ));
        }
        let roles = self
            .auth
            .acl()
            .roles(name)
            .map(|role| role.name.clone())
            .collect();
        let audit = Audit::new(principal, "tenant.delete", format!("tenant:{name}"));
        self.apply_tenant(
            MetaCommand::DeleteTenant {
                name: name.to_string(),
                roles,
            },
            audit,
        )
        .await?;
        tracing::info!(tenant = name, "tenant deleted");
        Ok(())
    }

    pub fn list_tenants(&self, principal: &Principal) -> Result<Vec<TenantStatus>> {
        self.authorize(principal, Action::Admin, Resource::Cluster)?;
        self.tenants
            .records()
            .iter()
            .map(|record| self.tenant_status(&record.name))
            .collect()
    }

    /// A tenant's quotas and usage: the caller's own with `Describe` on it, any with `Admin` on
    /// the cluster. Another tenant answers as a missing one would.
    pub fn describe_tenant(
        &self,
        principal: &Principal,
        name: Option<&str>,
    ) -> Result<TenantStatus> {
        // An anonymous caller is refused as such, whichever tenant it names.
        self.authenticated(principal)?;
        let own = principal.tenant().as_str();
        let name = name.filter(|n| !n.is_empty()).unwrap_or(own);
        if name == own {
            self.authorize(principal, Action::Describe, Resource::Tenant)?;
        } else {
            self.authorize(principal, Action::Admin, Resource::Cluster)
                .map_err(|_| Error::tenant_not_found(name))?;
        }
        self.tenant_status(name)
    }

    /// Changes some of a tenant's quotas: `set` values replace, `reset` ones go back to the
    /// defaults. Takes effect at once, on open streams too.
    pub async fn set_tenant_quotas(
        &self,
        principal: &Principal,
        name: &str,
        set: TenantQuotas,
        reset: &[String],
    ) -> Result<TenantStatus> {
        self.authorize(principal, Action::Admin, Resource::Cluster)?;
        let reset = reset
            .iter()
            .map(|n| {
                Quota::from_name(n).ok_or_else(|| {
                    Error::invalid(format!(
                        "unknown quota `{n}`: one of {}",
                        Quota::ALL.map(Quota::name).join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let _guard = self.meta_lock.lock().await;
        let mut record = self
            .tenants
            .record(name)
            .ok_or_else(|| Error::tenant_not_found(name))?;
        for quota in Quota::ALL {
            if let Some(value) = set.get(quota) {
                record.quotas.set(quota, Some(value));
            }
        }
        let mut detail = quota_detail(&set);
        for quota in reset {
            record.quotas.set(quota, None);
            detail.push_str(&format!(" {}=default", quota.name()));
        }
        let audit = Audit::new(principal, "tenant.quotas", format!("tenant:{name}"))
            .detail(detail.trim_start());
        self.apply_tenant(MetaCommand::PutTenant(record), audit)
            .await?;
        tracing::info!(tenant = name, "tenant quotas changed");
        self.tenant_status(name)
    }

    fn tenant_status(&self, name: &str) -> Result<TenantStatus> {
        let record = self
            .tenants
            .record(name)
            .ok_or_else(|| Error::tenant_not_found(name))?;
        Ok(TenantStatus {
            quotas: record.quotas.effective(self.tenants.defaults()),
            usage: self.usage(name),
            name: record.name,
            created_at_ms: record.created_at_ms,
        })
    }

    fn usage(&self, name: &str) -> TenantUsage {
        let (topics, partitions) = self
            .topics
            .read()
            .iter()
            .filter(|((tenant, _), _)| tenant.as_str() == name)
            .fold((0, 0), |(t, p), (_, live)| {
                (t + 1, p + live.topic.partitions.len() as u64)
            });
        let runtime = self.tenants.runtime(name);
        TenantUsage {
            topics,
            partitions,
            storage_bytes: runtime.storage_bytes(),
            connections: runtime.connections(),
            users: self.auth.users(name).len() as u64,
        }
    }

    /// Refuses a new topic of `partitions` partitions past the tenant's `max_topics` or
    /// `max_partitions`, or past `limits.max_topics_per_tenant`, the ceiling for every tenant.
    pub(super) fn check_topic_quota(&self, tenant: &TenantId, partitions: u32) -> Result<()> {
        let usage = self.usage(tenant.as_str());
        let quotas = self.tenants.runtime(tenant.as_str()).quotas();
        let ceiling = self.config.limits.max_topics_per_tenant as u64;
        if usage.topics >= ceiling {
            return Err(Error::resource_exhausted(format!(
                "the tenant has {} topics, the most it may have (limits.max_topics_per_tenant); delete one first",
                usage.topics
            )));
        }
        let refused = |quota: Quota, what: &str, have: u64, max: u64| {
            Error::quota_exceeded(
                quota,
                format!(
                    "the tenant has {have} {what}, its quota is {max} ({}); delete a topic first or ask for a larger quota",
                    quota.name()
                ),
                Duration::from_secs(1),
            )
        };
        if quotas.max_topics != 0 && usage.topics >= quotas.max_topics {
            return Err(refused(
                Quota::MaxTopics,
                "topics",
                usage.topics,
                quotas.max_topics,
            ));
        }
        let max = quotas.max_partitions;
        if max != 0 && usage.partitions + u64::from(partitions) > max {
            return Err(refused(
                Quota::MaxPartitions,
                "partitions",
                usage.partitions,
                max,
            ));
        }
        Ok(())
    }

    /// How long a storage-quota refusal tells the client to wait: until retention runs next.
    pub(super) fn storage_retry_after(&self) -> Duration {
        Duration::from_millis(self.config.retention.check_interval_ms)
    }
}
