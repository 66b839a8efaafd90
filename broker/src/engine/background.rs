//! The engine's background tasks: the delayed-message scheduler, and the interval tasks
//! (the fsync of buffered topics, the queue ack-state flush, retention, the session sweep, the
//! storage probe, audit retention), each supervised so a panic is a health event and the task
//! runs again (`health.rs`). Also what `/readyz` asks: why the broker cannot take writes.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::partition::{ConsumerChange, PartitionEntry};
use super::subscription::Subscription;
use super::{Engine, audit, health, retention, scheduler, users};
use crate::storage::{Store as _, fault};

/// How often a failing disk store is probed for recovery.
const STORAGE_PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// How long a flush of queue ack state waits before it says so: a partition group that cannot
/// commit (no quorum) holds it up until its proposal times out.
const SLOW_QUEUE_FLUSH: Duration = Duration::from_secs(1);

impl Engine {
    /// Starts every background task of the engine, each supervised (`health`).
    pub(super) fn start_background(self: &Arc<Self>) {
        let storage = &self.config.storage;
        let (health, stopping) = (self.health.clone(), self.stopping.subscribe());
        let (engine, wake) = (Arc::downgrade(self), self.schedule_wake.clone());
        let scheduler_task = self.runtime.spawn(async move {
            health::supervise(&health, "scheduler", stopping.clone(), || {
                let (engine, wake, stopping) = (engine.clone(), wake.clone(), stopping.clone());
                async move {
                    fault::panic_point("scheduler");
                    scheduler::run(engine, wake, stopping).await
                }
            })
            .await
        });
        let tasks = [
            self.every(
                "fsync",
                Duration::from_millis(storage.fsync_interval_ms),
                |engine| async move { engine.sync_buffered().await },
            ),
            self.every(
                "queue-flush",
                Duration::from_millis(self.config.queue.ack_flush_interval_ms),
                |engine| async move { engine.flush_queue_state().await },
            ),
            self.every(
                "retention",
                Duration::from_millis(self.config.retention.check_interval_ms),
                |engine| async move { retention::enforce_all(&engine).await },
            ),
            self.every(
                "session-sweep",
                users::SESSION_SWEEP_INTERVAL,
                |engine| async move { engine.sweep_sessions().await },
            ),
            self.every(
                "storage-probe",
                STORAGE_PROBE_INTERVAL,
                |engine| async move { engine.probe_storage().await },
            ),
            scheduler_task,
            self.start_audit_writer(),
            self.every(
                "audit-retention",
                audit::RETENTION_INTERVAL,
                |engine| async move { engine.expire_audit().await },
            ),
        ];
        self.background.lock().extend(tasks);
    }

    /// Runs `work` every `interval` until the engine stops or is dropped. A panic in one run is
    /// caught and logged as a health event (`task`), and the next tick runs it again.
    fn every<F, Fut>(
        self: &Arc<Self>,
        task: &'static str,
        interval: Duration,
        work: F,
    ) -> JoinHandle<()>
    where
        F: Fn(Arc<Engine>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        let engine = Arc::downgrade(self);
        let mut stopping = self.stopping.subscribe();
        let health = self.health.clone();
        self.runtime.spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopping.changed() => return,
                }
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let work = work(engine);
                let run = async move {
                    fault::panic_point(task);
                    work.await
                };
                health::catch(&health, task, run).await;
            }
        })
    }

    /// While the disk store is failing writes: tries to recover it (a probe write, or a reopen
    /// once the filesystem has room), and reports the broker ready again when that works.
    async fn probe_storage(&self) {
        if self.disk.failure().is_none() {
            return;
        }
        let disk = self.disk.clone();
        match tokio::task::spawn_blocking(move || disk.recover()).await {
            Ok(Ok(())) => tracing::warn!(
                target: "rapidmq::health",
                event = "storage_recovered",
                "storage accepts writes again: ready"
            ),
            Ok(Err(err)) => tracing::debug!(cause = %err, "storage is still failing writes"),
            Err(err) => tracing::error!(cause = %err, "storage probe task failed"),
        }
    }

    /// Why the broker cannot take writes now (`/readyz` answers 503 with it), or `None`.
    pub fn not_ready_reason(&self) -> Option<&'static str> {
        self.disk
            .failure()
            .map(|_| "storage is failing writes (see the broker log)")
    }

    /// Panics caught in background tasks since the broker started.
    pub fn task_panics(&self) -> u64 {
        self.health.task_panics()
    }

    /// Makes changed queue-mode ack state durable: one write for all of it. Holds the queue
    /// state lock, so a state encoded here cannot land on disk after a seek, or a delete of its
    /// subscription or topic, that came later through this node; other metadata changes do not
    /// wait for it (in cluster mode it waits up to `PROPOSAL_TIMEOUT` for a partition group
    /// that has lost its quorum). A replicated partition's
    /// group also skips a state older than a seek that reached it through another node (the
    /// state's epoch, `PartitionGroup::stale_queue_state`).
    pub(super) async fn flush_queue_state(&self) {
        if self.disk.failure().is_some() {
            // Kept dirty: flushed once the store has recovered.
            return;
        }
        let _guard = self.queue_state_lock.lock().await;
        for topic in self.topics_snapshot() {
            let subs: Vec<Arc<Subscription>> =
                topic.subscriptions.read().values().cloned().collect();
            for sub in subs {
                let Some(queue) = &sub.queue else { continue };
                let states: Vec<(u32, Bytes)> = queue
                    .partitions
                    .iter()
                    .enumerate()
                    // In cluster mode, only the node that delivers a partition (its group's
                    // leader, with or without its lease) proposes its state.
                    .filter(|(p, _)| topic.partition(*p as u32).is_some_and(|p| p.writes_here()))
                    .filter_map(|(p, q)| {
                        let mut q = q.lock();
                        q.is_dirty().then(|| (p as u32, q.encode()))
                    })
                    .collect();
                if states.is_empty() {
                    continue;
                }
                let flushed: Vec<u32> = states.iter().map(|(p, _)| *p).collect();
                let entries: Vec<PartitionEntry> = states
                    .into_iter()
                    .map(|(p, state)| {
                        let change = ConsumerChange::QueueState(state);
                        PartitionEntry::new(topic.id(), p, sub.name(), change)
                    })
                    .collect();
                let persisted = self.apply_partition(&entries, None);
                tokio::pin!(persisted);
                let persisted = tokio::select! {
                    persisted = &mut persisted => persisted,
                    () = tokio::time::sleep(SLOW_QUEUE_FLUSH) => {
                        tracing::warn!(topic = %topic.name(), subscription = %sub.name(), "persisting queue ack state waits for the partition's group (has it lost its quorum?)");
                        persisted.await
                    }
                };
                if let Err(err) = persisted {
                    tracing::error!(topic = %topic.name(), subscription = %sub.name(), cause = %err, "persisting queue ack state failed; retried on the next interval");
                    // Not dropped: the state stays dirty, so the next interval writes it again.
                    for p in flushed {
                        queue.partitions[p as usize].lock().mark_dirty();
                    }
                }
            }
        }
    }

    pub(super) async fn sync_buffered(&self) {
        if self.disk.failure().is_some() {
            // Kept dirty: synced once the store has recovered.
            return;
        }
        if self.buffered_dirty.swap(false, Ordering::AcqRel) {
            let disk = self.disk.clone();
            let started = Instant::now();
            match tokio::task::spawn_blocking(move || disk.sync()).await {
                Ok(Ok(())) => self
                    .metrics
                    .fsync_done(started.elapsed(), "interval fsync of buffered topics"),
                Ok(Err(err)) => {
                    // Not dropped: the next interval syncs again.
                    self.buffered_dirty.store(true, Ordering::Release);
                    self.metrics
                        .storage_error(&err, "interval fsync of buffered topics")
                }
                Err(err) => {
                    self.buffered_dirty.store(true, Ordering::Release);
                    tracing::error!(cause = %err, "fsync task failed")
                }
            }
        }
    }
}
