//! A replica whose stored batches were damaged on disk detects it by checksum and rebuilds the
//! partition from the other replicas, with real processes: three nodes, one partition with
//! three replicas, batches large enough to live in RocksDB's blob files (which checksum each
//! record). A byte in the middle of each of one replica's blob files is flipped (or each is
//! cut to half its length), either while it is killed, before it starts again, or while it
//! runs, before a consumer reads from it. It must never serve a damaged batch, and end up
//! serving exactly what the others serve, byte for byte; what is published afterwards reaches
//! it too, and it counts towards a majority again.
//!
//! Every wait polls until the condition holds, bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cluster::{
    fetch_all, partition_leader, publish_retrying, replicated_topic, start_nodes,
};
use common::{BrokerOptions, Clients, PATIENCE, TestBroker, connect, encode, eventually, msg};
use rapidmq_proto::v1 as pb;

const TOPIC: &str = "damaged";
const BATCHES: usize = 120;
/// Above the log's `min_blob_bytes` (4096): each batch's value goes to a blob file.
const VALUE_BYTES: usize = 6000;
/// A small write buffer, so most batches are flushed to blob files before the kill.
const WRITE_BUFFER: &str = "131072";

/// Everything `clients`' node serves of partition 0 from its log start, or why not.
async fn served(clients: &Clients) -> Result<Vec<pb::DeliveryBatch>, String> {
    fetch_all(clients, TOPIC, 0)
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))
}

async fn publish(clients: &Clients, index: usize) {
    let value = format!("{index:06}").repeat(VALUE_BYTES / 6);
    let request = pb::PublishRequest {
        topic: TOPIC.into(),
        partition: 0,
        batch: encode(&[msg(format!("k{index}"), value)]),
        ..Default::default()
    };
    publish_retrying(clients, request).await.expect("publish");
}

/// Every file under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).expect("read the data directory") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            found.extend(files_ending(&path, suffix));
        } else if path.to_string_lossy().ends_with(suffix) {
            found.push(path);
        }
    }
    found
}

/// Flips every bit of the byte in the middle of `path`.
fn flip_middle_byte(path: &Path) {
    let mut bytes = fs::read(path).expect("read a blob file");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    fs::write(path, bytes).expect("write the blob file back");
}

/// Cuts `path` to half its length.
fn truncate_to_half(path: &Path) {
    let len = fs::metadata(path).expect("a blob file's length").len();
    fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| file.set_len(len / 2))
        .expect("truncate a blob file");
}

/// Waits until node 1 serves all `count` batches, and returns them.
async fn served_by_all(nodes: &[Clients], count: usize) -> Vec<pb::DeliveryBatch> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut seen = Vec::new();
        for clients in nodes {
            seen.push(served(clients).await);
        }
        if let Ok(first) = &seen[0]
            && first.len() == count
            && seen.iter().all(|s| s.as_ref() == Ok(first))
        {
            return first.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the replicas do not all serve {count} batches: {:?}",
            seen.iter()
                .map(|s| s.as_ref().map(Vec::len))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How a scenario damages a replica.
struct Damage {
    /// `cluster.snapshot_every_entries`, when the leader is to purge its log (so the damaged
    /// replica is rebuilt by snapshot rather than from log entries).
    snapshot_every: Option<&'static str>,
    /// Whether the damaged replica is the partition's preferred leader (which leads it before
    /// the damage, and again after the rebuild) rather than another replica.
    preferred: bool,
    /// What happens to each of its blob files: a byte flipped, or cut to half its length.
    cut: fn(&Path),
    /// Whether the files are damaged while the replica runs (found by the next read of them)
    /// rather than while it is down (found at its start).
    running: bool,
}

/// Three nodes, one partition on all three, [`BATCHES`] batches; then each of the chosen
/// replica's blob files is damaged (`Damage::cut`), while it is down or while it runs
/// (`Damage::running`). It never serves a batch other than the others', ends up serving the
/// same, takes part in what comes after and votes again.
async fn a_damaged_replica_is_rebuilt(damage: Damage) {
    let mut env = vec![
        (
            "RAPIDMQ_STORAGE__LOG_WRITE_BUFFER_BYTES".to_string(),
            WRITE_BUFFER.to_string(),
        ),
        // Reads come from the store, not from the batches kept in memory for consumers that
        // keep up: a read of damaged data finds it.
        (
            "RAPIDMQ_STORAGE__TAIL_CACHE_BYTES".to_string(),
            "0".to_string(),
        ),
        // Leadership goes back to the preferred replica soon after it votes again.
        (
            "RAPIDMQ_CLUSTER__LEADER_REBALANCE_INTERVAL_MS".to_string(),
            "500".to_string(),
        ),
    ];
    if let Some(every) = damage.snapshot_every {
        env.push((
            "RAPIDMQ_CLUSTER__SNAPSHOT_EVERY_ENTRIES".to_string(),
            every.to_string(),
        ));
    }
    let mut nodes: Vec<TestBroker> = start_nodes(3, |_| BrokerOptions {
        env: env.clone(),
        ..BrokerOptions::default()
    });
    let (first, created) = replicated_topic(&nodes, TOPIC, 3).await;
    let preferred = created.partitions[0].replicas[0];
    let victim = if damage.preferred {
        preferred
    } else {
        (1..=3u64).find(|&id| id != preferred).expect("three nodes")
    };
    let at = |id: u64| (id - 1) as usize;
    let mut clients = Vec::new();
    for node in &nodes {
        clients.push(connect(node).await);
    }
    eventually("the preferred replica leads", || async {
        partition_leader(&first, TOPIC, 0).await == preferred
    })
    .await;
    for index in 0..BATCHES {
        publish(&first, index).await;
    }
    let expected = served_by_all(&clients, BATCHES).await;

    // The victim's disk goes bad, while it is down or while it runs: every blob file is
    // damaged.
    if !damage.running {
        nodes[at(victim)].kill();
    }
    let blobs = files_ending(nodes[at(victim)].data_dir(), ".blob");
    assert!(
        !blobs.is_empty(),
        "node {victim} flushed no blob file: the test damages nothing"
    );
    for blob in &blobs {
        (damage.cut)(blob);
    }
    if !damage.running {
        nodes[at(victim)].start_again();
        clients[at(victim)] = connect(&nodes[at(victim)]).await;
    }
    let restarted = Instant::now();

    // It never serves a damaged batch: what it serves is what the others serve, or a prefix of
    // it while it catches up, or nothing. And it ends up serving all of it.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let seen = served(&clients[at(victim)]).await;
        if let Ok(batches) = &seen {
            assert_eq!(
                batches.as_slice(),
                &expected[..batches.len().min(expected.len())],
                "node {victim} served something else than the others"
            );
            if batches.len() == expected.len() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "node {victim} does not serve the partition: {:?}\n{}",
            seen.map(|b| b.len()),
            nodes[at(victim)].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = nodes[at(victim)].log();
    assert!(
        log.contains("stored batches of the partition are damaged"),
        "node {victim} did not report the damage it found:\n{log}"
    );
    if damage.running {
        assert!(
            log.contains("a read found this replica's copy of the partition damaged"),
            "node {victim} did not rebuild on the read that found the damage:\n{log}"
        );
    }
    if damage.snapshot_every.is_some() {
        assert!(
            log.contains("installed a snapshot from the leader"),
            "node {victim} was rebuilt from log entries, not by snapshot"
        );
    }

    // It takes part again: what is published now, every replica serves alike.
    publish(&clients[0], BATCHES).await;
    served_by_all(&clients, BATCHES + 1).await;

    // And it votes again, once promoted: with another node down, the victim and the third are
    // a majority only if the victim is a voter (a learner would leave the group no quorum, and
    // the publish unanswered).
    eventually("the rebuilt replica is a voter again", || async {
        nodes[at(victim)]
            .log()
            .contains("a voter of the group again")
    })
    .await;
    eprintln!(
        "node {victim} rebuilt and voting again {:.1} s after its {}",
        restarted.elapsed().as_secs_f64(),
        if damage.running {
            "files were damaged"
        } else {
            "start"
        }
    );
    if damage.preferred {
        eventually("the rebuilt preferred replica leads again", || async {
            partition_leader(&clients[at(victim)], TOPIC, 0).await == victim
        })
        .await;
    }
    let down = (1..=3u64).find(|&id| id != victim).expect("three nodes");
    nodes[at(down)].kill();
    let mut survivors = Vec::new();
    for id in (1..=3u64).filter(|&id| id != down) {
        survivors.push(connect(&nodes[at(id)]).await);
    }
    tokio::time::timeout(PATIENCE, publish(&survivors[0], BATCHES + 1))
        .await
        .unwrap_or_else(|_| {
            panic!("no answer to a publish with node {down} down: node {victim} does not vote")
        });
    served_by_all(&survivors, BATCHES + 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_damaged_batches_never_serves_them_and_is_rebuilt_from_the_log() {
    a_damaged_replica_is_rebuilt(Damage {
        snapshot_every: None,
        preferred: false,
        cut: flip_middle_byte,
        running: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_preferred_leader_is_rebuilt_by_snapshot_and_leads_again() {
    a_damaged_replica_is_rebuilt(Damage {
        snapshot_every: Some("10"),
        preferred: true,
        cut: flip_middle_byte,
        running: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_with_truncated_blob_files_is_rebuilt() {
    a_damaged_replica_is_rebuilt(Damage {
        snapshot_every: None,
        preferred: false,
        cut: truncate_to_half,
        running: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_follower_that_reads_damaged_batches_is_rebuilt_without_a_restart() {
    a_damaged_replica_is_rebuilt(Damage {
        snapshot_every: None,
        preferred: false,
        cut: flip_middle_byte,
        running: true,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_leader_whose_blob_files_are_cut_is_rebuilt_by_snapshot_and_leads_again() {
    a_damaged_replica_is_rebuilt(Damage {
        snapshot_every: Some("10"),
        preferred: true,
        cut: truncate_to_half,
        running: true,
    })
    .await;
}

/// A partition with one replica has nothing to rebuild from: the running node that reads its
/// damaged batches refuses them, keeps its group running (no restart loop) and takes new
/// publishes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_single_replica_with_damaged_batches_keeps_serving_what_is_intact() {
    let env = vec![
        (
            "RAPIDMQ_STORAGE__LOG_WRITE_BUFFER_BYTES".to_string(),
            WRITE_BUFFER.to_string(),
        ),
        (
            "RAPIDMQ_STORAGE__TAIL_CACHE_BYTES".to_string(),
            "0".to_string(),
        ),
    ];
    let nodes: Vec<TestBroker> = start_nodes(3, |_| BrokerOptions {
        env: env.clone(),
        ..BrokerOptions::default()
    });
    let (first, created) = replicated_topic(&nodes, TOPIC, 1).await;
    let holder = created.partitions[0].replicas[0];
    let node = &nodes[(holder - 1) as usize];
    let clients = connect(node).await;
    for index in 0..BATCHES {
        publish(&first, index).await;
    }
    let blobs = files_ending(node.data_dir(), ".blob");
    assert!(
        !blobs.is_empty(),
        "node {holder} flushed no blob file: the test damages nothing"
    );
    for blob in &blobs {
        flip_middle_byte(blob);
    }

    let seen = served(&clients).await;
    assert!(
        seen.is_err(),
        "node {holder} served damaged batches: {:?}",
        seen.map(|b| b.len())
    );
    eventually("the node reports the damage it cannot rebuild", || async {
        node.log()
            .contains("no other node holds it: serving what is intact")
    })
    .await;
    publish(&first, BATCHES).await;
    let log = node.log();
    assert!(
        !log.contains("its group starts again here"),
        "node {holder} restarted the group of a partition no other node holds:\n{log}"
    );
}
