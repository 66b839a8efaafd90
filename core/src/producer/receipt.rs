//! Where a send's outcome goes: a receipt, or a binding's completion queue.
//!
//! Receipts are slots of a shared [`Block`] (one allocation per [`BLOCK_SIZE`] sends instead of a
//! oneshot channel per send). The owner task completes a slot through its [`Reply`]; the
//! application waits on the same slot through its [`SendReceipt`]. A send of the bindings
//! (`Producer::send_to`) has no slot: its `Reply` pushes the outcome to a [`Completions`] queue
//! under the binding's token, and the owner task pushes a whole batch's outcomes at once through
//! an [`Outbox`]. A `Reply` dropped without completing (the producer stopped) fails its send with
//! [`Error::Closed`], as a dropped channel sender would.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

use super::completions::{Completion, Completions};
use crate::error::{Error, Result};
use crate::types::Delivery;

/// Receipts per block.
pub(crate) const BLOCK_SIZE: usize = 256;

#[derive(Default)]
struct SlotState {
    result: Option<Result<Delivery>>,
    waker: Option<Waker>,
    completed: bool,
}

/// A block of receipt slots.
pub(crate) struct Block {
    slots: Box<[Mutex<SlotState>]>,
}

/// Hands out the slots of one block after the other; kept under the producer's intake lock.
#[derive(Default)]
pub(crate) struct Slots {
    block: Option<Arc<Block>>,
    next: usize,
}

impl Slots {
    /// A new receipt and the reply that completes it.
    pub(crate) fn next(&mut self) -> (Reply, SendReceipt) {
        let block = match &self.block {
            Some(block) if self.next < BLOCK_SIZE => block.clone(),
            _ => {
                let block = Arc::new(Block {
                    slots: (0..BLOCK_SIZE).map(|_| Mutex::default()).collect(),
                });
                self.block = Some(block.clone());
                self.next = 0;
                block
            }
        };
        let index = self.next;
        self.next += 1;
        (
            Reply(Some(Target::Slot {
                block: block.clone(),
                index,
            })),
            SendReceipt { block, index },
        )
    }
}

fn stopped() -> Error {
    Error::closed("the producer stopped before this message completed")
}

/// Completes one send, once: sent explicitly, or failed with [`Error::Closed`] when dropped.
pub(crate) struct Reply(Option<Target>);

enum Target {
    /// A [`SendReceipt`]'s slot.
    Slot { block: Arc<Block>, index: usize },
    /// A binding's completion queue, under its token.
    Queue { queue: Arc<Completions>, token: u64 },
}

impl Reply {
    /// A reply that pushes the outcome to `queue` under `token`.
    pub(crate) fn to_queue(queue: &Arc<Completions>, token: u64) -> Reply {
        Reply(Some(Target::Queue {
            queue: queue.clone(),
            token,
        }))
    }

    pub(crate) fn send(mut self, result: Result<Delivery>) {
        if let Some(target) = self.0.take() {
            target.complete(result);
        }
    }

    /// Like [`Reply::send`], but a queue's outcome waits in `outbox`, which pushes the outcomes
    /// it holds in one go.
    pub(crate) fn send_via(mut self, result: Result<Delivery>, outbox: &mut Outbox) {
        match self.0.take() {
            Some(Target::Queue { queue, token }) => {
                outbox.push(queue, Completion { token, result })
            }
            Some(slot) => slot.complete(result),
            None => {}
        }
    }
}

impl Target {
    fn complete(self, result: Result<Delivery>) {
        match self {
            Target::Queue { queue, token } => queue.push(Completion { token, result }),
            Target::Slot { block, index } => {
                let mut slot = block.slots[index].lock();
                slot.completed = true;
                slot.result = Some(result);
                let waker = slot.waker.take();
                drop(slot);
                if let Some(waker) = waker {
                    waker.wake();
                }
            }
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(target) = self.0.take() {
            target.complete(Err(stopped()));
        }
    }
}

/// Outcomes on their way to completion queues, pushed a run at a time: consecutive outcomes for
/// one queue take its lock and wake its taker once, not once per send. Pushes what it holds
/// when dropped.
#[derive(Default)]
pub(crate) struct Outbox {
    run: Option<(Arc<Completions>, Vec<Completion>)>,
}

impl Outbox {
    fn push(&mut self, queue: Arc<Completions>, completion: Completion) {
        match &mut self.run {
            Some((current, run)) if Arc::ptr_eq(current, &queue) => run.push(completion),
            _ => {
                self.flush();
                self.run = Some((queue, vec![completion]));
            }
        }
    }

    fn flush(&mut self) {
        if let Some((queue, run)) = self.run.take() {
            queue.push_all(run);
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The eventual result of one `send`: where the message was stored, or why it was not.
///
/// Await it (it is a `Future`), or poll it without blocking with [`SendReceipt::try_result`].
pub struct SendReceipt {
    block: Arc<Block>,
    index: usize,
}

impl SendReceipt {
    /// The result if it is known already; `None` while the batch is pending.
    pub fn try_result(&mut self) -> Option<Result<Delivery>> {
        let mut slot = self.block.slots[self.index].lock();
        match slot.result.take() {
            Some(result) => Some(result),
            None if slot.completed => Some(Err(stopped())),
            None => None,
        }
    }
}

impl Future for SendReceipt {
    type Output = Result<Delivery>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut slot = self.block.slots[self.index].lock();
        if let Some(result) = slot.result.take() {
            return Poll::Ready(result);
        }
        if slot.completed {
            return Poll::Ready(Err(stopped()));
        }
        match &slot.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            _ => slot.waker = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for SendReceipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendReceipt").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::types::{Durability, SendStatus};

    fn appended(offset: u64) -> Result<Delivery> {
        Ok(Delivery {
            partition: 0,
            offset: Some(offset),
            durability: Durability::Fsync,
            status: SendStatus::Appended,
        })
    }

    #[test]
    fn replies_to_a_queue_arrive_under_their_tokens_and_a_dropped_one_fails() {
        let completions = Arc::new(Completions::new());
        let mut outbox = Outbox::default();
        Reply::to_queue(&completions, 10).send_via(appended(0), &mut outbox);
        Reply::to_queue(&completions, 11).send_via(appended(1), &mut outbox);
        assert!(
            completions.wait(10, Duration::ZERO).is_empty(),
            "the outbox holds its run until it is dropped"
        );
        drop(outbox);
        drop(Reply::to_queue(&completions, 12));

        let outcomes: Vec<(u64, Option<u64>)> = completions
            .wait(10, Duration::ZERO)
            .into_iter()
            .map(|c| (c.token, c.result.ok().and_then(|d| d.offset)))
            .collect();
        assert_eq!(outcomes, vec![(10, Some(0)), (11, Some(1)), (12, None)]);
    }

    #[test]
    fn an_outbox_keeps_the_order_across_queues() {
        let (a, b) = (Arc::new(Completions::new()), Arc::new(Completions::new()));
        let mut slots = Slots::default();
        let (slot_reply, mut receipt) = slots.next();
        {
            let mut outbox = Outbox::default();
            Reply::to_queue(&a, 1).send_via(appended(0), &mut outbox);
            Reply::to_queue(&b, 2).send_via(appended(1), &mut outbox);
            slot_reply.send_via(appended(2), &mut outbox);
            Reply::to_queue(&a, 3).send_via(appended(3), &mut outbox);
        }
        let tokens = |q: &Completions| -> Vec<u64> {
            q.wait(10, Duration::ZERO).iter().map(|c| c.token).collect()
        };
        assert_eq!((tokens(&a), tokens(&b)), (vec![1, 3], vec![2]));
        assert_eq!(receipt.try_result().unwrap().unwrap().offset, Some(2));
    }
}
