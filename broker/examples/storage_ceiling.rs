//! The storage layer alone, without the broker: how fast RocksDB (with the broker's tuning and
//! column families) takes the log writes of one partition. It writes `--messages` messages of
//! `--size` bytes as stored batches of `--batch` messages, one `WriteBatch` per group of
//! `--group` batches, with and without a sync per write, from one thread. The broker's publish
//! figures in docs/benchmarks.md are compared with these, measured in the same run.
//!
//!   cargo run --release -p rapidmq-broker --example storage_ceiling -- --group 8
use std::time::Instant;

use rapidmq_broker::storage::{Cf, RocksStore, RocksTuning, Store, WriteBatch};

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn main() {
    let messages = arg("--messages", 1_000_000);
    let size = arg("--size", 100);
    let batch = arg("--batch", 1000);
    let group = arg("--group", 1);
    // A stored batch: the 38-byte header, then each message framed as protobuf would (about
    // 4 bytes of tags and lengths around the value).
    let stored = vec![0x5a_u8; 38 + batch * (size + 4)];
    println!("{messages} x {size} B, batches of {batch}, {group} batch(es) per write");
    println!(
        "{:<9} {:>12} {:>8} {:>10}",
        "sync", "msgs/s", "MB/s", "writes/s"
    );
    for sync in [true, false] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RocksStore::open(dir.path(), &RocksTuning::default()).expect("open RocksDB");
        let writes = messages.div_ceil(batch * group);
        let started = Instant::now();
        let mut offset = 0u64;
        for _ in 0..writes {
            let mut ops = WriteBatch::new();
            for _ in 0..group {
                ops.put(Cf::Log, offset.to_be_bytes().to_vec(), stored.clone());
                ops.put(Cf::Index, offset.to_be_bytes().to_vec(), vec![0; 16]);
                offset += batch as u64;
            }
            store.write(ops, sync).expect("write");
        }
        let secs = started.elapsed().as_secs_f64();
        let total = (writes * group * batch) as f64;
        println!(
            "{:<9} {:>12.0} {:>8.1} {:>10.0}",
            if sync { "fsync" } else { "buffered" },
            total / secs,
            total * size as f64 / secs / 1e6,
            writes as f64 / secs
        );
    }
}
