//! Tenants, their quotas and the audit log (docs/security.md): the records and the `NativeAdmin`
//! calls that manage them. A quota is `Option<u64>` at every step (a nullable `Long` in Java), so
//! unset and 0 (unlimited) stay apart; [`Quota`] names one for a reset.

use rapidmq_core as core;

use crate::admin::NativeAdmin;
use crate::error::Result;
use crate::runtime::on_runtime;

/// A tenant's limits. In a request `None` leaves a quota as it is (or at the broker's default);
/// in a [`TenantInfo`] every one is set, to the value in effect. `Some(0)` means unlimited. Rates
/// are per broker node.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct TenantQuotas {
    pub publish_bytes_per_sec: Option<u64>,
    pub publish_msgs_per_sec: Option<u64>,
    pub consume_bytes_per_sec: Option<u64>,
    /// Bytes stored in the tenant's partitions.
    pub storage_bytes: Option<u64>,
    pub max_topics: Option<u64>,
    pub max_partitions: Option<u64>,
    /// Open client connections in the tenant.
    pub max_connections: Option<u64>,
}

impl From<core::TenantQuotas> for TenantQuotas {
    fn from(q: core::TenantQuotas) -> Self {
        TenantQuotas {
            publish_bytes_per_sec: q.publish_bytes_per_sec,
            publish_msgs_per_sec: q.publish_msgs_per_sec,
            consume_bytes_per_sec: q.consume_bytes_per_sec,
            storage_bytes: q.storage_bytes,
            max_topics: q.max_topics,
            max_partitions: q.max_partitions,
            max_connections: q.max_connections,
        }
    }
}

impl From<TenantQuotas> for core::TenantQuotas {
    fn from(q: TenantQuotas) -> Self {
        core::TenantQuotas {
            publish_bytes_per_sec: q.publish_bytes_per_sec,
            publish_msgs_per_sec: q.publish_msgs_per_sec,
            consume_bytes_per_sec: q.consume_bytes_per_sec,
            storage_bytes: q.storage_bytes,
            max_topics: q.max_topics,
            max_partitions: q.max_partitions,
            max_connections: q.max_connections,
        }
    }
}

/// One quota, by name; in the order of the core's `TenantQuotas::NAMES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Quota {
    PublishBytesPerSec,
    PublishMsgsPerSec,
    ConsumeBytesPerSec,
    StorageBytes,
    MaxTopics,
    MaxPartitions,
    MaxConnections,
}

impl Quota {
    /// Its name as the broker, the CLI and `rapidmq-quota` spell it.
    fn name(self) -> &'static str {
        core::TenantQuotas::NAMES[self as usize]
    }
}

/// What a tenant uses now, on the node that answered.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TenantUsage {
    pub topics: u64,
    pub partitions: u64,
    pub storage_bytes: u64,
    pub connections: u64,
    pub users: u64,
}

/// A tenant, its quotas in effect and its usage.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TenantInfo {
    pub name: String,
    /// Every quota set, to the value in effect (0: unlimited).
    pub quotas: TenantQuotas,
    pub usage: TenantUsage,
    /// When it was created, ms since the Unix epoch (0 for `default`).
    pub created_at_ms: u64,
}

impl From<core::TenantInfo> for TenantInfo {
    fn from(t: core::TenantInfo) -> Self {
        TenantInfo {
            name: t.name,
            quotas: t.quotas.into(),
            usage: TenantUsage {
                topics: t.usage.topics,
                partitions: t.usage.partitions,
                storage_bytes: t.usage.storage_bytes,
                connections: t.usage.connections,
                users: t.usage.users,
            },
            created_at_ms: t.created_at_ms,
        }
    }
}

/// One audit record; repeated failures from one source are coalesced into one with a `count`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditEvent {
    /// Opaque and ordered.
    pub id: String,
    pub ts_ms: u64,
    pub node: u32,
    pub tenant: String,
    /// `tenant/user`, `token:<id>` or `anonymous`.
    pub actor: String,
    pub source_addr: String,
    /// `grpc` or `http`.
    pub transport: String,
    /// Dotted and stable, e.g. `auth.login`, `role.bind`, `tenant.create`.
    pub action: String,
    /// What it acted on, e.g. `topic:orders`.
    pub target: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub detail: String,
    pub count: u64,
}

impl From<core::AuditEvent> for AuditEvent {
    fn from(e: core::AuditEvent) -> Self {
        AuditEvent {
            id: e.id,
            ts_ms: e.ts_ms,
            node: e.node,
            tenant: e.tenant,
            actor: e.actor,
            source_addr: e.source_addr,
            transport: e.transport,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            detail: e.detail,
            count: e.count,
        }
    }
}

/// Which audit records to list; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct AuditQuery {
    /// Inclusive lower bound on `ts_ms`.
    pub since_ms: Option<u64>,
    /// Exclusive upper bound on `ts_ms`.
    pub until_ms: Option<u64>,
    pub actor: Option<String>,
    /// e.g. `auth.` or `topic.delete`.
    pub action_prefix: Option<String>,
    pub outcome: Option<String>,
    /// At most this many per page (`None`: 100; the broker caps it at 1000).
    pub limit: Option<u32>,
    /// From a previous page's `next_page_token`.
    pub page_token: Option<String>,
}

impl From<AuditQuery> for core::AuditQuery {
    fn from(q: AuditQuery) -> Self {
        core::AuditQuery {
            since_ms: q.since_ms,
            until_ms: q.until_ms,
            actor: q.actor,
            action_prefix: q.action_prefix,
            outcome: q.outcome,
            limit: q.limit,
            page_token: q.page_token,
        }
    }
}

/// A page of audit records, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// `None` when there is nothing more.
    pub next_page_token: Option<String>,
}

#[uniffi::export]
impl NativeAdmin {
    /// Creates a tenant (a cluster admin only); unset quotas take the broker's defaults.
    pub async fn create_tenant(&self, name: String, quotas: TenantQuotas) -> Result<TenantInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let quotas = core::TenantQuotas::from(quotas);
            admin.create_tenant(name, &quotas).await.map(Into::into)
        })
        .await
    }

    /// Deletes an empty tenant (a cluster admin only).
    pub async fn delete_tenant(&self, name: String) -> Result<()> {
        let admin = self.core.clone();
        on_runtime(
            &self.runtime,
            async move { admin.delete_tenant(name).await },
        )
        .await
    }

    /// Every tenant, by name (a cluster admin only).
    pub async fn list_tenants(&self) -> Result<Vec<TenantInfo>> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let tenants = admin.list_tenants().await?;
            Ok(tenants.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// A tenant's quotas in effect and its usage; `None`: the caller's tenant.
    pub async fn describe_tenant(&self, name: Option<String>) -> Result<TenantInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.describe_tenant(name).await.map(Into::into)
        })
        .await
    }

    /// Changes some of a tenant's quotas (a cluster admin only): the set ones replace, those in
    /// `reset` go back to the broker's defaults, the rest stay.
    pub async fn set_tenant_quotas(
        &self,
        name: String,
        quotas: TenantQuotas,
        reset: Vec<Quota>,
    ) -> Result<TenantInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let quotas = core::TenantQuotas::from(quotas);
            let reset: Vec<String> = reset.into_iter().map(|q| q.name().to_string()).collect();
            admin
                .set_tenant_quotas(name, &quotas, &reset)
                .await
                .map(Into::into)
        })
        .await
    }

    /// One page of the audit log, oldest first.
    pub async fn list_audit_events(&self, query: AuditQuery) -> Result<AuditPage> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let page = admin.list_audit_events(&query.into()).await?;
            Ok(AuditPage {
                events: page.events.into_iter().map(Into::into).collect(),
                next_page_token: page.next_page_token,
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_names_follow_the_core_table() {
        use Quota::*;
        let quotas = [
            (PublishBytesPerSec, "publish_bytes_per_sec"),
            (PublishMsgsPerSec, "publish_msgs_per_sec"),
            (ConsumeBytesPerSec, "consume_bytes_per_sec"),
            (StorageBytes, "storage_bytes"),
            (MaxTopics, "max_topics"),
            (MaxPartitions, "max_partitions"),
            (MaxConnections, "max_connections"),
        ];
        assert_eq!(quotas.len(), core::TenantQuotas::NAMES.len());
        for (quota, name) in quotas {
            assert_eq!(quota.name(), name);
        }
    }
}
