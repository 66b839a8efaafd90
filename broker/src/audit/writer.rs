//! Authentication failures and authorization denials: recorded off the request path, bounded.
//!
//! [`AuditSink::record`] never waits: it puts the failure in a bounded channel
//! ([`CHANNEL_CAPACITY`]) or, when that is full, counts it as dropped
//! (`rapidmq_audit_dropped_total`). The [`run`] task takes them out, coalesces them per
//! `(source IP, actor, action, reason)` ([`Coalescer`]), at most [`MAX_KEYS_PER_SOURCE`] of them
//! per source IP and window (the rest fold into one record), and commits what it has every
//! [`COMMIT_INTERVAL`], fsynced, with one "N dropped" record when some were dropped. The first
//! failure of a key is written at once; the repeats within [`WINDOW`] become one record with
//! their `count`, so a flood costs a handful of records, not one per attempt.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::record::{Audit, AuditEntry, AuditSource, Outcome, SYSTEM_ACTOR, Stamp};
use crate::clock::{self, Clock};
use crate::observability::Metrics;
use crate::storage::{Store, WriteBatch};

/// Failures waiting for the writer, at most.
pub const CHANNEL_CAPACITY: usize = 4096;
/// How often the writer commits.
pub const COMMIT_INTERVAL: Duration = Duration::from_millis(100);
/// Repeats of one failure within this long after the first become one record.
pub const WINDOW: Duration = Duration::from_secs(10);
/// Entries the writer keeps while the store refuses writes; more are counted as dropped.
const MAX_PENDING: usize = CHANNEL_CAPACITY;
/// Distinct failures (actors, reasons) one source IP gets a record of per window; beyond
/// that they fold into one record for the source, so a flood that varies the user name or the
/// token costs as little as one that repeats them.
pub const MAX_KEYS_PER_SOURCE: usize = 100;
/// What stands for the actor and the reason of failures folded per source.
const MANY: &str = "*";

/// Where failures and denials are reported. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct AuditSink {
    tx: Option<mpsc::Sender<(Audit, u64)>>,
    dropped: Arc<AtomicU64>,
    metrics: Option<Arc<Metrics>>,
    clock: Arc<dyn Clock>,
}

impl AuditSink {
    /// A sink and the receiving end for [`run`].
    /// Records are stamped with `clock`'s time.
    pub fn channel(metrics: Arc<Metrics>, clock: Arc<dyn Clock>) -> (AuditSink, Failures) {
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let dropped = Arc::new(AtomicU64::new(0));
        let sink = AuditSink {
            tx: Some(tx),
            dropped: dropped.clone(),
            metrics: Some(metrics),
            clock: clock.clone(),
        };
        (sink, Failures { rx, dropped, clock })
    }

    /// A sink that records nothing (unit tests of other modules).
    pub fn detached() -> AuditSink {
        AuditSink {
            tx: None,
            dropped: Arc::default(),
            metrics: None,
            clock: clock::system(),
        }
    }

    /// Queues a failure or denial for the writer, or counts it as dropped if the queue is full.
    pub fn record(&self, audit: Audit) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send((audit, unix_ms(&*self.clock)))
        {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            if let Some(metrics) = &self.metrics {
                metrics.audit_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The receiving end of an [`AuditSink`].
pub struct Failures {
    rx: mpsc::Receiver<(Audit, u64)>,
    dropped: Arc<AtomicU64>,
    clock: Arc<dyn Clock>,
}

/// `clock`'s time as audit records count it (`u64`).
fn unix_ms(clock: &dyn Clock) -> u64 {
    u64::try_from(clock.now_ms()).unwrap_or(0)
}

/// What identifies repeats of one failure.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CoalesceKey {
    addr: String,
    actor: String,
    action: &'static str,
    reason: String,
}

impl CoalesceKey {
    fn of(audit: &Audit) -> CoalesceKey {
        // By IP: a flood over fresh connections comes from a new port each time.
        let addr = &audit.source.addr;
        let ip = addr.parse::<SocketAddr>().map(|a| a.ip().to_string());
        CoalesceKey {
            addr: ip.unwrap_or_else(|_| addr.clone()),
            actor: audit.actor.clone(),
            action: audit.action,
            reason: audit.detail.clone(),
        }
    }
}

struct Window {
    opened: Instant,
    first: Audit,
    /// Repeats since the last record of this key.
    repeats: u64,
}

/// Folds repeats of a failure within [`WINDOW`] into one count.
#[derive(Default)]
pub struct Coalescer {
    windows: HashMap<CoalesceKey, Window>,
    /// Open windows per source IP, to hold each to [`MAX_KEYS_PER_SOURCE`].
    per_source: HashMap<String, usize>,
}

impl Coalescer {
    /// Takes one failure seen at `now`: the first of its key is returned, to be written at once;
    /// a repeat is counted.
    pub fn add(&mut self, mut audit: Audit, now: Instant) -> Option<Audit> {
        let mut key = CoalesceKey::of(&audit);
        if !self.windows.contains_key(&key)
            && self.per_source.get(&key.addr).copied().unwrap_or(0) >= MAX_KEYS_PER_SOURCE
        {
            key.actor = MANY.to_string();
            key.reason = MANY.to_string();
            audit.actor = MANY.to_string();
            audit.target = String::new();
            audit.detail = format!(
                "more than {MAX_KEYS_PER_SOURCE} different failures from this address within {} s",
                WINDOW.as_secs()
            );
        }
        if let Some(window) = self.windows.get_mut(&key) {
            window.repeats += 1;
            return None;
        }
        *self.per_source.entry(key.addr.clone()).or_default() += 1;
        self.windows.insert(
            key,
            Window {
                opened: now,
                first: audit.clone(),
                repeats: 0,
            },
        );
        Some(audit)
    }

    /// The repeats of each window that has closed by `now` (all of them with `all`), each as one
    /// record and its count. A closed window with repeats opens again, so a flood that goes on
    /// gives one record per window; one without repeats is forgotten.
    pub fn due(&mut self, now: Instant, all: bool) -> Vec<(Audit, u64)> {
        let mut out = Vec::new();
        self.windows.retain(|_, window| {
            if !all && now.duration_since(window.opened) < WINDOW {
                return true;
            }
            if window.repeats == 0 {
                return false;
            }
            out.push((window.first.clone(), window.repeats));
            window.repeats = 0;
            window.opened = now;
            !all
        });
        self.per_source.clear();
        for key in self.windows.keys() {
            *self.per_source.entry(key.addr.clone()).or_default() += 1;
        }
        out
    }
}

/// The writer task: runs until `stopping`, then commits what it still holds.
pub async fn run(
    mut failures: Failures,
    stamp: Arc<Stamp>,
    store: Arc<dyn Store>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut coalescer = Coalescer::default();
    let mut pending: Vec<AuditEntry> = Vec::new();
    let mut failing = false;
    let mut ticker = tokio::time::interval(COMMIT_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            received = failures.rx.recv() => {
                match received {
                    Some((audit, ts_ms)) => {
                        if let Some(first) = coalescer.add(audit, Instant::now()) {
                            pending.push(stamp.entry(first, ts_ms, 1));
                        }
                        continue;
                    }
                    None => true,
                }
            }
            _ = ticker.tick() => false,
            _ = stopping.changed() => true,
        };
        if last {
            // What was reported before the stop is still recorded.
            while let Ok((audit, ts_ms)) = failures.rx.try_recv() {
                if let Some(first) = coalescer.add(audit, Instant::now()) {
                    pending.push(stamp.entry(first, ts_ms, 1));
                }
            }
        }
        let now = (Instant::now(), unix_ms(&*failures.clock));
        for (audit, count) in coalescer.due(now.0, last) {
            pending.push(stamp.entry(audit, now.1, count));
        }
        let dropped = failures.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            pending.push(stamp.entry(dropped_record(dropped), now.1, dropped));
        }
        commit(&store, &mut pending, &mut failing).await;
        if last {
            return;
        }
    }
}

fn dropped_record(dropped: u64) -> Audit {
    Audit {
        tenant: crate::principal::DEFAULT_TENANT.to_string(),
        actor: SYSTEM_ACTOR.to_string(),
        source: AuditSource::default(),
        action: "audit.dropped",
        target: String::new(),
        outcome: Outcome::Failed,
        detail: format!(
            "{dropped} authentication failures or denials were not recorded: the audit queue was full"
        ),
    }
}

/// Writes `pending` in one fsynced batch; on failure keeps them for the next commit (at most
/// [`MAX_PENDING`]; beyond that the newest are lost). `failing` logs a failing store once, not
/// every 100 ms.
async fn commit(store: &Arc<dyn Store>, pending: &mut Vec<AuditEntry>, failing: &mut bool) {
    if pending.is_empty() {
        return;
    }
    let mut batch = WriteBatch::new();
    for entry in pending.iter() {
        entry.write_to(&mut batch);
    }
    let store = store.clone();
    match tokio::task::spawn_blocking(move || store.write(batch, true)).await {
        Ok(Ok(())) => {
            pending.clear();
            *failing = false;
        }
        Ok(Err(err)) => {
            if !std::mem::replace(failing, true) {
                tracing::error!(cause = %err, records = pending.len(), "writing audit records failed; retried every commit until the store recovers");
            }
            pending.truncate(MAX_PENDING);
        }
        Err(err) => tracing::error!(cause = %err, "audit write task failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Principal;

    fn failure(addr: &str, actor: &str) -> Audit {
        let mut audit = Audit::new(&Principal::anonymous(), "auth.login", "user:default/x")
            .detail("invalid credentials");
        audit.actor = actor.to_string();
        audit.source.addr = addr.to_string();
        audit.outcome = Outcome::Failed;
        audit
    }

    #[test]
    fn repeats_within_a_window_become_one_counted_record() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        assert!(c.add(failure("1.2.3.4:1", "default/x"), t0).is_some());
        for _ in 0..999 {
            assert!(c.add(failure("1.2.3.4:1", "default/x"), t0).is_none());
        }
        // Another source, or another user, is another key.
        assert!(c.add(failure("5.6.7.8:1", "default/x"), t0).is_some());
        assert!(c.add(failure("1.2.3.4:1", "default/y"), t0).is_some());
        assert!(c.due(t0 + WINDOW / 2, false).is_empty(), "still open");
        let due = c.due(t0 + WINDOW, false);
        assert_eq!(due.len(), 1, "only the key with repeats: {due:?}");
        assert_eq!(due[0].1, 999);
        // The flood goes on: counted in the reopened window, not written one by one.
        assert!(
            c.add(failure("1.2.3.4:1", "default/x"), t0 + WINDOW)
                .is_none()
        );
        assert_eq!(c.due(t0 + WINDOW * 2, false).len(), 1);
        // Quiet for a window: forgotten, so the next failure is written at once.
        assert!(c.due(t0 + WINDOW * 3, false).is_empty());
        assert!(c.add(failure("1.2.3.4:1", "default/x"), t0).is_some());
    }

    #[test]
    fn a_flood_that_varies_the_name_folds_into_one_record_per_source() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        let written = (0..5_000)
            .filter_map(|i| c.add(failure("1.2.3.4:1", &format!("default/u{i}")), t0))
            .collect::<Vec<_>>();
        assert_eq!(written.len(), MAX_KEYS_PER_SOURCE + 1);
        let folded = written.last().unwrap();
        assert_eq!(folded.actor, MANY);
        assert!(folded.detail.contains("more than 100"), "{}", folded.detail);
        // Another source is not held back by this one.
        assert!(c.add(failure("5.6.7.8:1", "default/u1"), t0).is_some());
        let due = c.due(t0 + WINDOW, false);
        let counted: u64 = due.iter().map(|(_, n)| n).sum();
        assert_eq!(counted, 5_000 - MAX_KEYS_PER_SOURCE as u64 - 1);
        // The next window starts afresh for the source.
        c.due(t0 + WINDOW * 3, false);
        assert!(
            c.add(failure("1.2.3.4:1", "default/new"), t0 + WINDOW * 3)
                .is_some()
        );
    }

    #[tokio::test]
    async fn a_full_queue_counts_what_it_drops_and_the_writer_records_how_many() {
        use crate::audit::{AuditQuery, SINGLE_NODE, page};
        use crate::storage::MemStore;

        let metrics = Arc::new(Metrics::new(true, 10, Duration::from_secs(1)));
        let (sink, failures) = AuditSink::channel(metrics.clone(), clock::system());
        for _ in 0..CHANNEL_CAPACITY + 3 {
            sink.record(failure("1.2.3.4:1", "default/x"));
        }
        assert_eq!(metrics.audit_dropped.load(Ordering::Relaxed), 3);

        let store = Arc::new(MemStore::new());
        let (stop, stopping) = watch::channel(false);
        stop.send_replace(true);
        let stamp = Arc::new(Stamp::new(SINGLE_NODE, None));
        run(failures, stamp, store.clone(), stopping).await;

        let records = page(&*store, &AuditQuery::default()).unwrap().records;
        let summary: Vec<(&str, u64)> = records
            .iter()
            .map(|(_, r)| (r.action.as_str(), r.count))
            .collect();
        let queued = CHANNEL_CAPACITY as u64;
        assert_eq!(
            summary,
            [
                ("auth.login", 1),
                ("auth.login", queued - 1),
                ("audit.dropped", 3)
            ]
        );
    }

    #[test]
    fn stopping_flushes_every_open_window() {
        let mut c = Coalescer::default();
        let t0 = Instant::now();
        for _ in 0..3 {
            c.add(failure("1.2.3.4:1", "default/x"), t0);
        }
        let due = c.due(t0, true);
        assert_eq!(due.iter().map(|d| d.1).sum::<u64>(), 2);
        assert!(c.windows.is_empty());
    }
}
