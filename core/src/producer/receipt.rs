//! Send receipts without a channel per message.
//!
//! Receipts are slots of a shared [`Block`] (one allocation per [`BLOCK_SIZE`] sends instead of a
//! oneshot channel per send). The owner task completes a slot through its [`Reply`]; the
//! application waits on the same slot through its [`SendReceipt`]. A `Reply` dropped without
//! completing (the producer stopped) fails its receipt with [`Error::Closed`], as a dropped
//! channel sender would.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;

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
