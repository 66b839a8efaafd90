//! Tenants, their quotas and the audit log, as the admin API returns them
//! (docs/adr/0004-security.md §7–§9).

use rapidmq_proto::v1;

/// A tenant's limits. In a request `None` leaves a quota as it is (or at the broker's default);
/// in a [`TenantInfo`] every field is set to the value in effect. `Some(0)` means unlimited.
/// Rates are per broker node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

impl TenantQuotas {
    /// The quota names, as the broker, the CLI and `rapidmq-quota` spell them.
    pub const NAMES: [&'static str; 7] = [
        "publish_bytes_per_sec",
        "publish_msgs_per_sec",
        "consume_bytes_per_sec",
        "storage_bytes",
        "max_topics",
        "max_partitions",
        "max_connections",
    ];

    /// The quota called `name` (one of [`TenantQuotas::NAMES`]).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Option<u64>> {
        Some(match name {
            "publish_bytes_per_sec" => &mut self.publish_bytes_per_sec,
            "publish_msgs_per_sec" => &mut self.publish_msgs_per_sec,
            "consume_bytes_per_sec" => &mut self.consume_bytes_per_sec,
            "storage_bytes" => &mut self.storage_bytes,
            "max_topics" => &mut self.max_topics,
            "max_partitions" => &mut self.max_partitions,
            "max_connections" => &mut self.max_connections,
            _ => return None,
        })
    }

    /// Each quota with its name, in [`TenantQuotas::NAMES`] order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, Option<u64>)> {
        let values = [
            self.publish_bytes_per_sec,
            self.publish_msgs_per_sec,
            self.consume_bytes_per_sec,
            self.storage_bytes,
            self.max_topics,
            self.max_partitions,
            self.max_connections,
        ];
        Self::NAMES.into_iter().zip(values)
    }
}

/// What a tenant uses now, on the node that answered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantUsage {
    pub topics: u64,
    pub partitions: u64,
    pub storage_bytes: u64,
    pub connections: u64,
    pub users: u64,
}

/// A tenant, its quotas in effect and its usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantInfo {
    pub name: String,
    pub quotas: TenantQuotas,
    pub usage: TenantUsage,
    /// When it was created, in ms since the Unix epoch (0 for `default`).
    pub created_at_ms: u64,
}

/// One audit record; repeated failures from one source are coalesced into one with a `count`.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Dotted and stable, e.g. `auth.login`, `role.bind`, `topic.delete`.
    pub action: String,
    /// What it acted on, e.g. `topic:orders`.
    pub target: String,
    /// `ok`, `denied` or `failed`.
    pub outcome: String,
    pub detail: String,
    pub count: u64,
}

/// Which audit records to list; every filter is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

/// A page of audit records, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    /// `None` when there is nothing more.
    pub next_page_token: Option<String>,
}

impl From<&TenantQuotas> for v1::TenantQuotas {
    fn from(q: &TenantQuotas) -> Self {
        v1::TenantQuotas {
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

impl From<v1::TenantQuotas> for TenantQuotas {
    fn from(q: v1::TenantQuotas) -> Self {
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

impl From<v1::TenantInfo> for TenantInfo {
    fn from(t: v1::TenantInfo) -> Self {
        let usage = t.usage.unwrap_or_default();
        TenantInfo {
            name: t.name,
            quotas: t.quotas.map(TenantQuotas::from).unwrap_or_default(),
            usage: TenantUsage {
                topics: usage.topics,
                partitions: usage.partitions,
                storage_bytes: usage.storage_bytes,
                connections: usage.connections,
                users: usage.users,
            },
            created_at_ms: t.created_at_ms,
        }
    }
}

impl From<v1::AuditEvent> for AuditEvent {
    fn from(e: v1::AuditEvent) -> Self {
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

impl From<&AuditQuery> for v1::ListAuditEventsRequest {
    fn from(q: &AuditQuery) -> Self {
        v1::ListAuditEventsRequest {
            since_ms: q.since_ms,
            until_ms: q.until_ms,
            actor: q.actor.clone().unwrap_or_default(),
            action_prefix: q.action_prefix.clone().unwrap_or_default(),
            outcome: q.outcome.clone().unwrap_or_default(),
            limit: q.limit.unwrap_or(0),
            page_token: q.page_token.clone().unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_quota_name_reaches_its_field() {
        let mut quotas = TenantQuotas::default();
        for (i, name) in TenantQuotas::NAMES.iter().enumerate() {
            *quotas.get_mut(name).unwrap() = Some(i as u64 + 1);
        }
        let values: Vec<_> = quotas.iter().map(|(_, v)| v.unwrap()).collect();
        assert_eq!(values, (1..=7).collect::<Vec<u64>>());
        assert!(quotas.get_mut("bogus").is_none());
        let wire = v1::TenantQuotas::from(&quotas);
        assert_eq!(TenantQuotas::from(wire), quotas);
    }
}
