//! Tenants, their quotas and the audit log, as Python classes. A quota is `Optional[int]` at
//! every step, so `None` (leave it, or the broker's default) and `0` (unlimited) stay apart.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use rapidmq_core as core;

/// A tenant's limits. In a request `None` leaves a quota as it is (or at the broker's default);
/// in a `TenantInfo` every one is set, to the value in effect. `0` means unlimited. Rates are
/// per broker node.
#[pyclass(module = "rapidmq", name = "TenantQuotas", frozen, get_all, eq, hash)]
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct TenantQuotas {
    publish_bytes_per_sec: Option<u64>,
    publish_msgs_per_sec: Option<u64>,
    consume_bytes_per_sec: Option<u64>,
    /// Bytes stored in the tenant's partitions.
    storage_bytes: Option<u64>,
    max_topics: Option<u64>,
    max_partitions: Option<u64>,
    /// Open client connections in the tenant.
    max_connections: Option<u64>,
}

#[pymethods]
impl TenantQuotas {
    #[new]
    #[pyo3(signature = (
        *, publish_bytes_per_sec=None, publish_msgs_per_sec=None, consume_bytes_per_sec=None,
        storage_bytes=None, max_topics=None, max_partitions=None, max_connections=None
    ))]
    fn new(
        publish_bytes_per_sec: Option<u64>,
        publish_msgs_per_sec: Option<u64>,
        consume_bytes_per_sec: Option<u64>,
        storage_bytes: Option<u64>,
        max_topics: Option<u64>,
        max_partitions: Option<u64>,
        max_connections: Option<u64>,
    ) -> Self {
        TenantQuotas {
            publish_bytes_per_sec,
            publish_msgs_per_sec,
            consume_bytes_per_sec,
            storage_bytes,
            max_topics,
            max_partitions,
            max_connections,
        }
    }

    /// The quota names, as the broker, the CLI and `reset` spell them.
    #[classattr]
    #[allow(non_snake_case)]
    fn NAMES(py: Python<'_>) -> PyResult<Bound<'_, PyTuple>> {
        PyTuple::new(py, core::TenantQuotas::NAMES)
    }

    fn __repr__(&self) -> String {
        let set: Vec<String> = core::TenantQuotas::from(self)
            .iter()
            .filter_map(|(name, value)| value.map(|v| format!("{name}={v}")))
            .collect();
        format!("TenantQuotas({})", set.join(", "))
    }
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

impl From<&TenantQuotas> for core::TenantQuotas {
    fn from(q: &TenantQuotas) -> Self {
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

/// What a tenant uses now, on the node that answered.
#[pyclass(module = "rapidmq", name = "TenantUsage", frozen, get_all, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TenantUsage {
    topics: u64,
    partitions: u64,
    storage_bytes: u64,
    connections: u64,
    users: u64,
}

#[pymethods]
impl TenantUsage {
    fn __repr__(&self) -> String {
        format!(
            "TenantUsage(topics={}, partitions={}, storage_bytes={}, connections={}, users={})",
            self.topics, self.partitions, self.storage_bytes, self.connections, self.users
        )
    }
}

/// A tenant, its quotas in effect and its usage.
#[pyclass(module = "rapidmq", name = "TenantInfo", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct TenantInfo {
    /// The tenant name.
    name: String,
    /// Every quota set, to the value in effect (0: unlimited).
    quotas: TenantQuotas,
    /// What it uses now.
    usage: TenantUsage,
    /// When it was created, ms since the epoch (0 for `default`).
    created_at_ms: u64,
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

#[pymethods]
impl TenantInfo {
    fn __repr__(&self) -> String {
        format!(
            "TenantInfo(name='{}', quotas={}, usage={})",
            self.name,
            self.quotas.__repr__(),
            self.usage.__repr__()
        )
    }
}

/// One audit record; repeated failures from one source are coalesced into one with a `count`.
#[pyclass(module = "rapidmq", name = "AuditEvent", frozen, get_all, eq, hash)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AuditEvent {
    /// Opaque and ordered.
    id: String,
    /// When, ms since the epoch.
    ts_ms: u64,
    /// The broker node that recorded it.
    node: u32,
    /// The tenant acted in.
    tenant: String,
    /// `tenant/user`, `token:<id>` or `anonymous`.
    actor: String,
    /// The client's address.
    source_addr: String,
    /// `grpc` or `http`.
    transport: String,
    /// Dotted and stable, e.g. `auth.login`, `role.bind`, `tenant.create`.
    action: String,
    /// What it acted on, e.g. `topic:orders`.
    target: String,
    /// `ok`, `denied` or `failed`.
    outcome: String,
    detail: String,
    /// How many occurrences this record stands for.
    count: u64,
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

#[pymethods]
impl AuditEvent {
    fn __repr__(&self) -> String {
        format!(
            "AuditEvent(ts_ms={}, actor='{}', action='{}', target='{}', outcome='{}', count={})",
            self.ts_ms, self.actor, self.action, self.target, self.outcome, self.count
        )
    }
}

/// A page of audit records, oldest first.
#[pyclass(module = "rapidmq", name = "AuditPage", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct AuditPage {
    /// The records.
    events: Vec<AuditEvent>,
    /// Pass it as `page_token` for the next page; `None` when there is nothing more.
    next_page_token: Option<String>,
}

impl From<core::AuditPage> for AuditPage {
    fn from(p: core::AuditPage) -> Self {
        AuditPage {
            events: p.events.into_iter().map(AuditEvent::from).collect(),
            next_page_token: p.next_page_token,
        }
    }
}

#[pymethods]
impl AuditPage {
    fn __repr__(&self) -> String {
        format!(
            "AuditPage(events=<{} events>, next_page_token={:?})",
            self.events.len(),
            self.next_page_token
        )
    }
}
