//! The producer's owner task: the only place that touches batches and sequences.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use rapidmq_proto::{ErrorCode, v1};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::Faults;
use super::accumulator::{Accumulator, Batch, Limits, Pending};
use super::stats::Counters;
use crate::client::Client;
use crate::config::{ProducerConfig, RetryPolicy};
use crate::convert;
use crate::error::{Error, Result};
use crate::retry;
use crate::types::Delivery;

pub(crate) enum Command {
    Send(Pending),
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// A request task's report: the batch's partition, its messages and the outcome.
struct Completion {
    partition: u32,
    messages: Vec<Pending>,
    result: Result<v1::PublishResponse>,
}

/// Idempotence state of one partition.
struct Sequence {
    producer_id: u64,
    next: u64,
}

impl Sequence {
    fn fresh(idempotent: bool) -> Sequence {
        Sequence {
            producer_id: if idempotent { new_producer_id() } else { 0 },
            next: 0,
        }
    }
}

fn new_producer_id() -> u64 {
    loop {
        let id: u64 = rand::random();
        if id != 0 {
            return id;
        }
    }
}

struct FlushWaiter {
    /// Per partition, the count of messages that must have completed.
    targets: Vec<u64>,
    reply: oneshot::Sender<()>,
}

pub(crate) struct Owner {
    client: Client,
    config: ProducerConfig,
    accumulator: Accumulator,
    sequences: Vec<Sequence>,
    /// Per partition: messages appended so far, and messages completed so far.
    appended: Vec<u64>,
    completed: Vec<u64>,
    in_flight: usize,
    flush_waiters: Vec<FlushWaiter>,
    counters: Arc<Counters>,
    faults: Arc<Faults>,
    done_tx: mpsc::UnboundedSender<Completion>,
    done_rx: mpsc::UnboundedReceiver<Completion>,
    /// Round-robin start for dispatch, so no partition starves under `max_in_flight_requests`.
    next_partition: usize,
}

impl Owner {
    pub(crate) fn new(
        client: Client,
        config: ProducerConfig,
        partitions: u32,
        counters: Arc<Counters>,
        faults: Arc<Faults>,
    ) -> Owner {
        let limits = Limits {
            linger: config.linger,
            max_messages: config.max_batch_messages,
            max_bytes: config.max_batch_bytes,
        };
        let (done_tx, done_rx) = mpsc::unbounded_channel();
        let n = partitions as usize;
        Owner {
            accumulator: Accumulator::new(partitions, limits),
            sequences: (0..n)
                .map(|_| Sequence::fresh(config.idempotence))
                .collect(),
            appended: vec![0; n],
            completed: vec![0; n],
            in_flight: 0,
            flush_waiters: Vec::new(),
            counters,
            faults,
            done_tx,
            done_rx,
            next_partition: 0,
            client,
            config,
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut closing: Option<oneshot::Sender<()>> = None;
        let mut commands_open = true;
        loop {
            let draining = closing.is_some() || !commands_open;
            self.dispatch(draining);
            if draining && self.in_flight == 0 && self.accumulator.next_deadline().is_none() {
                break;
            }
            // At the in-flight limit only a completion can let a batch go, so no timer then.
            let deadline = if self.in_flight < self.config.max_in_flight_requests {
                self.accumulator.next_deadline()
            } else {
                None
            };
            tokio::select! {
                command = commands.recv(), if commands_open && closing.is_none() => match command {
                    Some(Command::Send(pending)) => self.append(pending),
                    Some(Command::Flush(reply)) => self.add_flush_waiter(reply),
                    Some(Command::Close(reply)) => closing = Some(reply),
                    None => commands_open = false,
                },
                Some(done) = self.done_rx.recv() => self.complete(done),
                _ = sleep_until(deadline), if deadline.is_some() => {}
            }
        }
        commands.close();
        // Anything that raced with close (sent after it) fails rather than hangs.
        while let Ok(command) = commands.try_recv() {
            match command {
                Command::Send(pending) => {
                    fail(pending, &Error::closed("the producer is closed"));
                }
                Command::Flush(reply) | Command::Close(reply) => {
                    let _ = reply.send(());
                }
            }
        }
        for waiter in self.flush_waiters.drain(..) {
            let _ = waiter.reply.send(());
        }
        if let Some(reply) = closing {
            let _ = reply.send(());
        }
        tracing::debug!(topic = %self.config.topic, "producer stopped");
    }

    fn append(&mut self, pending: Pending) {
        let partition = self.accumulator.partition_for(&pending.message);
        self.appended[partition as usize] += 1;
        self.accumulator.append(partition, pending, Instant::now());
    }

    fn add_flush_waiter(&mut self, reply: oneshot::Sender<()>) {
        self.flush_waiters.push(FlushWaiter {
            targets: self.appended.clone(),
            reply,
        });
        self.resolve_flush_waiters();
    }

    fn resolve_flush_waiters(&mut self) {
        let completed = &self.completed;
        self.flush_waiters.retain_mut(|waiter| {
            let done = waiter
                .targets
                .iter()
                .zip(completed)
                .all(|(target, completed)| completed >= target);
            if done {
                let (tx, _) = oneshot::channel();
                let reply = std::mem::replace(&mut waiter.reply, tx);
                let _ = reply.send(());
            }
            !done
        });
    }

    /// Sends every ready batch the in-flight limits allow.
    fn dispatch(&mut self, draining: bool) {
        let flushing = draining || !self.flush_waiters.is_empty();
        let n = self.accumulator.partitions.len();
        let now = Instant::now();
        for i in 0..n {
            if self.in_flight >= self.config.max_in_flight_requests {
                break;
            }
            let partition = ((self.next_partition + i) % n) as u32;
            if self.accumulator.partitions[partition as usize].in_flight
                || !self.accumulator.is_ready(partition, now, flushing)
            {
                continue;
            }
            if let Some(batch) = self.accumulator.take(partition) {
                self.send_batch(partition, batch);
            }
        }
        self.next_partition = (self.next_partition + 1) % n.max(1);
    }

    fn send_batch(&mut self, partition: u32, batch: Batch) {
        let Batch { mut messages, .. } = batch;
        let count = messages.len() as u64;
        // The payloads move into the encoded batch; the pending entries keep only their replies.
        let encoded: Vec<_> = messages
            .iter_mut()
            .map(|p| (std::mem::take(&mut p.message), p.timestamp_ms))
            .collect();
        let bytes: Bytes = convert::encode_batch(encoded);
        let sequence = &self.sequences[partition as usize];
        let request = v1::PublishRequest {
            topic: self.config.topic.clone(),
            partition,
            producer_id: sequence.producer_id,
            base_sequence: if sequence.producer_id == 0 {
                0
            } else {
                sequence.next
            },
            batch: bytes,
        };
        self.accumulator.partitions[partition as usize].in_flight = true;
        self.in_flight += 1;
        Counters::add(&self.counters.batches, 1);
        tracing::trace!(partition, count, "sending batch");
        let client = self.client.clone();
        let policy = self.config.retry;
        let counters = self.counters.clone();
        let faults = self.faults.clone();
        let done = self.done_tx.clone();
        self.client.runtime().spawn(async move {
            let result = publish_with_retries(&client, request, policy, &counters, &faults).await;
            let _ = done.send(Completion {
                partition,
                messages,
                result,
            });
        });
    }

    fn complete(&mut self, done: Completion) {
        let Completion {
            partition,
            messages,
            result,
        } = done;
        let index = partition as usize;
        self.in_flight -= 1;
        self.accumulator.partitions[index].in_flight = false;
        let count = messages.len() as u64;
        self.completed[index] += count;
        let result = result.and_then(|r| {
            if u64::from(r.count) == count && r.partition == partition {
                Ok(r)
            } else {
                Err(Error::protocol(format!(
                    "broker acknowledged {} messages on partition {} for a batch of {count} on {partition}",
                    r.count, r.partition
                )))
            }
        });
        match result {
            Ok(response) => {
                let sequence = &mut self.sequences[index];
                sequence.next += count;
                if response.duplicate {
                    Counters::add(&self.counters.duplicates, 1);
                }
                Counters::add(&self.counters.messages_acked, count);
                let durability = convert::durability(response.durability);
                for (i, mut pending) in messages.into_iter().enumerate() {
                    if let Some(reply) = pending.reply.take() {
                        let _ = reply.send(Ok(Delivery {
                            partition,
                            offset: response.base_offset + i as u64,
                            durability,
                        }));
                    }
                }
            }
            Err(err) => {
                tracing::warn!(cause = %err, partition, count, topic = %self.config.topic, "batch failed");
                if self.config.idempotence
                    && (err.is_retriable()
                        || err.code() == ErrorCode::OutOfOrderSequence
                        || matches!(err, Error::Protocol { .. }))
                {
                    // The broker may hold this batch: never reuse its sequence numbers.
                    self.sequences[index] = Sequence::fresh(true);
                }
                Counters::add(&self.counters.messages_failed, count);
                for pending in messages {
                    fail(pending, &err);
                }
            }
        }
        self.resolve_flush_waiters();
    }
}

fn fail(mut pending: Pending, err: &Error) {
    if let Some(reply) = pending.reply.take() {
        let _ = reply.send(Err(err.clone()));
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Publishes one batch, retrying retriable failures under `policy`. Every attempt resends the same
/// request (same producer id and sequence), so the broker deduplicates a batch whose ack was lost.
async fn publish_with_retries(
    client: &Client,
    request: v1::PublishRequest,
    policy: RetryPolicy,
    counters: &Counters,
    faults: &Faults,
) -> Result<v1::PublishResponse> {
    retry::with_retries(
        policy,
        |_| Counters::add(&counters.retries, 1),
        || {
            let request = request.clone();
            async move {
                Counters::add(&counters.requests, 1);
                let response = client.publish_once(request).await?;
                let lose = faults
                    .lose_acks
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if lose {
                    return Err(Error::unavailable("ack lost (fault injection)"));
                }
                Ok(response)
            }
        },
    )
    .await
}
