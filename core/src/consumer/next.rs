//! Consumers as [`futures::Stream`]s: [`Consumer`](super::Consumer) yields
//! [`ReceivedMessage`](crate::ReceivedMessage)s and [`QueueConsumer`](super::QueueConsumer)
//! [`QueueMessage`](super::QueueMessage)s, one at a time, waiting as long as it takes.
//!
//! Each item is taken from the consumer's buffer with a poll of one, never more: a taken message
//! counts as delivered (and, with auto-commit, as acknowledged), so the stream must not take
//! what it has not yielded yet. The buffer itself still prefetches. The stream ends (`None`) once
//! the consumer is closed; an error that ends the subscription is yielded once, then the stream
//! ends.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::{Context, Poll, ready};

use futures::future::BoxFuture;

use crate::error::{Error, Result};

/// What a consumer used as a stream keeps between `poll_next` calls: the take in flight, and
/// whether the stream ended. The `Mutex` only keeps the consumer `Sync`: `poll_next` has `&mut`
/// access and never locks. A clone of the consumer starts without either.
pub(crate) struct Next<T> {
    take: Mutex<Option<BoxFuture<'static, Result<Vec<T>>>>>,
    ended: bool,
}

impl<T> Default for Next<T> {
    fn default() -> Next<T> {
        Next {
            take: Mutex::new(None),
            ended: false,
        }
    }
}

impl<T> Clone for Next<T> {
    fn clone(&self) -> Next<T> {
        Next::default()
    }
}

impl<T: Send + 'static> Next<T> {
    /// The next item: polls the take in flight (started with `start`, a poll of one that waits
    /// as long as it takes) until it yields a message, the consumer closes, or it fails.
    pub(crate) fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        start: impl Fn() -> BoxFuture<'static, Result<Vec<T>>>,
    ) -> Poll<Option<Result<T>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let slot = self.take.get_mut().unwrap_or_else(PoisonError::into_inner);
        loop {
            let take = slot.get_or_insert_with(&start);
            let taken = ready!(Pin::new(take).poll(cx));
            *slot = None;
            match taken {
                Ok(mut one) => match one.pop() {
                    Some(item) => return Poll::Ready(Some(Ok(item))),
                    None => continue, // the wait ended empty: wait again
                },
                Err(Error::Closed { .. }) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Err(err) => {
                    self.ended = true;
                    return Poll::Ready(Some(Err(err)));
                }
            }
        }
    }
}
