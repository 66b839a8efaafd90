//! The durable tenant record, JSON in the `meta` column family under `tenant/<name>`
//! (docs/adr/0004-security.md §3, §7). `default` has a record only once its quotas are set.

use serde::{Deserialize, Serialize};

use crate::config::QuotaDefaults;

pub const TENANT_PREFIX: &[u8] = b"tenant/";

pub fn tenant_key(name: &str) -> Vec<u8> {
    format!("tenant/{name}").into_bytes()
}

/// A tenant's own quotas; `None` takes `[quota_defaults]`, 0 is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantQuotas {
    pub publish_bytes_per_sec: Option<u64>,
    pub publish_msgs_per_sec: Option<u64>,
    pub consume_bytes_per_sec: Option<u64>,
    pub storage_bytes: Option<u64>,
    pub max_topics: Option<u64>,
    pub max_partitions: Option<u64>,
    pub max_connections: Option<u64>,
}

/// Which quota: the name is API (`rapidmq-quota`, the problem member `quota`, the CLI flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub const ALL: [Quota; 7] = [
        Quota::PublishBytesPerSec,
        Quota::PublishMsgsPerSec,
        Quota::ConsumeBytesPerSec,
        Quota::StorageBytes,
        Quota::MaxTopics,
        Quota::MaxPartitions,
        Quota::MaxConnections,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Quota::PublishBytesPerSec => "publish_bytes_per_sec",
            Quota::PublishMsgsPerSec => "publish_msgs_per_sec",
            Quota::ConsumeBytesPerSec => "consume_bytes_per_sec",
            Quota::StorageBytes => "storage_bytes",
            Quota::MaxTopics => "max_topics",
            Quota::MaxPartitions => "max_partitions",
            Quota::MaxConnections => "max_connections",
        }
    }

    pub fn from_name(name: &str) -> Option<Quota> {
        Quota::ALL.into_iter().find(|q| q.name() == name)
    }
}

impl TenantQuotas {
    pub fn get(&self, quota: Quota) -> Option<u64> {
        *self.field(quota)
    }

    pub fn set(&mut self, quota: Quota, value: Option<u64>) {
        *self.field_mut(quota) = value;
    }

    fn field(&self, quota: Quota) -> &Option<u64> {
        match quota {
            Quota::PublishBytesPerSec => &self.publish_bytes_per_sec,
            Quota::PublishMsgsPerSec => &self.publish_msgs_per_sec,
            Quota::ConsumeBytesPerSec => &self.consume_bytes_per_sec,
            Quota::StorageBytes => &self.storage_bytes,
            Quota::MaxTopics => &self.max_topics,
            Quota::MaxPartitions => &self.max_partitions,
            Quota::MaxConnections => &self.max_connections,
        }
    }

    fn field_mut(&mut self, quota: Quota) -> &mut Option<u64> {
        match quota {
            Quota::PublishBytesPerSec => &mut self.publish_bytes_per_sec,
            Quota::PublishMsgsPerSec => &mut self.publish_msgs_per_sec,
            Quota::ConsumeBytesPerSec => &mut self.consume_bytes_per_sec,
            Quota::StorageBytes => &mut self.storage_bytes,
            Quota::MaxTopics => &mut self.max_topics,
            Quota::MaxPartitions => &mut self.max_partitions,
            Quota::MaxConnections => &mut self.max_connections,
        }
    }

    /// Every quota in effect: the tenant's own value, else the default.
    pub fn effective(&self, defaults: &QuotaDefaults) -> EffectiveQuotas {
        let d = |own: Option<u64>, default: u64| own.unwrap_or(default);
        EffectiveQuotas {
            publish_bytes_per_sec: d(self.publish_bytes_per_sec, defaults.publish_bytes_per_sec),
            publish_msgs_per_sec: d(self.publish_msgs_per_sec, defaults.publish_msgs_per_sec),
            consume_bytes_per_sec: d(self.consume_bytes_per_sec, defaults.consume_bytes_per_sec),
            storage_bytes: d(self.storage_bytes, defaults.storage_bytes),
            max_topics: d(self.max_topics, defaults.max_topics),
            max_partitions: d(self.max_partitions, defaults.max_partitions),
            max_connections: d(self.max_connections, defaults.max_connections),
        }
    }
}

/// The quotas a tenant runs with; 0 is unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EffectiveQuotas {
    pub publish_bytes_per_sec: u64,
    pub publish_msgs_per_sec: u64,
    pub consume_bytes_per_sec: u64,
    pub storage_bytes: u64,
    pub max_topics: u64,
    pub max_partitions: u64,
    pub max_connections: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantRecord {
    pub name: String,
    pub quotas: TenantQuotas,
    pub created_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_defaults_fill_what_is_unset() {
        for quota in Quota::ALL {
            assert_eq!(Quota::from_name(quota.name()), Some(quota));
        }
        let mut own = TenantQuotas::default();
        own.set(Quota::StorageBytes, Some(5));
        own.set(Quota::MaxTopics, Some(0));
        let defaults = QuotaDefaults {
            storage_bytes: 100,
            max_topics: 7,
            max_connections: 3,
            ..QuotaDefaults::default()
        };
        let effective = own.effective(&defaults);
        assert_eq!(effective.storage_bytes, 5);
        assert_eq!(effective.max_topics, 0, "0 set on the tenant is unlimited");
        assert_eq!(effective.max_connections, 3);
    }
}
