//! A completion queue: send outcomes delivered in batches, for the language bindings.
//!
//! A binding that awaited every [`SendReceipt`](super::SendReceipt) on its own would spawn a
//! task per message and call back into its language once per message, which costs more than
//! the send itself (a foreign-thread callback into Go, a future per message in Java). Instead it
//! sends with a token of its choosing and a [`Completions`] queue
//! ([`Producer::send_to`](super::Producer::send_to)); the producer pushes the outcomes of a
//! batch there, all at once, when the batch is acknowledged, with no task in between, and the
//! binding takes outcomes many at a time: blocking ([`Completions::wait`], for a thread of its
//! own), async ([`Completions::next`]), or when a signal it installed says outcomes are ready
//! ([`Completions::on_ready`] and [`Completions::try_take`]; the C ABI's signal is a pipe, which
//! Go waits on in its poller instead of holding a thread in a blocking call).

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use crate::error::Result;
use crate::types::Delivery;

/// The outcome of one send, with the token it was queued with.
#[derive(Debug)]
pub struct Completion {
    /// The binding's token for the send.
    pub token: u64,
    /// Where the message was stored, or why it was not.
    pub result: Result<Delivery>,
}

/// Send outcomes, in the order the producer completed them. Share it with an `Arc`; any number
/// of producers may complete into one queue.
#[derive(Default)]
pub struct Completions {
    state: Mutex<State>,
    /// Wakes [`Completions::wait`].
    ready: Condvar,
    /// Wakes [`Completions::next`].
    notify: Notify,
    /// Called when outcomes arrive while `armed` (see [`Completions::on_ready`]).
    signal: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// Whether the next push calls `signal`: set by `try_take`, cleared by the push that
    /// signals, so a taker that has not taken since is not signalled again.
    disarmed: AtomicBool,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Completion>,
    closed: bool,
}

impl Completions {
    /// An empty, open queue.
    pub fn new() -> Completions {
        Completions::default()
    }

    pub(crate) fn push(&self, completion: Completion) {
        self.push_all([completion]);
    }

    /// Pushes outcomes under one lock, waking a taker once.
    pub(crate) fn push_all(&self, completions: impl IntoIterator<Item = Completion>) {
        self.state.lock().queue.extend(completions);
        self.ready.notify_one();
        self.notify.notify_one();
        if let Some(signal) = self.signal.get()
            && !self.disarmed.swap(true, Ordering::AcqRel)
        {
            signal();
        }
    }

    /// Installs `signal`, called from the pushing thread when outcomes arrive and nothing was
    /// signalled since the last [`Completions::try_take`] (and on close). It must not block.
    /// Only the first call installs anything; false for a later one.
    pub fn on_ready(&self, signal: impl Fn() + Send + Sync + 'static) -> bool {
        self.signal.set(Box::new(signal)).is_ok()
    }

    /// Up to `max` outcomes, without waiting; re-arms the signal of [`Completions::on_ready`]
    /// first, so an outcome pushed after this take signals again.
    pub fn try_take(&self, max: usize) -> Vec<Completion> {
        self.disarmed.store(false, Ordering::Release);
        take(&mut self.state.lock().queue, max)
    }

    /// Up to `max` outcomes, waiting at most `timeout` for the first; empty when none came in
    /// time or the queue is closed and drained. Blocks the calling thread.
    pub fn wait(&self, max: usize, timeout: Duration) -> Vec<Completion> {
        let mut state = self.state.lock();
        if state.queue.is_empty() && !state.closed {
            self.ready.wait_for(&mut state, timeout);
        }
        let taken = take(&mut state.queue, max);
        if !state.queue.is_empty() {
            // One wake per push: pass it on to another waiter for what this one left.
            self.ready.notify_one();
        }
        taken
    }

    /// Up to `max` outcomes, waiting for the first; empty once the queue is closed and drained.
    pub async fn next(&self, max: usize) -> Vec<Completion> {
        loop {
            let notified = self.notify.notified();
            {
                let mut state = self.state.lock();
                if !state.queue.is_empty() || state.closed {
                    let taken = take(&mut state.queue, max);
                    if !state.queue.is_empty() {
                        self.notify.notify_one();
                    }
                    return taken;
                }
            }
            notified.await;
        }
    }

    /// Wakes every waiter; later waits return what is left, then nothing. Outcomes still
    /// pushed after it are kept for a last take.
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.ready.notify_all();
        self.notify.notify_waiters();
        if let Some(signal) = self.signal.get() {
            self.disarmed.store(true, Ordering::Release);
            signal();
        }
    }

    /// Whether [`Completions::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.state.lock().closed
    }
}

fn take(queue: &mut VecDeque<Completion>, max: usize) -> Vec<Completion> {
    let n = queue.len().min(max);
    queue.drain(..n).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Durability, SendStatus};

    fn done(token: u64) -> Completion {
        Completion {
            token,
            result: Ok(Delivery {
                partition: 0,
                offset: Some(token),
                durability: Durability::Fsync,
                status: SendStatus::Appended,
            }),
        }
    }

    #[test]
    fn outcomes_come_out_in_order_at_most_max_at_a_time() {
        let q = Completions::new();
        for token in 0..5 {
            q.push(done(token));
        }
        let first: Vec<u64> = q.wait(3, Duration::ZERO).iter().map(|c| c.token).collect();
        let rest: Vec<u64> = q.wait(3, Duration::ZERO).iter().map(|c| c.token).collect();
        assert_eq!((first, rest), (vec![0, 1, 2], vec![3, 4]));
        assert!(q.wait(3, Duration::ZERO).is_empty());
    }

    #[test]
    fn closing_wakes_a_blocked_waiter() {
        let q = std::sync::Arc::new(Completions::new());
        let waiter = std::thread::spawn({
            let q = q.clone();
            move || q.wait(10, Duration::from_secs(60)).len()
        });
        q.close();
        assert_eq!(waiter.join().unwrap(), 0);
        assert!(q.is_closed());
    }

    #[tokio::test]
    async fn next_waits_for_a_push() {
        let q = std::sync::Arc::new(Completions::new());
        let next = tokio::spawn({
            let q = q.clone();
            async move { q.next(10).await.len() }
        });
        tokio::task::yield_now().await;
        q.push(done(1));
        assert_eq!(next.await.unwrap(), 1);
    }

    #[test]
    fn the_ready_signal_fires_once_until_the_next_take_and_on_close() {
        use std::sync::atomic::AtomicUsize;
        let q = Completions::new();
        let signals = std::sync::Arc::new(AtomicUsize::new(0));
        assert!(q.on_ready({
            let signals = signals.clone();
            move || {
                signals.fetch_add(1, Ordering::SeqCst);
            }
        }));
        assert!(!q.on_ready(|| {}), "only the first signal is installed");
        let count = || signals.load(Ordering::SeqCst);

        q.push(done(1));
        q.push_all([done(2), done(3)]);
        assert_eq!(count(), 1, "one signal until the taker takes");
        let taken: Vec<u64> = q.try_take(2).iter().map(|c| c.token).collect();
        assert_eq!(taken, [1, 2]);
        q.push(done(4));
        assert_eq!(count(), 2, "a take re-arms the signal");
        assert_eq!(q.try_take(10).len(), 2);
        assert!(q.try_take(10).is_empty());
        q.close();
        assert_eq!(count(), 3, "closing signals, armed or not");
    }
}
