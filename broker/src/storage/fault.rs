//! Test-only fault injection, driven by a file named in `RAPIDMQ_TEST_FAULT_FILE`.
//!
//! Production brokers never set the variable, and then every check is a load of an empty
//! `OnceLock`. When it is set, the file holds one fault per line:
//!
//! - `panic <task>`: the next time `<task>` passes its fault point it panics, once (the line is
//!   removed). Tasks: `writer` (a partition writer's group commit), `scheduler`, and the interval
//!   tasks `fsync`, `queue-flush`, `retention`, `storage-probe`.
//! - `fail-writes`: every write and sync of the disk store fails with an I/O error while the line
//!   is there (for machines where a test cannot mount a small filesystem to fill).
//! - `stall raft-log-writes`: a cluster node's raft logs write nothing while the line is there
//!   (their writers wait); its groups go on replicating from memory, so the other replicas can
//!   commit entries this node has not stored.

use std::path::PathBuf;
use std::sync::OnceLock;

use parking_lot::Mutex;

/// The environment variable naming the fault file.
pub const FAULT_FILE_ENV: &str = "RAPIDMQ_TEST_FAULT_FILE";

fn fault_file() -> Option<&'static PathBuf> {
    static FILE: OnceLock<Option<PathBuf>> = OnceLock::new();
    FILE.get_or_init(|| std::env::var_os(FAULT_FILE_ENV).map(PathBuf::from))
        .as_ref()
}

/// Whether the fault file has the line `fault` now.
pub fn active(fault: &str) -> bool {
    let Some(path) = fault_file() else {
        return false;
    };
    std::fs::read_to_string(path).is_ok_and(|text| text.lines().any(|l| l.trim() == fault))
}

/// Whether the fault file has the line `fault`; if so the line is removed, so it fires once.
pub fn take(fault: &str) -> bool {
    let Some(path) = fault_file() else {
        return false;
    };
    // One taker at a time, so a fault fires exactly once.
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock();
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    let mut lines: Vec<&str> = text.lines().collect();
    let Some(at) = lines.iter().position(|l| l.trim() == fault) else {
        return false;
    };
    lines.remove(at);
    let rest: String = lines.iter().map(|l| format!("{l}\n")).collect();
    if std::fs::write(path, rest).is_err() {
        return false;
    }
    true
}

/// Panics if the fault file asks `task` to panic (once).
pub fn panic_point(task: &str) {
    if take(&format!("panic {task}")) {
        panic!("fault injection: {task} panics");
    }
}
