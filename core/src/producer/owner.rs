//! The producer's owner task: the only place that touches batches, sequences and the in-flight
//! windows. It takes sent messages from the shared intake in bulk, receives `flush`/`close`
//! commands from the surface and answers from the publish stream.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use rapidmq_proto::{ErrorCode, v1};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::accumulator::{Accumulator, Batch, Limits, Pending};
use super::flight::{Flight, Window};
use super::placement;
use super::receipt::Outbox;
use super::stats::Counters;
use super::stream::{Event, StreamHandle};
use super::{Faults, Intake};
use crate::client::Client;
use crate::config::ProducerConfig;
use crate::convert;
use crate::error::{Error, Result};
use crate::retry::Backoff;

pub(crate) enum Command {
    Flush(oneshot::Sender<()>),
    Close(oneshot::Sender<()>),
}

/// Idempotence state of one partition: the id and the next sequence to hand out.
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

/// A request on the wire: its stream, its partition and batch (by id: a batch's slot in the
/// window moves as earlier batches complete), and when it was sent.
struct Outstanding {
    stream: u64,
    partition: u32,
    batch: u64,
    sent: Instant,
}

pub(crate) struct Owner {
    client: Client,
    config: ProducerConfig,
    intake: Arc<Intake>,
    /// The intake's previous buffer, swapped in on each take so its capacity is reused.
    spare: Vec<Pending>,
    accumulator: Accumulator,
    sequences: Vec<Sequence>,
    windows: Vec<Window>,
    /// Batch ids of each window's flights, parallel to `windows[p].flights`.
    batch_ids: Vec<std::collections::VecDeque<u64>>,
    /// Per partition: messages appended so far, and messages completed so far.
    appended: Vec<u64>,
    completed: Vec<u64>,
    in_flight: usize,
    flush_waiters: Vec<FlushWaiter>,
    counters: Arc<Counters>,
    faults: Arc<Faults>,
    events_tx: mpsc::UnboundedSender<Event>,
    events_rx: mpsc::UnboundedReceiver<Event>,
    /// The open publish streams: to the seed (`None`) and to partition leaders (their node).
    streams: HashMap<Option<u64>, StreamHandle>,
    /// Per partition, where its requests go while any is on the wire: a partition changes
    /// leader only when quiet, so an idempotent producer's batches stay in order.
    targets: Vec<Option<(u64, String)>>,
    /// Set while the topic's metadata is being asked for.
    refreshing: Arc<AtomicBool>,
    next_stream: u64,
    outstanding: HashMap<u64, Outstanding>,
    next_correlation: u64,
    next_batch: u64,
    /// Round-robin start for dispatch, so no partition starves under `max_in_flight_requests`.
    next_partition: usize,
}

impl Owner {
    pub(crate) fn new(
        client: Client,
        config: ProducerConfig,
        partitions: u32,
        intake: Arc<Intake>,
        counters: Arc<Counters>,
        faults: Arc<Faults>,
    ) -> Owner {
        let limits = Limits {
            linger: config.linger,
            max_messages: config.max_batch_messages,
            max_bytes: config.max_batch_bytes,
        };
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let n = partitions as usize;
        Owner {
            intake,
            spare: Vec::new(),
            accumulator: Accumulator::new(partitions, limits),
            sequences: (0..n)
                .map(|_| Sequence::fresh(config.idempotence))
                .collect(),
            windows: (0..n).map(|_| Window::default()).collect(),
            batch_ids: (0..n).map(|_| Default::default()).collect(),
            appended: vec![0; n],
            completed: vec![0; n],
            in_flight: 0,
            flush_waiters: Vec::new(),
            counters,
            faults,
            events_tx,
            events_rx,
            streams: HashMap::new(),
            targets: vec![None; n],
            refreshing: Arc::new(AtomicBool::new(false)),
            next_stream: 0,
            outstanding: HashMap::new(),
            next_correlation: 0,
            next_batch: 0,
            next_partition: 0,
            client,
            config,
        }
    }

    pub(crate) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut closing: Option<oneshot::Sender<()>> = None;
        let mut commands_open = true;
        let intake = self.intake.clone();
        loop {
            let draining = closing.is_some() || !commands_open;
            if !draining {
                self.take_intake(false);
            }
            self.dispatch(draining);
            if draining && self.in_flight == 0 && self.accumulator.next_deadline().is_none() {
                break;
            }
            let deadline = self.next_wakeup();
            tokio::select! {
                command = commands.recv(), if commands_open && closing.is_none() => match command {
                    Some(Command::Flush(reply)) => {
                        // Everything sent before the flush is in the intake already.
                        self.take_intake(false);
                        self.add_flush_waiter(reply);
                    }
                    Some(Command::Close(reply)) => {
                        self.take_intake(true);
                        closing = Some(reply);
                    }
                    None => {
                        self.take_intake(true);
                        commands_open = false;
                    }
                },
                _ = intake.notify.notified(), if !draining => {}
                Some(event) = self.events_rx.recv() => self.on_event(event),
                _ = sleep_until(deadline), if deadline.is_some() => self.expire_requests(),
            }
        }
        self.streams.clear();
        self.take_intake(true);
        commands.close();
        // Anything that raced with close (sent after it) fails rather than hangs.
        while let Ok(command) = commands.try_recv() {
            match command {
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

    /// Moves every message of the intake into the batches; `close` also makes later sends fail.
    fn take_intake(&mut self, close: bool) {
        let mut spare = std::mem::take(&mut self.spare);
        {
            let mut intake = self.intake.state.lock();
            if close {
                intake.closed = true;
            }
            std::mem::swap(&mut intake.messages, &mut spare);
        }
        if !spare.is_empty() {
            let now = Instant::now();
            for pending in spare.drain(..) {
                self.append(pending, now);
            }
        }
        self.spare = spare;
    }

    /// The earliest of: a linger deadline (when a request slot is free), a scheduled resend, and
    /// the request timeout of the oldest outstanding request.
    fn next_wakeup(&self) -> Option<Instant> {
        let linger = if self.in_flight < self.config.max_in_flight_requests {
            self.accumulator.next_deadline()
        } else {
            None
        };
        let resend = self.windows.iter().filter_map(|w| w.resend_at).min();
        let timeout = self
            .outstanding
            .values()
            .map(|o| o.sent + self.client.config().request_timeout)
            .min();
        [linger, resend, timeout].into_iter().flatten().min()
    }

    fn append(&mut self, pending: Pending, now: Instant) {
        let partition = self.accumulator.partition_for(&pending.message);
        self.appended[partition as usize] += 1;
        self.accumulator.append(partition, pending, now);
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

    fn refresh_blocked(&mut self, partition: usize) {
        let window = &self.windows[partition];
        self.accumulator.partitions[partition].blocked =
            window.recovering || window.flights.len() >= self.config.max_in_flight_per_partition;
    }

    /// Resends what is due and sends every ready batch the in-flight limits allow.
    fn dispatch(&mut self, draining: bool) {
        let now = Instant::now();
        for p in 0..self.windows.len() {
            if self.windows[p].resend_at.is_some_and(|at| at <= now) {
                self.resend(p as u32);
            }
        }
        let flushing = draining || !self.flush_waiters.is_empty();
        let n = self.accumulator.partitions.len();
        for i in 0..n {
            let partition = ((self.next_partition + i) % n) as u32;
            let index = partition as usize;
            while self.in_flight < self.config.max_in_flight_requests
                && !self.accumulator.partitions[index].blocked
                && self.accumulator.is_ready(partition, now, flushing)
            {
                let Some(batch) = self.accumulator.take(partition) else {
                    break;
                };
                self.start_batch(partition, batch);
            }
        }
        self.next_partition = (self.next_partition + 1) % n.max(1);
    }

    fn start_batch(&mut self, partition: u32, batch: Batch) {
        let Batch { mut messages, .. } = batch;
        let count = messages.len() as u64;
        // The payloads move into the encoded batch; the pending entries keep only their replies.
        let bytes: Bytes = convert::encode_batch(
            messages
                .iter_mut()
                .map(|p| (std::mem::take(&mut p.message), p.timestamp_ms)),
            self.config.compression,
        );
        let index = partition as usize;
        let sequence = &mut self.sequences[index];
        let base_sequence = if sequence.producer_id == 0 {
            0
        } else {
            sequence.next
        };
        sequence.next += count;
        let request = v1::PublishRequest {
            topic: self.config.topic.clone(),
            partition,
            producer_id: sequence.producer_id,
            base_sequence,
            batch: bytes,
        };
        let batch_id = self.next_batch;
        self.next_batch += 1;
        self.windows[index].flights.push_back(Flight {
            request,
            messages,
            answer: None,
            outstanding: false,
            backoff: None,
        });
        self.batch_ids[index].push_back(batch_id);
        self.in_flight += 1;
        Counters::add(&self.counters.batches, 1);
        let depth = self.windows[index].flights.len() as u64;
        self.counters
            .max_partition_in_flight
            .fetch_max(depth, Ordering::Relaxed);
        tracing::trace!(partition, count, base_sequence, "sending batch");
        self.send(partition, self.windows[index].flights.len() - 1);
        self.refresh_blocked(index);
    }

    /// Writes flight `slot` of `partition` to the publish stream of the partition's leader, or
    /// of the seed connection when its leader is not known (opening one if needed).
    fn send(&mut self, partition: u32, slot: usize) {
        let index = partition as usize;
        if self.windows[index].quiet() {
            self.targets[index] = self.client.routes().leader(&self.config.topic, partition);
        }
        let target = self.targets[index].clone();
        let key = target.as_ref().map(|(node, _)| *node);
        if !self.streams.contains_key(&key) {
            self.next_stream += 1;
            let stream = StreamHandle::open(
                &self.client,
                self.next_stream,
                target,
                self.events_tx.clone(),
            );
            self.streams.insert(key, stream);
        }
        let Some(stream) = self.streams.get(&key) else {
            return;
        };
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        let flight = &mut self.windows[index].flights[slot];
        flight.outstanding = true;
        let request = v1::PublishStreamRequest {
            correlation_id,
            request: Some(flight.request.clone()),
        };
        self.outstanding.insert(
            correlation_id,
            Outstanding {
                stream: stream.id,
                partition,
                batch: self.batch_ids[index][slot],
                sent: Instant::now(),
            },
        );
        Counters::add(&self.counters.requests, 1);
        // A closed channel means the stream task ended; its `Lost` event fails this request.
        let _ = stream.requests.send(request);
    }

    /// Resends, in order, every batch of `partition` that has no answer yet.
    fn resend(&mut self, partition: u32) {
        let index = partition as usize;
        self.windows[index].resend_at = None;
        self.windows[index].recovering = false;
        for slot in 0..self.windows[index].flights.len() {
            let flight = &self.windows[index].flights[slot];
            if flight.answer.is_none() && !flight.outstanding {
                self.send(partition, slot);
            }
        }
        self.refresh_blocked(index);
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Answer {
                correlation_id,
                mut result,
                ..
            } => {
                let Some(request) = self.outstanding.remove(&correlation_id) else {
                    return; // answer to a request already given up on (timed out)
                };
                if result.is_ok() && self.lose_ack() {
                    result = Err(Error::unavailable("ack lost (fault injection)"));
                }
                self.answer(request.partition, request.batch, result);
            }
            Event::Lost { stream, error } => {
                self.streams.retain(|_, s| s.id != stream);
                self.fail_stream(stream, &error);
            }
        }
        self.refresh_routes();
        self.resolve_flush_waiters();
    }

    /// Asks for the topic's metadata again, in the background, when an answer said the known
    /// routes are stale (one request at a time; sends meanwhile use what is known).
    fn refresh_routes(&self) {
        let topic = &self.config.topic;
        if !self.client.routes().needs_metadata(topic)
            || self.refreshing.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let (client, topic, refreshing) =
            (self.client.clone(), topic.clone(), self.refreshing.clone());
        self.client.runtime().spawn(async move {
            client.refresh_routes(&topic).await;
            refreshing.store(false, Ordering::SeqCst);
        });
    }

    /// Fails every request outstanding on `stream` with `error`.
    fn fail_stream(&mut self, stream: u64, error: &Error) {
        let lost: Vec<u64> = self
            .outstanding
            .iter()
            .filter(|(_, o)| o.stream == stream)
            .map(|(&id, _)| id)
            .collect();
        for id in lost {
            if let Some(request) = self.outstanding.remove(&id) {
                self.answer(request.partition, request.batch, Err(error.clone()));
            }
        }
    }

    /// A request outstanding longer than the request timeout means the stream is stuck: drop it
    /// and fail what was on it (retriable), so it is resent on a new stream.
    fn expire_requests(&mut self) {
        let timeout = self.client.config().request_timeout;
        let now = Instant::now();
        if !self.outstanding.values().any(|o| o.sent + timeout <= now) {
            return;
        }
        for (node, stream) in std::mem::take(&mut self.streams) {
            if let Some(node) = node {
                self.client.routes().node_failed(node);
            }
            self.fail_stream(
                stream.id,
                &Error::Timeout {
                    message: format!("no publish answer within {timeout:?}"),
                },
            );
        }
        self.resolve_flush_waiters();
    }

    fn lose_ack(&self) -> bool {
        self.faults
            .lose_acks
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn answer(&mut self, partition: u32, batch: u64, result: Result<v1::PublishResponse>) {
        let index = partition as usize;
        let Some(slot) = self.batch_ids[index].iter().position(|&b| b == batch) else {
            return;
        };
        let flight = &mut self.windows[index].flights[slot];
        flight.outstanding = false;
        flight.answer = Some(result);
        self.settle(partition);
    }

    /// Completes answered batches from the front of the window, in order, and handles the first
    /// failure once nothing of the partition is on the wire any more.
    fn settle(&mut self, partition: u32) {
        let index = partition as usize;
        while let Some(front) = self.windows[index].flights.front_mut() {
            match &front.answer {
                None => break,
                Some(Ok(response)) => {
                    let delayed: Vec<bool> = front.messages.iter().map(|p| p.delayed).collect();
                    let durability = convert::durability(response.durability);
                    let placed = if response.partition == partition {
                        placement::place(&delayed, response, durability)
                    } else {
                        Err(Error::protocol(format!(
                            "broker acknowledged partition {} for a batch of partition {partition}",
                            response.partition
                        )))
                    };
                    match placed {
                        Ok(placed) => {
                            if response.duplicate {
                                Counters::add(&self.counters.duplicates, 1);
                            }
                            let flight = self.pop(index);
                            Counters::add(&self.counters.messages_acked, flight.len());
                            // The batch's outcomes for a binding's queue go there in one push.
                            let mut outbox = Outbox::default();
                            for (mut pending, delivery) in flight.messages.into_iter().zip(placed) {
                                if let Some(reply) = pending.reply.take() {
                                    reply.send_via(Ok(delivery), &mut outbox);
                                }
                            }
                        }
                        Err(err) => front.answer = Some(Err(err)),
                    }
                }
                Some(Err(_)) => {
                    self.windows[index].recovering = true;
                    if self.windows[index].quiet() {
                        self.recover(partition);
                    }
                    break;
                }
            }
        }
        self.refresh_blocked(index);
    }

    fn pop(&mut self, index: usize) -> Flight {
        self.batch_ids[index].pop_front();
        let mut flight = self.windows[index]
            .flights
            .pop_front()
            .expect("settle pops only an existing front");
        // Release the batch's buffer slots in one semaphore operation, not one per message.
        let mut permits = flight.messages.iter_mut().filter_map(|p| p.permit.take());
        if let Some(mut released) = permits.next() {
            permits.for_each(|p| released.merge(p));
        }
        self.in_flight -= 1;
        self.completed[index] += flight.len();
        flight
    }

    /// The front batch of `partition` failed and nothing of the partition is on the wire.
    ///
    /// - Retriable, within its budget: it and every later batch without an answer are resent in
    ///   order after a backoff, with the same sequences (the broker answers batches it already
    ///   stored as duplicates with their original offsets).
    /// - Otherwise it fails. Later unanswered batches are resent at once with new sequences:
    ///   from the failed batch's first sequence when the broker refused it outright (it consumed
    ///   no sequence numbers), or under a fresh producer id when the broker may hold it (budget
    ///   spent, `OUT_OF_ORDER_SEQUENCE`, an undecodable answer).
    fn recover(&mut self, partition: u32) {
        let index = partition as usize;
        let policy = self.config.retry;
        let window = &mut self.windows[index];
        let Some(front) = window.flights.front_mut() else {
            return;
        };
        let Some(Err(err)) = &front.answer else {
            return;
        };
        let err = err.clone();
        if err.is_retriable() {
            let delay = front
                .backoff
                .get_or_insert_with(|| Backoff::new(policy))
                .next_delay(&err);
            if let Some(delay) = delay {
                tracing::debug!(cause = %err, partition, ?delay, "resending from the failed batch");
                let mut resent = 0;
                for flight in &mut window.flights {
                    if matches!(flight.answer, Some(Err(_))) {
                        flight.answer = None;
                        resent += 1;
                    }
                }
                Counters::add(&self.counters.retries, resent);
                window.resend_at = Some(Instant::now() + delay);
                return;
            }
        }
        tracing::warn!(cause = %err, partition, topic = %self.config.topic, "batch failed");
        let base_sequence = front.request.base_sequence;
        let flight = self.pop(index);
        Counters::add(&self.counters.messages_failed, flight.len());
        for pending in flight.messages {
            fail(pending, &err);
        }
        if err.is_retriable() {
            self.fail_retried_with_front(index, &err);
        }
        let may_be_stored = err.is_retriable()
            || err.code() == ErrorCode::OutOfOrderSequence
            || matches!(err, Error::Protocol { .. });
        let sequence = &mut self.sequences[index];
        if self.config.idempotence && may_be_stored {
            *sequence = Sequence::fresh(true);
        } else if self.config.idempotence {
            sequence.next = base_sequence;
        }
        let window = &mut self.windows[index];
        sequence.next = window.resequence(sequence.producer_id, sequence.next);
        window.recovering = false;
        if window.flights.iter().any(|f| f.answer.is_none()) {
            window.resend_at = Some(Instant::now());
        }
        self.settle(partition);
    }
}

impl Owner {
    /// After the front batch of a window spent its retry budget on a retriable error: the
    /// batches right behind it that failed too were resent with it on every retry, so they have
    /// spent the same budget. They fail now, instead of each starting a budget of its own (which
    /// made a producer facing a persistent error take one budget per batch). Their
    /// `OUT_OF_ORDER_SEQUENCE` or retriable answers are consequences of the front's failure, so
    /// they report the front's error; any other error is their own.
    fn fail_retried_with_front(&mut self, index: usize, front_err: &Error) {
        while self.windows[index]
            .flights
            .front()
            .is_some_and(|f| matches!(f.answer, Some(Err(_))) && !f.outstanding)
        {
            let flight = self.pop(index);
            let own = match flight.answer {
                Some(Err(own)) => own,
                _ => front_err.clone(),
            };
            let reported = if own.is_retriable() || own.code() == ErrorCode::OutOfOrderSequence {
                front_err.clone()
            } else {
                own
            };
            Counters::add(&self.counters.messages_failed, flight.messages.len() as u64);
            for pending in flight.messages {
                fail(pending, &reported);
            }
        }
    }
}

fn fail(mut pending: Pending, err: &Error) {
    if let Some(reply) = pending.reply.take() {
        reply.send(Err(err.clone()));
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
