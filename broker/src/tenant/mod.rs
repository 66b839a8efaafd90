//! Tenants and their quotas (docs/adr/0004-security.md §7–§8).
//!
//! A tenant is a namespace: topics, subscriptions, users and roles live inside one, keyed by its
//! name. [`Tenants`] holds every tenant's [`TenantRecord`] and its [`TenantRuntime`]: the token
//! buckets for the rate quotas, the bytes its partitions store and its open connections. The
//! engine asks the runtime before a publish or a delivery; the authentication layer counts a
//! connection towards the tenant of its first request ([`ConnectionTenant`]).
//!
//! - `records`: the durable record (`tenant/<name>` in `meta`) and the quota names.
//! - `bucket`: a token bucket that may go into debt.

mod bucket;
mod records;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::RwLock;

pub use bucket::Bucket;
pub use records::{EffectiveQuotas, Quota, TENANT_PREFIX, TenantQuotas, TenantRecord, tenant_key};

use crate::config::QuotaDefaults;
use crate::error::{Error, Result};
use crate::principal::DEFAULT_TENANT;

/// What one tenant spends now, on this node, and the limits it runs with.
pub struct TenantRuntime {
    name: String,
    quotas: RwLock<EffectiveQuotas>,
    publish_bytes: Bucket,
    publish_msgs: Bucket,
    consume_bytes: Bucket,
    /// Bytes stored in the tenant's partitions, kept by the partitions themselves.
    storage: Arc<AtomicU64>,
    connections: AtomicU64,
}

impl TenantRuntime {
    fn new(name: &str, quotas: EffectiveQuotas) -> TenantRuntime {
        TenantRuntime {
            name: name.to_string(),
            publish_bytes: Bucket::new(quotas.publish_bytes_per_sec),
            publish_msgs: Bucket::new(quotas.publish_msgs_per_sec),
            consume_bytes: Bucket::new(quotas.consume_bytes_per_sec),
            quotas: RwLock::new(quotas),
            storage: Arc::default(),
            connections: AtomicU64::new(0),
        }
    }

    fn set_quotas(&self, quotas: EffectiveQuotas) {
        self.publish_bytes.set_rate(quotas.publish_bytes_per_sec);
        self.publish_msgs.set_rate(quotas.publish_msgs_per_sec);
        self.consume_bytes.set_rate(quotas.consume_bytes_per_sec);
        *self.quotas.write() = quotas;
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn quotas(&self) -> EffectiveQuotas {
        *self.quotas.read()
    }

    /// The counter the tenant's partitions add their stored bytes to.
    pub fn storage_counter(&self) -> Arc<AtomicU64> {
        self.storage.clone()
    }

    pub fn storage_bytes(&self) -> u64 {
        self.storage.load(Ordering::Relaxed)
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// How long a publish of `messages` and `bytes` waits to keep to the publish rates (it
    /// is counted now). For streams, which wait rather than refuse.
    pub fn publish_delay(&self, messages: u64, bytes: u64) -> Duration {
        let by_bytes = self.publish_bytes.take(bytes);
        let by_messages = self.publish_msgs.take(messages);
        by_bytes.max(by_messages)
    }

    /// Admits a publish under the publish rates, or refuses it (`RESOURCE_EXHAUSTED` naming the
    /// quota, with the wait as the hint). For unary and REST publishes.
    pub fn admit_publish(&self, messages: u64, bytes: u64) -> Result<()> {
        self.publish_bytes
            .try_take(bytes)
            .map_err(|wait| over_rate(Quota::PublishBytesPerSec, wait))?;
        self.publish_msgs
            .try_take(messages)
            .map_err(|wait| over_rate(Quota::PublishMsgsPerSec, wait))
    }

    /// Waits while the tenant is over its consume rate, at most `within` (`None`: as long as
    /// it takes). Whether the tenant may consume now. Cancel-safe.
    pub async fn consume_pause(&self, within: Option<Duration>) -> bool {
        let debt = self.consume_bytes.debt();
        if debt.is_zero() {
            return true;
        }
        let wait = within.map_or(debt, |within| debt.min(within));
        tokio::time::sleep(wait).await;
        wait == debt
    }

    /// Counts `bytes` delivered against the consume rate.
    pub fn consumed(&self, bytes: u64) {
        self.consume_bytes.take(bytes);
    }

    /// Refuses a publish while the tenant stores its `storage_bytes` quota or more. The stored
    /// bytes shrink only through retention, so the hint is the retention check interval.
    pub fn check_storage(&self, retry_after: Duration) -> Result<()> {
        let quota = self.quotas().storage_bytes;
        let stored = self.storage_bytes();
        if quota != 0 && stored >= quota {
            return Err(Error::quota_exceeded(
                Quota::StorageBytes,
                format!(
                    "the tenant stores {stored} bytes, its storage quota is {quota} (storage_bytes): publishes resume once retention frees space"
                ),
                retry_after,
            ));
        }
        Ok(())
    }

    /// Counts one more connection, or refuses it at `max_connections`.
    fn admit_connection(&self) -> Result<()> {
        let max = self.quotas().max_connections;
        let admitted = self
            .connections
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (max == 0 || n < max).then_some(n + 1)
            });
        admitted.map(|_| ()).map_err(|open| {
            Error::quota_exceeded(
                Quota::MaxConnections,
                format!(
                    "the tenant has {open} connections open, its quota (max_connections); close one first"
                ),
                Duration::from_secs(1),
            )
        })
    }
}

fn over_rate(quota: Quota, wait: Duration) -> Error {
    Error::quota_exceeded(
        quota,
        format!(
            "the tenant is over its {} quota: retry in {} ms",
            quota.name(),
            wait.as_millis().max(1)
        ),
        wait,
    )
}

impl Error {
    /// A tenant quota refused the request: `RESOURCE_EXHAUSTED` with `rapidmq-quota` and a
    /// `retry-after-ms` hint.
    pub fn quota_exceeded(quota: Quota, message: String, retry_after: Duration) -> Error {
        Error::resource_exhausted(message)
            .with_retry_after(retry_after.max(Duration::from_millis(1)))
            .with_quota(quota.name())
    }
}

/// The tenant a client connection counts towards: set by the first request that names one,
/// released when the connection's last handle drops.
#[derive(Debug, Clone, Default)]
pub struct ConnectionTenant(Arc<OnceLock<ConnectionLease>>);

struct ConnectionLease(Arc<TenantRuntime>);

impl std::fmt::Debug for ConnectionLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.name)
    }
}

impl Drop for ConnectionLease {
    fn drop(&mut self) {
        self.0.connections.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnectionTenant {
    /// Counts the connection towards `runtime` if it counts towards none yet.
    pub fn count(&self, runtime: &Arc<TenantRuntime>) -> Result<()> {
        if self.0.get().is_some() {
            return Ok(());
        }
        runtime.admit_connection()?;
        // A concurrent first request may have won; its lease counts and ours is dropped.
        let _ = self.0.set(ConnectionLease(runtime.clone()));
        Ok(())
    }
}

struct Tenant {
    record: TenantRecord,
    runtime: Arc<TenantRuntime>,
}

/// Every tenant of the broker. `default` always exists.
pub struct Tenants {
    defaults: QuotaDefaults,
    tenants: RwLock<BTreeMap<String, Tenant>>,
}

impl Tenants {
    pub fn new(defaults: QuotaDefaults) -> Tenants {
        let tenants = Tenants {
            defaults,
            tenants: RwLock::new(BTreeMap::new()),
        };
        tenants.put(TenantRecord {
            name: DEFAULT_TENANT.to_string(),
            quotas: TenantQuotas::default(),
            created_at_ms: 0,
        });
        tenants
    }

    pub fn defaults(&self) -> &QuotaDefaults {
        &self.defaults
    }

    pub fn exists(&self, name: &str) -> bool {
        self.tenants.read().contains_key(name)
    }

    pub fn record(&self, name: &str) -> Option<TenantRecord> {
        self.tenants.read().get(name).map(|t| t.record.clone())
    }

    pub fn records(&self) -> Vec<TenantRecord> {
        self.tenants
            .read()
            .values()
            .map(|t| t.record.clone())
            .collect()
    }

    /// The tenant's runtime. A tenant without a record (topics recovered from before tenants
    /// had records) gets one with the default quotas, so every partition has a counter.
    pub fn runtime(&self, name: &str) -> Arc<TenantRuntime> {
        if let Some(tenant) = self.tenants.read().get(name) {
            return tenant.runtime.clone();
        }
        let quotas = TenantQuotas::default().effective(&self.defaults);
        Arc::new(TenantRuntime::new(name, quotas))
    }

    /// The runtime of an existing tenant.
    pub fn get(&self, name: &str) -> Option<Arc<TenantRuntime>> {
        self.tenants.read().get(name).map(|t| t.runtime.clone())
    }

    /// Creates or updates a tenant from its record (live changes and recovery alike). An
    /// existing tenant keeps its runtime (buckets, counters) and takes the new quotas.
    pub fn put(&self, record: TenantRecord) {
        let quotas = record.quotas.effective(&self.defaults);
        let mut tenants = self.tenants.write();
        match tenants.get_mut(&record.name) {
            Some(tenant) => {
                tenant.runtime.set_quotas(quotas);
                tenant.record = record;
            }
            None => {
                let runtime = Arc::new(TenantRuntime::new(&record.name, quotas));
                tenants.insert(record.name.clone(), Tenant { record, runtime });
            }
        }
    }

    pub fn delete(&self, name: &str) {
        if name != DEFAULT_TENANT {
            self.tenants.write().remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str, quotas: TenantQuotas) -> TenantRecord {
        TenantRecord {
            name: name.into(),
            quotas,
            created_at_ms: 1,
        }
    }

    #[test]
    fn a_connection_counts_once_until_it_is_dropped_and_the_quota_holds() {
        let tenants = Tenants::new(QuotaDefaults::default());
        let mut quotas = TenantQuotas::default();
        quotas.set(Quota::MaxConnections, Some(1));
        tenants.put(record("acme", quotas));
        let acme = tenants.get("acme").unwrap();
        let first = ConnectionTenant::default();
        first.count(&acme).unwrap();
        first.clone().count(&acme).unwrap();
        assert_eq!(acme.connections(), 1, "a second request of one connection");
        let err = ConnectionTenant::default().count(&acme).unwrap_err();
        assert_eq!(err.code(), rapidmq_proto::ErrorCode::ResourceExhausted);
        drop(first);
        assert_eq!(acme.connections(), 0);
    }

    #[test]
    fn an_update_keeps_the_runtime_and_takes_the_new_quotas() {
        let tenants = Tenants::new(QuotaDefaults {
            storage_bytes: 10,
            ..QuotaDefaults::default()
        });
        tenants.put(record("acme", TenantQuotas::default()));
        let before = tenants.get("acme").unwrap();
        before.storage_counter().fetch_add(10, Ordering::Relaxed);
        assert!(before.check_storage(Duration::from_secs(1)).is_err());
        let mut quotas = TenantQuotas::default();
        quotas.set(Quota::StorageBytes, Some(0));
        tenants.put(record("acme", quotas));
        let after = tenants.get("acme").unwrap();
        assert!(Arc::ptr_eq(&before, &after));
        assert!(after.check_storage(Duration::from_secs(1)).is_ok());
        assert!(tenants.exists("default"));
        tenants.delete("default");
        assert!(tenants.exists("default"), "default always exists");
    }
}
