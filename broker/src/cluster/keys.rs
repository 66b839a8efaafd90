//! Key layout of the raft column families.
//!
//! Every key starts with the group id as a fixed-width big-endian `u64`, so RocksDB's byte order
//! is numeric order: all of a group's keys are contiguous, and group 1's sort before group 2's.
//!
//! - `raft_log`: `group_id u64 BE | raft_index u64 BE` (16 bytes), value the encoded entry.
//! - `raft_state`: `group_id u64 BE | kind u8` (9 bytes), one small record per [`StateKey`].

/// The id of one raft group (the metadata group or one partition's group).
pub type GroupId = u64;

/// The group of partition `partition` of topic `topic_id`: `topic_id << 32 | partition`.
/// Topic ids start at 1, so no partition's group is the metadata group (0).
pub fn partition_group(topic_id: u32, partition: u32) -> GroupId {
    (u64::from(topic_id) << 32) | u64::from(partition)
}

/// The `raft_log` key of entry `index` of `group`.
pub fn entry(group: GroupId, index: u64) -> [u8; 16] {
    let mut key = [0; 16];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

/// The raft index in a `raft_log` key, if the key has that layout.
pub fn entry_index(key: &[u8]) -> Option<u64> {
    let index: [u8; 8] = key.get(8..16)?.try_into().ok()?;
    (key.len() == 16).then(|| u64::from_be_bytes(index))
}

/// The `raft_log` keys of `group`'s entries from index `from` (inclusive) to `to` (exclusive;
/// `None` is past the last possible index), as a `[lower, upper)` pair for a scan or a range
/// delete. The open upper bound is the key of index `u64::MAX` plus one byte: after every key
/// of the group, before every key of the next one.
pub fn entry_range(group: GroupId, from: u64, to: Option<u64>) -> (Vec<u8>, Vec<u8>) {
    let upper = match to {
        Some(to) => entry(group, to).to_vec(),
        None => {
            let mut key = entry(group, u64::MAX).to_vec();
            key.push(0);
            key
        }
    };
    (entry(group, from).to_vec(), upper)
}

/// The records a group keeps in `raft_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StateKey {
    /// The last saved vote (log store).
    Vote = 1,
    /// The last saved committed log id (log store).
    Committed = 2,
    /// The log id of the last purged entry (log store): the log starts after it.
    LastPurged = 3,
    /// The state machine's last applied log id and membership.
    Applied = 4,
    /// The state machine's current snapshot: its meta and data.
    Snapshot = 5,
    /// A partition group's raft index below which no entry holds a retained batch (written by
    /// its trims and snapshot installs): what a purge may delete ([`crate::cluster::Purge`]).
    RetainedFrom = 6,
    /// The offsets `[from, to)` a partition group's snapshot transfer in progress wrote to
    /// `Cf::Log`, so that one a crash abandoned is cleaned up when the group opens again.
    SnapshotStaging = 7,
    /// The cluster this node belongs to (the metadata group's record only;
    /// [`crate::cluster::identity`]).
    ClusterId = 8,
}

/// The `raft_state` key of `group`'s record `kind`.
pub fn state(group: GroupId, kind: StateKey) -> [u8; 9] {
    let mut key = [0; 9];
    key[..8].copy_from_slice(&group.to_be_bytes());
    key[8] = kind as u8;
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_numerically_across_groups_and_indexes() {
        let ids = [
            (1, 0),
            (1, 1),
            (1, 255),
            (1, 256),
            (1, 65_535),
            (1, 65_536),
            (1, u64::MAX - 1),
            (1, u64::MAX),
            (2, 0),
            (2, 1),
            (256, 0),
            (u64::MAX, 7),
        ];
        let mut keys: Vec<[u8; 16]> = ids.iter().map(|&(g, i)| entry(g, i)).collect();
        keys.reverse();
        keys.sort();
        let back: Vec<(u64, u64)> = keys
            .iter()
            .map(|k| {
                let group = u64::from_be_bytes(k[..8].try_into().unwrap());
                (group, entry_index(k).unwrap())
            })
            .collect();
        assert_eq!(back, ids, "byte order is (group, index) numeric order");
        assert!(entry(1, 255) < entry(1, 256));
        assert!(entry(1, u64::MAX) < entry(2, 0));
    }

    #[test]
    fn a_group_range_holds_exactly_that_groups_entries() {
        let (lower, upper) = entry_range(5, 0, None);
        for (group, index, inside) in [
            (4, u64::MAX, false),
            (5, 0, true),
            (5, u64::MAX, true),
            (6, 0, false),
        ] {
            let key = entry(group, index);
            let within = lower.as_slice() <= key.as_slice() && key.as_slice() < upper.as_slice();
            assert_eq!(within, inside, "group {group} index {index}");
        }
        let (lower, upper) = entry_range(u64::MAX, 3, None);
        assert!(lower.as_slice() <= entry(u64::MAX, u64::MAX).as_slice());
        assert!(entry(u64::MAX, u64::MAX).as_slice() < upper.as_slice());
        let (lower, upper) = entry_range(5, 10, Some(12));
        assert_eq!(
            (lower, upper),
            (entry(5, 10).to_vec(), entry(5, 12).to_vec())
        );
    }

    #[test]
    fn partition_groups_are_distinct_and_never_the_metadata_group() {
        assert_eq!(partition_group(1, 0), 1 << 32);
        assert_eq!(partition_group(1, 7), (1 << 32) + 7);
        assert_ne!(partition_group(1, u32::MAX), partition_group(2, 0));
        assert_ne!(partition_group(1, 0), 0);
    }

    #[test]
    fn state_keys_of_a_group_are_contiguous() {
        assert!(state(1, StateKey::Snapshot) < state(2, StateKey::Vote));
        assert!(state(255, StateKey::Snapshot) < state(256, StateKey::Vote));
        assert_eq!(
            &state(258, StateKey::Committed)[..],
            &[0, 0, 0, 0, 0, 0, 1, 2, 2]
        );
    }
}
