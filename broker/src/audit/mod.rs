//! The audit log (docs/adr/0004-security.md §9): who changed what, and who failed to
//! authenticate or was refused, in its own column family (`Cf::Audit`).
//!
//! Layout:
//! - `record`: the durable [`AuditRecord`], its key `ts_ms ‖ node ‖ seq` (time-ordered, unique
//!   across restarts through [`Stamp`]), and [`Audit`], what a change records before it is
//!   stamped.
//! - `writer`: failures and denials, through a bounded channel ([`AuditSink`]) to a task that
//!   coalesces repeats and commits every 100 ms.
//! - `query`: filtered pages for `Admin.ListAuditEvents`, `GET /v1/audit` and the export.
//!
//! Admin and ACL changes do not go through the writer: the engine stamps their record and
//! writes it in the same fsynced batch as the change (`Engine::apply_audited`), so no change
//! exists without its record. Retention deletes records older than `audit.retention_ms` with
//! one range delete, hourly. The log is not tamper-evident: whoever can write the data
//! directory can change it.

mod query;
mod record;
mod writer;

use std::sync::Arc;

pub use query::{AuditPage, AuditQuery, DEFAULT_LIMIT, MAX_LIMIT, page, parse_outcome};
pub use record::{
    Audit, AuditEntry, AuditRecord, AuditSource, Outcome, SINGLE_NODE, Stamp, actor, time_key,
};
pub use writer::{AuditSink, CHANNEL_CAPACITY, Failures, WINDOW, run};

use crate::storage::{Cf, StorageError, Store, WriteBatch};

/// The stamp recovered from `store`: this node's next sequence number follows the greatest key.
pub fn recover_stamp(store: &dyn Store, node: u16) -> Result<Stamp, StorageError> {
    let last = store.seek_prev(Cf::Audit, &[], &[0xff; record::KEY_LEN + 1])?;
    Ok(Stamp::new(
        node,
        last.as_ref().map(|(key, _)| key.as_slice()),
    ))
}

/// Deletes the records older than `before_ms`, in one range delete.
pub fn expire(store: &dyn Store, before_ms: u64) -> Result<(), StorageError> {
    let mut batch = WriteBatch::new();
    batch.delete_range(
        Cf::Audit,
        time_key(0).to_vec(),
        time_key(before_ms).to_vec(),
    );
    store.write(batch, true)
}

/// The audit log of an engine: the stamp its changes share with the failure writer, and the
/// sink failures go to.
pub struct AuditLog {
    pub stamp: Arc<Stamp>,
    pub sink: AuditSink,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Principal;
    use crate::storage::MemStore;

    #[test]
    fn recovery_continues_after_the_greatest_key_and_retention_drops_old_records() {
        let store = MemStore::new();
        let stamp = recover_stamp(&store, SINGLE_NODE).unwrap();
        let mut batch = WriteBatch::new();
        for ts in [10, 20, 30] {
            let audit = Audit::new(&Principal::anonymous(), "topic.create", "topic:a");
            stamp.entry(audit, ts, 1).write_to(&mut batch);
        }
        store.write(batch, true).unwrap();
        let again = recover_stamp(&store, SINGLE_NODE).unwrap();
        let audit = Audit::new(&Principal::anonymous(), "topic.delete", "topic:a");
        let next = again.entry(audit, 30, 1);
        assert_eq!(record::decode_key(&next.key), Some((30, 0, 3)));
        expire(&store, 30).unwrap();
        let left = page(&store, &AuditQuery::default()).unwrap();
        let times: Vec<u64> = left.records.iter().map(|(_, r)| r.ts_ms).collect();
        assert_eq!(times, vec![30]);
    }
}
