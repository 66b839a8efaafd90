//! A completion queue: send outcomes delivered in batches, for the language bindings.
//!
//! A binding that awaited every [`SendReceipt`](super::SendReceipt) on its own would spawn a
//! task per message and call back into its language once per message, which costs more than
//! the send itself (a foreign-thread callback into Go, a future per message in Java). Instead it
//! hands each receipt to a [`Completions`] queue with a token of its choosing
//! ([`SendReceipt::complete_into`](super::SendReceipt::complete_into)); the producer pushes the
//! outcome there when the batch is acknowledged, with no task in between, and the binding takes
//! outcomes many at a time: blocking ([`Completions::wait`], for a thread of its own) or async
//! ([`Completions::next`]).

use std::collections::VecDeque;
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
        self.state.lock().queue.push_back(completion);
        self.ready.notify_one();
        self.notify.notify_one();
    }

    /// Up to `max` outcomes, waiting at most `timeout` for the first; empty when none came in
    /// time or the queue is closed and drained. Blocks the calling thread.
    pub fn wait(&self, max: usize, timeout: Duration) -> Vec<Completion> {
        let mut state = self.state.lock();
        if state.queue.is_empty() && !state.closed {
            self.ready.wait_for(&mut state, timeout);
        }
        take(&mut state.queue, max)
    }

    /// Up to `max` outcomes, waiting for the first; empty once the queue is closed and drained.
    pub async fn next(&self, max: usize) -> Vec<Completion> {
        loop {
            let notified = self.notify.notified();
            {
                let mut state = self.state.lock();
                if !state.queue.is_empty() || state.closed {
                    return take(&mut state.queue, max);
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
}
