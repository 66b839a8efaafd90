//! The queue consumer's session task: owns one queue-mode `Consume` stream (on the seed
//! connection, or on one cluster node's), reconnects it, and sends batched acks, nacks and
//! deadline extensions of the deliveries it received.

use std::sync::Arc;

use rapidmq_proto::v1::messaging_client::MessagingClient;
use rapidmq_proto::v1::{self, consume_request, consume_response};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};

use super::queue::{Outbox, QueueMessage, QueueShared, Receipt};
use crate::auth::Conn;
use crate::client::Client;
use crate::config::ConsumerConfig;
use crate::convert;
use crate::defaults;
use crate::error::{Error, Result};
use crate::retry::Backoff;
use crate::types::SubscriptionMode;

/// Where a session reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The seed connection (a single-node broker, or one without `GetMetadata`).
    Seed,
    /// Cluster node `id`, on its own connection: it delivers the partitions it leads.
    Node(u64),
}

pub(crate) enum Command {
    /// Credits earned by a poll in session `session`.
    Credit {
        session: u64,
        messages: u32,
    },
    /// Send the outbox now (and answer, if asked).
    Flush(Option<oneshot::Sender<Result<()>>>),
    Close(oneshot::Sender<()>),
}

enum End {
    Closed(Option<oneshot::Sender<()>>),
    Lost(Error),
}

type Requests = mpsc::UnboundedSender<v1::ConsumeRequest>;

fn request(kind: consume_request::Kind) -> v1::ConsumeRequest {
    v1::ConsumeRequest { kind: Some(kind) }
}

pub(crate) struct QueueSession {
    client: Client,
    config: ConsumerConfig,
    shared: Arc<QueueShared>,
    target: Target,
    /// This task's own commands, registered with each stream it opens.
    commands: mpsc::WeakUnboundedSender<Command>,
    /// The open stream's session id.
    session: Option<u64>,
    ready: Option<oneshot::Sender<Result<()>>>,
    backoff: Backoff,
}

impl QueueSession {
    pub(crate) fn new(
        client: Client,
        config: ConsumerConfig,
        shared: Arc<QueueShared>,
        target: Target,
        commands: mpsc::WeakUnboundedSender<Command>,
    ) -> QueueSession {
        QueueSession {
            backoff: Backoff::new(config.reconnect),
            client,
            config,
            shared,
            target,
            commands,
            session: None,
            ready: None,
        }
    }

    /// Runs until closed or a fatal error. The first outcome (subscribed, or the error before)
    /// goes to `ready`; a retriable first error does not end the task, the subscriber decides.
    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        ready: Option<oneshot::Sender<Result<()>>>,
    ) {
        self.ready = ready;
        loop {
            let err = match self.stream(&mut commands).await {
                End::Closed(reply) => {
                    self.finish(None);
                    if let Some(reply) = reply {
                        let _ = reply.send(());
                    }
                    return;
                }
                End::Lost(err) => err,
            };
            self.end_session();
            self.shared.rediscover.notify_one();
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(Err(err.clone()));
            }
            if !err.is_retriable() {
                tracing::warn!(cause = %err, topic = %self.config.topic, target = ?self.target, "queue subscription ended");
                self.finish(Some(err));
                return;
            }
            tracing::info!(cause = %err, topic = %self.config.topic, target = ?self.target, "queue consume stream lost; reconnecting");
            self.shared.state.lock().stats.reconnects += 1;
            let sleep = tokio::time::sleep(self.backoff.next_unbounded_delay());
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    command = commands.recv() => match command {
                        Some(Command::Credit { .. }) => {}
                        Some(Command::Flush(reply)) => {
                            if let Some(reply) = reply {
                                let _ = reply.send(Err(Error::unavailable(
                                    "not connected; receipts of the lost session are stale",
                                )));
                            }
                        }
                        Some(Command::Close(reply)) => {
                            self.finish(None);
                            let _ = reply.send(());
                            return;
                        }
                        None => {
                            self.finish(None);
                            return;
                        }
                    },
                }
            }
        }
    }

    /// This task is done: the consumer ends with the last one (with `fatal`, if that one
    /// failed); an earlier one's fatal error is kept as a stream error.
    fn finish(&mut self, fatal: Option<Error>) {
        self.end_session();
        let mut state = self.shared.state.lock();
        state.running -= 1;
        if state.running == 0 {
            state.closed = true;
            state.fatal = fatal;
            state.buffer.clear();
        } else if let Some(err) = fatal {
            state.keep_error(err);
        }
        drop(state);
        self.shared.notify.notify_waiters();
    }

    /// The stream is gone: its buffered deliveries and unsent receipts go with it.
    fn end_session(&mut self) {
        if let Some(id) = self.session.take() {
            self.shared.state.lock().end_session(id);
        }
    }

    /// A messaging client on the target's connection; the seed connection's generation.
    async fn connect(&self) -> Result<(Option<u64>, MessagingClient<Conn>)> {
        match self.target {
            Target::Seed => {
                let (generation, messaging) = self.client.messaging().await?;
                Ok((Some(generation), messaging))
            }
            Target::Node(node) => {
                let addr = self.client.routes().node_addr(node).ok_or_else(|| {
                    Error::unavailable(format!("no client address known for node {node}"))
                })?;
                let messaging = self.client.node_messaging(node, &addr).await?;
                Ok((None, messaging))
            }
        }
    }

    /// The error for the stream ended with `status`, after dropping the connection it broke.
    async fn ended(
        &self,
        generation: Option<u64>,
        status: tonic::Status,
        opened_with: Option<MetadataValue<Ascii>>,
    ) -> Error {
        match self.target {
            Target::Node(node) => {
                self.client
                    .node_stream_ended(node, status, opened_with)
                    .await
            }
            Target::Seed => {
                let generation = generation.unwrap_or_default();
                self.client
                    .stream_ended(generation, status, opened_with)
                    .await
            }
        }
    }

    async fn stream(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> End {
        // The session this stream is opened with (see `Client::stream_ended`).
        let opened_with = self.client.current_session();
        let (generation, mut messaging) = match self.connect().await {
            Ok(connected) => connected,
            Err(err) => return End::Lost(err),
        };
        let (requests, rx) = mpsc::unbounded_channel();
        let _ = requests.send(request(consume_request::Kind::Subscribe(v1::Subscribe {
            topic: self.config.topic.clone(),
            subscription: self.config.subscription.clone(),
            mode: v1::SubscriptionMode::from(SubscriptionMode::Queue) as i32,
            start: Some(self.config.start.into()),
            // A new stream has nothing buffered: a whole window of its own.
            credits: self.config.queue_prefetch(),
            consumer_name: self.config.consumer_name.clone(),
            queue: Some(self.config.queue.clone().into()),
            credit_bytes: 0,
        })));
        let session = self.shared.state.lock().open_session(self.commands.clone());
        self.session = Some(session);
        let opened = tokio::time::timeout(
            self.client.config().request_timeout,
            messaging.consume(UnboundedReceiverStream::new(rx)),
        )
        .await;
        let mut responses = match opened {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                return End::Lost(self.ended(generation, status, opened_with).await);
            }
            Err(_) => {
                return End::Lost(Error::Timeout {
                    message: "opening the consume stream".into(),
                });
            }
        };
        let mut ack_tick = super::every(self.config.commit_interval);
        loop {
            tokio::select! {
                message = responses.message() => match message {
                    Ok(Some(response)) => {
                        if let Err(err) = self.on_response(response, session) {
                            return End::Lost(err);
                        }
                    }
                    Ok(None) => return End::Lost(Error::unavailable("the broker ended the consume stream")),
                    Err(status) => {
                        return End::Lost(self.ended(generation, status, opened_with.clone()).await);
                    }
                },
                command = commands.recv() => match command {
                    Some(Command::Credit { session: s, messages }) => {
                        if s == session && messages > 0 {
                            let _ = requests.send(request(consume_request::Kind::Credit(
                                v1::Credit { messages, bytes: 0 },
                            )));
                        }
                    }
                    Some(Command::Flush(reply)) => {
                        self.send_outbox(&requests);
                        if let Some(reply) = reply {
                            let _ = reply.send(Ok(()));
                        }
                    }
                    Some(Command::Close(reply)) => {
                        self.close_stream(requests, responses).await;
                        return End::Closed(Some(reply));
                    }
                    None => {
                        self.close_stream(requests, responses).await;
                        return End::Closed(None);
                    }
                },
                _ = ack_tick.tick() => self.send_outbox(&requests),
            }
        }
    }

    /// Sends the last acks, half-closes the stream and waits (bounded) for the broker to end it,
    /// so the acks are applied before this consumer leaves.
    async fn close_stream(
        &self,
        requests: Requests,
        mut responses: tonic::Streaming<v1::ConsumeResponse>,
    ) {
        self.send_outbox(&requests);
        drop(requests);
        let drained = tokio::time::timeout(defaults::CLOSE_TIMEOUT, async {
            while let Ok(Some(response)) = responses.message().await {
                if let Some(consume_response::Kind::Error(err)) = response.kind {
                    self.shared.stream_error(Error::from(err));
                }
            }
        })
        .await;
        if drained.is_err() {
            tracing::debug!(topic = %self.config.topic, "broker did not end the consume stream in time");
        }
    }

    fn send_outbox(&self, requests: &Requests) {
        let Outbox {
            acks,
            nacks,
            extends,
        } = {
            let mut state = self.shared.state.lock();
            let Some(live) = self.session.and_then(|id| state.sessions.get_mut(&id)) else {
                return;
            };
            let outbox = std::mem::take(&mut live.outbox);
            let stats = &mut state.stats;
            stats.acked += outbox.acks.len() as u64;
            stats.nacked += outbox.nacks.values().map(Vec::len).sum::<usize>() as u64;
            stats.extended += outbox.extends.values().map(Vec::len).sum::<usize>() as u64;
            if !outbox.acks.is_empty() {
                stats.ack_requests += 1;
            }
            outbox
        };
        if !acks.is_empty() {
            let _ = requests.send(request(consume_request::Kind::Ack(v1::Ack {
                receipts: acks,
            })));
        }
        for (delay_ms, receipts) in nacks {
            let _ = requests.send(request(consume_request::Kind::Nack(v1::Nack {
                receipts,
                delay_ms,
            })));
        }
        for (extend_ms, receipts) in extends {
            let _ = requests.send(request(consume_request::Kind::Extend(v1::ExtendDeadline {
                receipts,
                extend_ms,
            })));
        }
    }

    fn on_response(&mut self, response: v1::ConsumeResponse, session: u64) -> Result<()> {
        match response.kind {
            Some(consume_response::Kind::Subscribed(subscribed)) => {
                tracing::debug!(member = %subscribed.member_id, "queue subscribed");
                self.backoff = Backoff::new(self.config.reconnect);
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            Some(consume_response::Kind::QueueBatch(batch)) => {
                let mut messages = Vec::with_capacity(batch.messages.len());
                for m in batch.messages {
                    messages.push(self.decode(m, session)?);
                }
                let n = messages.len() as u64;
                let mut state = self.shared.state.lock();
                for message in messages {
                    // Priority is honoured within what has been prefetched: a delivery goes
                    // after every buffered one of the same or a higher priority.
                    let priority = message.message.priority;
                    let at = state
                        .buffer
                        .iter()
                        .rposition(|m| m.message.priority >= priority)
                        .map_or(0, |i| i + 1);
                    state.buffer.insert(at, message);
                }
                state.stats.received += n;
                let buffered = state.buffer.len() as u64;
                state.stats.max_buffered = state.stats.max_buffered.max(buffered);
                drop(state);
                self.shared.notify.notify_waiters();
            }
            Some(consume_response::Kind::Error(err)) => {
                let err = Error::from(err);
                tracing::warn!(cause = %err, topic = %self.config.topic, "broker reported an error on the queue stream");
                self.shared.stream_error(err);
            }
            Some(consume_response::Kind::Assignment(_)) | None => {}
            #[allow(unreachable_patterns)]
            Some(_) => tracing::debug!("ignoring an unexpected consume response in queue mode"),
        }
        Ok(())
    }

    fn decode(&self, m: v1::QueueMessage, session: u64) -> Result<QueueMessage> {
        let receipt = m
            .receipt
            .ok_or_else(|| Error::protocol("queue delivery without a receipt"))?;
        let message = m
            .message
            .ok_or_else(|| Error::protocol("queue delivery without a message"))?;
        Ok(QueueMessage {
            message: convert::received(
                &self.config.topic,
                receipt.partition,
                receipt.offset,
                message,
                m.base_timestamp_ms,
                m.append_time_ms,
            ),
            attempt: m.attempt,
            receipt: Receipt {
                partition: receipt.partition,
                offset: receipt.offset,
                delivery_id: receipt.delivery_id,
                session,
            },
        })
    }
}
