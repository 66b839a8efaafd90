//! Broker health: supervision of background tasks, and what `/readyz` reports.
//!
//! Every long-lived engine task runs under supervision, so none can die silently:
//! - a partition writer catches a panic in one group commit ([`catch`]), answers nothing for that
//!   group (its publishers see `UNAVAILABLE`, retriable), reloads the partition's state from the
//!   store and carries on;
//! - an interval task (buffered fsync, queue-state flush, retention, storage probe) catches a
//!   panic in one run and runs again on its next tick;
//! - the scheduler is restarted by [`supervise`] after a pause.
//!
//! Each caught panic is logged as a `task_panicked` health event (target `rapidmq::health`) and
//! counted in [`Health::task_panics`]. Storage failure is the other health condition: while
//! the disk store is failing writes the broker is not ready (see `storage/rocks.rs`).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use tokio::sync::watch;

/// How long a supervised task that panicked waits before it starts again.
const RESTART_PAUSE: Duration = Duration::from_millis(200);

/// Health figures shared by the engine's tasks.
#[derive(Debug, Default)]
pub struct Health {
    task_panics: AtomicU64,
}

impl Health {
    /// Panics caught in background tasks since the broker started.
    pub fn task_panics(&self) -> u64 {
        self.task_panics.load(Ordering::Relaxed)
    }

    /// Logs a caught panic of `task` as a health event and counts it.
    pub fn task_panicked(&self, task: &str, payload: &(dyn Any + Send)) {
        self.task_panics.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            target: "rapidmq::health",
            event = "task_panicked",
            task,
            cause = %panic_message(payload),
            "a background task panicked; it carries on"
        );
    }
}

/// Runs `work`, turning a panic into `None` (logged and counted by `health`).
pub async fn catch<F: Future>(health: &Health, task: &str, work: F) -> Option<F::Output> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(output) => Some(output),
        Err(payload) => {
            health.task_panicked(task, &*payload);
            None
        }
    }
}

/// Runs the task `start()` makes until it returns; after a panic, starts it again (after a
/// short pause) unless `stopping` is set.
pub async fn supervise<F, Fut>(
    health: &Health,
    task: &str,
    mut stopping: watch::Receiver<bool>,
    start: F,
) where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        if catch(health, task, start()).await.is_some() || *stopping.borrow() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(RESTART_PAUSE) => {}
            _ = stopping.changed() => return,
        }
        tracing::warn!(target: "rapidmq::health", event = "task_restarted", task, "restarting a background task after a panic");
    }
}

/// The text of a panic payload.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "a panic without a message".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[tokio::test]
    async fn a_panicking_task_is_counted_and_restarted_until_it_returns() {
        let health = Health::default();
        let runs = &AtomicU32::new(0);
        let (_stop, stopping) = watch::channel(false);
        supervise(&health, "test", stopping, move || async move {
            if runs.fetch_add(1, Ordering::SeqCst) < 2 {
                panic!("boom");
            }
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3);
        assert_eq!(health.task_panics(), 2);
    }

    #[tokio::test]
    async fn catch_returns_the_output_or_none_after_a_panic() {
        let health = Health::default();
        assert_eq!(catch(&health, "ok", async { 7 }).await, Some(7));
        let panicked: Option<()> = catch(&health, "bad", async {
            if health.task_panics() == 0 {
                panic!("no");
            }
        })
        .await;
        assert_eq!(panicked, None);
        assert_eq!(health.task_panics(), 1);
    }
}
