//! The durable audit record, its key, and [`Audit`], what a change records before the log
//! stamps it.

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::principal::{Principal, PrincipalKind, Source};
use crate::storage::{Cf, WriteBatch};

/// The node a single broker writes as.
pub const SINGLE_NODE: u16 = 0;

/// Bytes of a key: `ts_ms u64 BE ‖ node u16 BE ‖ seq u64 BE`.
pub const KEY_LEN: usize = 18;

/// The actor of the broker's own records.
pub const SYSTEM_ACTOR: &str = "rapidmq";

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    /// Authentication failed.
    Failed,
    /// Authorization refused it.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Denied => "denied",
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = ();

    fn from_str(s: &str) -> Result<Outcome, ()> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "failed" => Ok(Outcome::Failed),
            "denied" => Ok(Outcome::Denied),
            _ => Err(()),
        }
    }
}

/// Where an audited request came from; empty strings when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuditSource {
    pub addr: String,
    /// `grpc` or `http`.
    pub transport: String,
}

impl From<Source> for AuditSource {
    fn from(source: Source) -> AuditSource {
        AuditSource {
            addr: source.addr.map(|a| a.to_string()).unwrap_or_default(),
            transport: source.transport.to_string(),
        }
    }
}

/// One record of the audit log, JSON in `Cf::Audit`. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub ts_ms: u64,
    pub node: u16,
    /// The tenant the action was in.
    pub tenant: String,
    /// `tenant/user`, `token:<id>` for an unknown token, `anonymous`, or `rapidmq`.
    pub actor: String,
    pub source: AuditSource,
    /// Dotted and stable: `user.create`, `auth.login`, `authz.denied`, … (docs/security.md).
    pub action: String,
    /// What it acted on: `topic:orders`, `user:acme/alice`, …
    pub target: String,
    pub outcome: Outcome,
    pub detail: String,
    /// How many occurrences the record stands for (coalesced failures); 1 otherwise.
    pub count: u64,
}

/// What an admin or ACL change records, before [`Stamp::entry`] fixes its time and key: the
/// caller (tenant, actor, source) comes from the principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub tenant: String,
    pub actor: String,
    pub source: AuditSource,
    pub action: &'static str,
    pub target: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl Audit {
    /// `principal` did `action` (`topic.delete`) to `target` (`topic:orders`), successfully.
    pub fn new(principal: &Principal, action: &'static str, target: impl Into<String>) -> Audit {
        Audit {
            tenant: principal.tenant().to_string(),
            actor: actor(principal),
            source: principal.source().into(),
            action,
            target: target.into(),
            outcome: Outcome::Ok,
            detail: String::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Audit {
        self.detail = detail.into();
        self
    }

    /// Files the record under another tenant than the caller's (a cluster admin acting on
    /// `tenant`).
    pub fn in_tenant(mut self, tenant: impl Into<String>) -> Audit {
        self.tenant = tenant.into();
        self
    }
}

/// How the audit log names `principal`.
pub fn actor(principal: &Principal) -> String {
    match principal.kind() {
        PrincipalKind::Anonymous => "anonymous".to_string(),
        PrincipalKind::System => SYSTEM_ACTOR.to_string(),
        // A cluster admin acting in another tenant is still its home tenant's user.
        PrincipalKind::User => format!(
            "{}/{}",
            principal.home_tenant(),
            principal.name().unwrap_or_default()
        ),
    }
}

/// A record with its key, ready to be written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub key: [u8; KEY_LEN],
    pub record: AuditRecord,
}

impl AuditEntry {
    pub fn write_to(&self, batch: &mut WriteBatch) {
        // A plain struct of strings and numbers: serialising it cannot fail.
        let value = serde_json::to_vec(&self.record).expect("audit records serialise");
        batch.put(Cf::Audit, self.key.to_vec(), Bytes::from(value));
    }
}

/// Hands out keys: this node's id and the next sequence number, unique across restarts
/// (recovered from the greatest key at startup).
#[derive(Debug)]
pub struct Stamp {
    node: u16,
    seq: AtomicU64,
}

impl Stamp {
    /// `last` is the greatest key stored, if any.
    pub fn new(node: u16, last: Option<&[u8]>) -> Stamp {
        let next = last
            .and_then(decode_key)
            .map_or(0, |(_, _, seq)| seq.wrapping_add(1));
        Stamp {
            node,
            seq: AtomicU64::new(next),
        }
    }

    /// Fixes the time, node and key of `audit`.
    pub fn entry(&self, audit: Audit, ts_ms: u64, count: u64) -> AuditEntry {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        AuditEntry {
            key: key(ts_ms, self.node, seq),
            record: AuditRecord {
                ts_ms,
                node: self.node,
                tenant: audit.tenant,
                actor: audit.actor,
                source: audit.source,
                action: audit.action.to_string(),
                target: audit.target,
                outcome: audit.outcome,
                detail: audit.detail,
                count,
            },
        }
    }
}

/// The key of the `seq`th record of `node`, written at `ts_ms`: keys sort by time first.
pub fn key(ts_ms: u64, node: u16, seq: u64) -> [u8; KEY_LEN] {
    let mut key = [0; KEY_LEN];
    key[..8].copy_from_slice(&ts_ms.to_be_bytes());
    key[8..10].copy_from_slice(&node.to_be_bytes());
    key[10..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `(ts_ms, node, seq)` of a key.
pub fn decode_key(key: &[u8]) -> Option<(u64, u16, u64)> {
    let key: &[u8; KEY_LEN] = key.try_into().ok()?;
    Some((
        u64::from_be_bytes(key[..8].try_into().ok()?),
        u16::from_be_bytes(key[8..10].try_into().ok()?),
        u64::from_be_bytes(key[10..].try_into().ok()?),
    ))
}

/// The first key of `ts_ms`: every record at or after it sorts at or after this.
pub fn time_key(ts_ms: u64) -> [u8; KEY_LEN] {
    key(ts_ms, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_time_then_node_then_sequence() {
        let keys = [
            key(1, 0, 9),
            key(1, 1, 0),
            key(2, 0, 0),
            key(2, 0, 1),
            key(256, 0, 0),
            key(u64::MAX, 0, 0),
        ];
        let mut sorted = keys;
        sorted.sort();
        assert_eq!(sorted, keys);
        assert!(time_key(2) <= key(2, 0, 0) && key(1, u16::MAX, u64::MAX) < time_key(2));
        assert_eq!(decode_key(&key(7, 3, 42)), Some((7, 3, 42)));
        assert_eq!(decode_key(b"short"), None);
    }

    #[test]
    fn the_sequence_continues_after_the_last_key() {
        let stamp = Stamp::new(SINGLE_NODE, Some(&key(5, 0, 41)));
        let audit = Audit::new(&Principal::anonymous(), "topic.create", "topic:a");
        let first = stamp.entry(audit.clone(), 3, 1);
        let second = stamp.entry(audit, 3, 1);
        assert_eq!(decode_key(&first.key), Some((3, 0, 42)));
        assert!(
            first.key < second.key,
            "the same ms still gives ordered keys"
        );
        assert_eq!(first.record.actor, "anonymous");
    }
}
