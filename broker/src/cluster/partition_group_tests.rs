//! Partition group state machines applied directly (no raft): replicas that split the same
//! committed entries into different runs end in the same state.

use super::*;
use crate::engine::TailBudget;
use crate::storage::MemStore;

fn options() -> GroupOptions {
    GroupOptions {
        ack: AckDurability::Fsync,
        tail_budget: TailBudget::new(1 << 20),
        tenant_storage: Arc::default(),
        producer_state_ttl_ms: 60_000,
    }
}

fn replica() -> (Arc<dyn Store>, PartitionGroup) {
    let store: Arc<dyn Store> = Arc::new(MemStore::new());
    let group = PartitionGroup::open(Arc::clone(&store), 7, 0, options()).unwrap();
    (store, group)
}

fn append(producer_id: u64, base_sequence: u64, count: u32, time: i64) -> PartitionCommand {
    PartitionCommand::Append(AppendCommand {
        payload: Bytes::from(format!("batch {producer_id}/{base_sequence}")),
        count,
        flags: 0,
        producer_id,
        base_sequence,
        sequence_span: count,
        deduplicated: Vec::new(),
        extras: Vec::new(),
        value_bytes: None,
        append_time_ms: time,
    })
}

/// Applies `commands` in runs of `run_len` entries, as `GroupStateMachine` does: every write of
/// a run into one batch, the batch written, then every apply.
async fn apply_in_runs(
    store: &dyn Store,
    group: &mut PartitionGroup,
    commands: &[PartitionCommand],
    run_len: usize,
) -> Vec<PartitionReply> {
    let mut replies = Vec::new();
    for (chunk_index, chunk) in commands.chunks(run_len).enumerate() {
        let first = (chunk_index * run_len) as u64 + 1;
        let ids: Vec<_> = (0..chunk.len() as u64)
            .map(|i| openraft::testing::log_id::<PartitionConfig>(1, 0, first + i))
            .collect();
        let mut run = group.stage();
        let mut batch = WriteBatch::new();
        for (command, id) in chunk.iter().zip(&ids) {
            group
                .write(&mut run, id, command, &mut batch)
                .await
                .unwrap();
        }
        store.write(batch, false).unwrap();
        for (command, id) in chunk.iter().zip(&ids) {
            replies.push(group.apply(&mut run, id, command.clone()).await);
        }
    }
    replies
}

fn contents(store: &dyn Store, cf: Cf) -> Vec<(Vec<u8>, Bytes)> {
    store
        .scan(cf, &log_key(7, 0, 0), &log_key(7, 0, u64::MAX), usize::MAX)
        .unwrap()
}

#[tokio::test]
async fn a_trim_leaves_the_same_log_start_on_every_replica_however_runs_are_cut() {
    let commands = vec![
        append(0, 0, 3, 100),
        append(11, 0, 2, 101),
        append(11, 2, 4, 102),
        append(12, 0, 1, 103),
        // Mid-batch cutoff: only whole batches ending at or before 6 go (offsets 0..5).
        PartitionCommand::Trim { before: 6 },
        append(11, 6, 2, 104),
        append(11, 2, 4, 105), // a retry: a duplicate with its original offsets
        PartitionCommand::Trim { before: 9 },
        append(0, 0, 4, 106),
    ];
    let mut outcomes = Vec::new();
    for run_len in [1, 2, 3, commands.len()] {
        let (store, mut group) = replica();
        let replies = apply_in_runs(&*store, &mut group, &commands, run_len).await;
        let shared = group.shared();
        outcomes.push((
            replies,
            shared.log_start(),
            shared.high_watermark(),
            contents(&*store, Cf::Log),
            contents(&*store, Cf::Index),
        ));
    }
    let (replies, log_start, high_watermark, log, index) = &outcomes[0];
    assert_eq!(*log_start, 9, "batches [0,3) [3,5) [5,9) were trimmed");
    assert_eq!(*high_watermark, 16);
    assert_eq!(
        replies[4],
        PartitionReply::Trimmed { log_start: 5 },
        "the batch [5,9) straddles the first cutoff and stays"
    );
    assert_eq!(
        replies[6],
        PartitionReply::Appended {
            base_offset: 5,
            count: 4,
            append_time_ms: 102,
            duplicate: true,
            deduplicated: Vec::new(),
        }
    );
    assert_eq!(log.len(), 3, "[9,10) [10,12) [12,16) remain");
    assert_eq!(index.len(), 3);
    for (i, other) in outcomes.iter().enumerate().skip(1) {
        assert_eq!(&other.0, replies, "replies of replica {i}");
        assert_eq!(other.1, *log_start, "log start of replica {i}");
        assert_eq!(other.2, *high_watermark, "high watermark of replica {i}");
        assert_eq!(&other.3, log, "Cf::Log of replica {i}");
        assert_eq!(&other.4, index, "Cf::Index of replica {i}");
    }
}

#[tokio::test]
async fn a_restored_snapshot_keeps_offsets_log_start_and_producer_dedup() {
    let (store, mut leader) = replica();
    let commands = [
        append(21, 0, 2, 10),
        append(21, 2, 3, 11),
        PartitionCommand::Trim { before: 2 },
    ];
    apply_in_runs(&*store, &mut leader, &commands, 2).await;
    let snapshot = leader.snapshot().unwrap();

    let (fresh_store, mut fresh) = replica();
    let mut batch = WriteBatch::new();
    fresh.write_restore(&snapshot, &mut batch).unwrap();
    fresh_store.write(batch, true).unwrap();
    fresh.restore(&snapshot).await.unwrap();
    assert_eq!(fresh.shared().log_start(), 2);
    assert_eq!(fresh.shared().high_watermark(), 5);

    // The producer's retry is a duplicate on the restored replica; its next batch goes on at 5.
    let more = [append(21, 2, 3, 12), append(21, 5, 1, 13)];
    let replies = apply_in_runs(&*fresh_store, &mut fresh, &more, 2).await;
    assert!(matches!(
        replies[0],
        PartitionReply::Appended {
            base_offset: 2,
            duplicate: true,
            ..
        }
    ));
    assert!(matches!(
        replies[1],
        PartitionReply::Appended {
            base_offset: 5,
            duplicate: false,
            ..
        }
    ));
}
