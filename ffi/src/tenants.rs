//! Tenants, their quotas and the audit log (docs/security.md): `rapidmq_admin_create_tenant`, the
//! rest of tenant administration and `rapidmq_admin_list_audit_events`. Quotas cross the ABI as
//! one array indexed by `RapidmqQuota`, each slot set or not, so "leave it" (unset) and
//! "unlimited" (set to 0) stay apart. Results are freed with their `_free` function.

use rapidmq_core as core;
use rapidmq_core::TenantQuotas;

use crate::admin::{admin_call, optional, text, texts};
use crate::arena::{Arena, Owned};
use crate::buffer::{RapidmqSlice, RapidmqStr};
use crate::cancel::RapidmqCancel;
use crate::client::RapidmqClient;
use crate::error::{FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};

/// Number of quotas: the length of `RapidmqTenantQuotas.quotas`.
pub const RAPIDMQ_QUOTA_COUNT: usize = 7;

/// A quota's slot in `RapidmqTenantQuotas.quotas`. The names are the broker's and the CLI's
/// (`publish_bytes_per_sec`, ...), also the value of `reset` in
/// `rapidmq_admin_set_tenant_quotas`.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RapidmqQuota {
    /// `publish_bytes_per_sec`: bytes published per second, per node.
    RAPIDMQ_QUOTA_PUBLISH_BYTES_PER_SEC = 0,
    /// `publish_msgs_per_sec`: messages published per second, per node.
    RAPIDMQ_QUOTA_PUBLISH_MSGS_PER_SEC = 1,
    /// `consume_bytes_per_sec`: bytes consumed per second, per node.
    RAPIDMQ_QUOTA_CONSUME_BYTES_PER_SEC = 2,
    /// `storage_bytes`: bytes stored in the tenant's partitions.
    RAPIDMQ_QUOTA_STORAGE_BYTES = 3,
    /// `max_topics`.
    RAPIDMQ_QUOTA_MAX_TOPICS = 4,
    /// `max_partitions`.
    RAPIDMQ_QUOTA_MAX_PARTITIONS = 5,
    /// `max_connections`: open client connections in the tenant.
    RAPIDMQ_QUOTA_MAX_CONNECTIONS = 6,
}

/// One quota: `set` false means unset (a request leaves it as it is or at the broker's
/// default); a set `value` of 0 means unlimited.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct RapidmqQuotaValue {
    /// Whether `value` is set.
    pub set: bool,
    /// The limit (0: unlimited).
    pub value: u64,
}

/// A tenant's quotas, indexed by `RapidmqQuota`. In a `RapidmqTenantInfo` every one is set, to
/// the value in effect. Rates are per broker node.
#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct RapidmqTenantQuotas {
    /// The quotas, in `RapidmqQuota` order.
    pub quotas: [RapidmqQuotaValue; RAPIDMQ_QUOTA_COUNT],
}

impl From<&TenantQuotas> for RapidmqTenantQuotas {
    fn from(q: &TenantQuotas) -> Self {
        let mut out = RapidmqTenantQuotas::default();
        for (slot, (_, value)) in out.quotas.iter_mut().zip(q.iter()) {
            *slot = RapidmqQuotaValue {
                set: value.is_some(),
                value: value.unwrap_or(0),
            };
        }
        out
    }
}

impl From<&RapidmqTenantQuotas> for TenantQuotas {
    fn from(q: &RapidmqTenantQuotas) -> Self {
        let mut out = TenantQuotas::default();
        for (name, slot) in TenantQuotas::NAMES.iter().zip(q.quotas) {
            if let Some(field) = out.get_mut(name) {
                *field = slot.set.then_some(slot.value);
            }
        }
        out
    }
}

/// What a tenant uses now, on the node that answered.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqTenantUsage {
    /// Topics.
    pub topics: u64,
    /// Partitions over all its topics.
    pub partitions: u64,
    /// Bytes stored in its partitions.
    pub storage_bytes: u64,
    /// Open client connections.
    pub connections: u64,
    /// Users.
    pub users: u64,
}

/// A tenant, its quotas in effect and its usage.
#[repr(C)]
pub struct RapidmqTenantInfo {
    /// The tenant name.
    pub name: RapidmqSlice,
    /// The quotas in effect (all set; 0: unlimited).
    pub quotas: RapidmqTenantQuotas,
    /// What it uses now.
    pub usage: RapidmqTenantUsage,
    /// When it was created, ms since the Unix epoch (0 for `default`).
    pub created_at_ms: u64,
}

/// Tenants returned by `rapidmq_admin_list_tenants`; free with `rapidmq_tenant_list_free`.
#[repr(C)]
pub struct RapidmqTenantList {
    /// The tenants, by name.
    pub items: *const RapidmqTenantInfo,
    /// Number of tenants.
    pub len: usize,
}

/// Which audit records `rapidmq_admin_list_audit_events` lists; every filter is optional (an
/// empty string or a `has_*` of false: any).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RapidmqAuditQuery {
    /// Whether `since_ms` is set.
    pub has_since_ms: bool,
    /// Inclusive lower bound on `ts_ms`.
    pub since_ms: u64,
    /// Whether `until_ms` is set.
    pub has_until_ms: bool,
    /// Exclusive upper bound on `ts_ms`.
    pub until_ms: u64,
    /// `tenant/user`, `token:<id>` or `anonymous`.
    pub actor: RapidmqStr,
    /// e.g. `auth.` or `topic.delete`.
    pub action_prefix: RapidmqStr,
    /// `ok`, `denied` or `failed`.
    pub outcome: RapidmqStr,
    /// At most this many per page (0: 100; the broker caps it at 1000).
    pub limit: u32,
    /// The `next_page_token` of the previous page; empty: from the start.
    pub page_token: RapidmqStr,
}

impl RapidmqAuditQuery {
    fn to_core(self) -> FfiResult<core::AuditQuery> {
        Ok(core::AuditQuery {
            since_ms: self.has_since_ms.then_some(self.since_ms),
            until_ms: self.has_until_ms.then_some(self.until_ms),
            actor: optional(self.actor, "actor")?,
            action_prefix: optional(self.action_prefix, "action_prefix")?,
            outcome: optional(self.outcome, "outcome")?,
            limit: (self.limit > 0).then_some(self.limit),
            page_token: optional(self.page_token, "page_token")?,
        })
    }
}

/// One audit record; repeated failures from one source are coalesced into one with a `count`.
#[repr(C)]
pub struct RapidmqAuditEvent {
    /// Opaque and ordered.
    pub id: RapidmqSlice,
    /// When, ms since the Unix epoch.
    pub ts_ms: u64,
    /// The node that recorded it.
    pub node: u32,
    /// The tenant acted in.
    pub tenant: RapidmqSlice,
    /// `tenant/user`, `token:<id>` or `anonymous`.
    pub actor: RapidmqSlice,
    /// The client's address.
    pub source_addr: RapidmqSlice,
    /// `grpc` or `http`.
    pub transport: RapidmqSlice,
    /// Dotted and stable, e.g. `auth.login`, `role.bind`, `tenant.create`.
    pub action: RapidmqSlice,
    /// What it acted on, e.g. `topic:orders`.
    pub target: RapidmqSlice,
    /// `ok`, `denied` or `failed`.
    pub outcome: RapidmqSlice,
    /// Free text.
    pub detail: RapidmqSlice,
    /// How many occurrences this record stands for.
    pub count: u64,
}

/// One page of audit records returned by `rapidmq_admin_list_audit_events`, oldest first; free
/// with `rapidmq_audit_page_free`.
#[repr(C)]
pub struct RapidmqAuditPage {
    /// The records.
    pub items: *const RapidmqAuditEvent,
    /// Number of records.
    pub len: usize,
    /// Pass it as `page_token` for the next page; empty when there is nothing more.
    pub next_page_token: RapidmqSlice,
}

fn tenant_info(arena: &mut Arena, t: core::TenantInfo) -> RapidmqTenantInfo {
    RapidmqTenantInfo {
        name: arena.bytes(t.name),
        quotas: RapidmqTenantQuotas::from(&t.quotas),
        usage: RapidmqTenantUsage {
            topics: t.usage.topics,
            partitions: t.usage.partitions,
            storage_bytes: t.usage.storage_bytes,
            connections: t.usage.connections,
            users: t.usage.users,
        },
        created_at_ms: t.created_at_ms,
    }
}

fn audit_event(arena: &mut Arena, e: core::AuditEvent) -> RapidmqAuditEvent {
    RapidmqAuditEvent {
        id: arena.bytes(e.id),
        ts_ms: e.ts_ms,
        node: e.node,
        tenant: arena.bytes(e.tenant),
        actor: arena.bytes(e.actor),
        source_addr: arena.bytes(e.source_addr),
        transport: arena.bytes(e.transport),
        action: arena.bytes(e.action),
        target: arena.bytes(e.target),
        outcome: arena.bytes(e.outcome),
        detail: arena.bytes(e.detail),
        count: e.count,
    }
}

fn tenant_out(out: *mut *mut RapidmqTenantInfo, info: core::TenantInfo) -> FfiResult<()> {
    let mut arena = Arena::default();
    let view = tenant_info(&mut arena, info);
    put(out, "out", Owned::into_raw(view, arena))
}

/// The quotas at `quotas`; NULL: none set.
fn quotas_in(quotas: *const RapidmqTenantQuotas) -> TenantQuotas {
    unsafe { quotas.as_ref() }
        .map(TenantQuotas::from)
        .unwrap_or_default()
}

/// Creates a tenant (a cluster admin only) with `quotas` (NULL or unset ones: the broker's
/// defaults); free the result with `rapidmq_tenant_info_free`. Errors: `TENANT_ALREADY_EXISTS`,
/// `INVALID_NAME`, `PERMISSION_DENIED`.
///
/// # Safety
/// `client` is live; `name` and `quotas` (or NULL) are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_create_tenant(
    client: *const RapidmqClient,
    name: RapidmqStr,
    quotas: *const RapidmqTenantQuotas,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTenantInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (name, quotas) = (text(name, "name")?, quotas_in(quotas));
        let info = admin_call(client, cancel, |a| async move {
            a.create_tenant(name, &quotas).await
        })?;
        tenant_out(out, info)
    })
}

/// Deletes an empty tenant (a cluster admin only). Errors: `TENANT_NOT_FOUND`,
/// `TENANT_NOT_EMPTY` (it still has topics or users), `INVALID_ARGUMENT` (`default`).
///
/// # Safety
/// `client` is live; `name` is readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_delete_tenant(
    client: *const RapidmqClient,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = text(name, "name")?;
        admin_call(
            client,
            cancel,
            |a| async move { a.delete_tenant(name).await },
        )
    })
}

/// Every tenant, by name (a cluster admin only); free with `rapidmq_tenant_list_free`.
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_tenants(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTenantList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let tenants = admin_call(client, cancel, |a| async move { a.list_tenants().await })?;
        let mut arena = Arena::default();
        let items: Vec<_> = tenants
            .into_iter()
            .map(|t| tenant_info(&mut arena, t))
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqTenantList { items, len }, arena),
        )
    })
}

/// A tenant's quotas in effect and its usage; `name` empty: the caller's tenant. Free with
/// `rapidmq_tenant_info_free`. Errors: `TENANT_NOT_FOUND`.
///
/// # Safety
/// `client` is live; `name` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_describe_tenant(
    client: *const RapidmqClient,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTenantInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = optional(name, "name")?;
        let info = admin_call(
            client,
            cancel,
            |a| async move { a.describe_tenant(name).await },
        )?;
        tenant_out(out, info)
    })
}

/// Changes some of a tenant's quotas (a cluster admin only): the set ones in `quotas` (NULL:
/// none) replace, the `reset_len` names at `reset` (`publish_bytes_per_sec`, ...) go back to the
/// broker's defaults, the rest stay. Free the result with `rapidmq_tenant_info_free`. Errors:
/// `TENANT_NOT_FOUND`, `INVALID_ARGUMENT` (an unknown name in `reset`).
///
/// # Safety
/// `client` is live; `name`, `quotas` (or NULL) and the `reset_len` strings at `reset` are
/// readable; `out` is writable.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "C" fn rapidmq_admin_set_tenant_quotas(
    client: *const RapidmqClient,
    name: RapidmqStr,
    quotas: *const RapidmqTenantQuotas,
    reset: *const RapidmqStr,
    reset_len: usize,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTenantInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (name, quotas) = (text(name, "name")?, quotas_in(quotas));
        let reset = texts(reset, reset_len, "reset")?;
        let info = admin_call(client, cancel, |a| async move {
            a.set_tenant_quotas(name, &quotas, &reset).await
        })?;
        tenant_out(out, info)
    })
}

/// One page of the audit log, oldest first, filtered by `query` (NULL: everything from the
/// start): the caller's tenant for a tenant admin, every tenant for a cluster admin. Free the
/// page with `rapidmq_audit_page_free`. Errors: `PERMISSION_DENIED`, `INVALID_ARGUMENT` (a page
/// token the broker did not issue).
///
/// # Safety
/// `client` is live; `query` (or NULL) and its strings are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_audit_events(
    client: *const RapidmqClient,
    query: *const RapidmqAuditQuery,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqAuditPage,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let query = match unsafe { query.as_ref() } {
            Some(q) => q.to_core()?,
            None => core::AuditQuery::default(),
        };
        let page = admin_call(client, cancel, |a| async move {
            a.list_audit_events(&query).await
        })?;
        let mut arena = Arena::default();
        let items: Vec<_> = page
            .events
            .into_iter()
            .map(|e| audit_event(&mut arena, e))
            .collect();
        let (items, len) = arena.array(items);
        let next_page_token = arena.bytes(page.next_page_token.unwrap_or_default());
        put(
            out,
            "out",
            Owned::into_raw(
                RapidmqAuditPage {
                    items,
                    len,
                    next_page_token,
                },
                arena,
            ),
        )
    })
}

/// Frees a tenant. NULL is ignored.
///
/// # Safety
/// `info` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_tenant_info_free(info: *mut RapidmqTenantInfo) {
    guard_or((), || unsafe { Owned::free(info) })
}

/// Frees a tenant list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_tenant_list_free(list: *mut RapidmqTenantList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// Frees a page of audit records. NULL is ignored.
///
/// # Safety
/// `page` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_audit_page_free(page: *mut RapidmqAuditPage) {
    guard_or((), || unsafe { Owned::free(page) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_slots_follow_the_core_names() {
        use RapidmqQuota::*;
        let slots = [
            (RAPIDMQ_QUOTA_PUBLISH_BYTES_PER_SEC, "publish_bytes_per_sec"),
            (RAPIDMQ_QUOTA_PUBLISH_MSGS_PER_SEC, "publish_msgs_per_sec"),
            (RAPIDMQ_QUOTA_CONSUME_BYTES_PER_SEC, "consume_bytes_per_sec"),
            (RAPIDMQ_QUOTA_STORAGE_BYTES, "storage_bytes"),
            (RAPIDMQ_QUOTA_MAX_TOPICS, "max_topics"),
            (RAPIDMQ_QUOTA_MAX_PARTITIONS, "max_partitions"),
            (RAPIDMQ_QUOTA_MAX_CONNECTIONS, "max_connections"),
        ];
        assert_eq!(slots.len(), TenantQuotas::NAMES.len());
        for (slot, name) in slots {
            assert_eq!(TenantQuotas::NAMES[slot as usize], name);
        }
    }

    #[test]
    fn unset_and_zero_quotas_stay_apart_both_ways() {
        let quotas = TenantQuotas {
            max_topics: Some(0),
            storage_bytes: Some(1 << 30),
            ..TenantQuotas::default()
        };
        let c = RapidmqTenantQuotas::from(&quotas);
        let topics = c.quotas[RapidmqQuota::RAPIDMQ_QUOTA_MAX_TOPICS as usize];
        assert_eq!(
            topics,
            RapidmqQuotaValue {
                set: true,
                value: 0
            }
        );
        let partitions = c.quotas[RapidmqQuota::RAPIDMQ_QUOTA_MAX_PARTITIONS as usize];
        assert!(!partitions.set);
        assert_eq!(TenantQuotas::from(&c), quotas);
    }
}
