//! Send receipts without a channel per message.
//!
//! Receipts are slots of a shared [`Block`] (one allocation per [`BLOCK_SIZE`] sends instead of a
//! oneshot channel per send). The owner task completes a slot through its [`Reply`]; the
//! application waits on the same slot through its [`SendReceipt`]. A `Reply` dropped without
//! completing (the producer stopped) fails its receipt with [`Error::Closed`], as a dropped
//! channel sender would. A receipt handed to a [`Completions`] queue
//! ([`SendReceipt::complete_into`]) is completed by pushing its outcome there instead.

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
    /// Where the outcome goes instead of `result`, with its token.
    sink: Option<(Arc<Completions>, u64)>,
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
            Reply {
                block: block.clone(),
                index,
            },
            SendReceipt { block, index },
        )
    }
}

fn stopped() -> Error {
    Error::closed("the producer stopped before this message completed")
}

/// Completes one receipt.
pub(crate) struct Reply {
    block: Arc<Block>,
    index: usize,
}

impl Reply {
    pub(crate) fn send(self, result: Result<Delivery>) {
        self.complete(result);
    }

    fn complete(&self, result: Result<Delivery>) {
        let mut slot = self.block.slots[self.index].lock();
        if slot.completed {
            return;
        }
        slot.completed = true;
        if let Some((completions, token)) = slot.sink.take() {
            drop(slot);
            completions.push(Completion { token, result });
            return;
        }
        slot.result = Some(result);
        let waker = slot.waker.take();
        drop(slot);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        self.complete(Err(stopped()));
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
    /// Hands the outcome to `completions` with `token` instead of to this receipt: at once if it
    /// is known already, else when the producer completes the send. For the bindings, which
    /// take outcomes in batches rather than awaiting each receipt.
    pub fn complete_into(self, completions: &Arc<Completions>, token: u64) {
        let mut slot = self.block.slots[self.index].lock();
        let result = match slot.result.take() {
            Some(result) => result,
            None if slot.completed => Err(stopped()),
            None => {
                slot.sink = Some((completions.clone(), token));
                return;
            }
        };
        drop(slot);
        completions.push(Completion { token, result });
    }

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
    fn a_receipt_handed_to_a_queue_gets_its_outcome_there_whenever_it_completes() {
        let completions = Arc::new(Completions::new());
        let mut slots = Slots::default();
        let (early_reply, early) = slots.next();
        let (late_reply, late) = slots.next();
        let (dropped_reply, dropped) = slots.next();
        early_reply.send(appended(0));
        early.complete_into(&completions, 10);
        late.complete_into(&completions, 11);
        dropped.complete_into(&completions, 12);
        late_reply.send(appended(1));
        drop(dropped_reply);

        let outcomes: Vec<(u64, Option<u64>)> = completions
            .wait(10, Duration::ZERO)
            .into_iter()
            .map(|c| (c.token, c.result.ok().and_then(|d| d.offset)))
            .collect();
        assert_eq!(outcomes, vec![(10, Some(0)), (11, Some(1)), (12, None)]);
    }
}
