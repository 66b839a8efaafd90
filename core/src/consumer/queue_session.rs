//! The queue consumer's session task: owns the queue-mode `Consume` stream, reconnects it, and
//! sends batched acks, nacks and deadline extensions.

use std::sync::Arc;

use rapidmq_proto::v1::{self, consume_request, consume_response};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;

use super::queue::{Outbox, QueueMessage, QueueShared, Receipt};
use crate::client::Client;
use crate::config::ConsumerConfig;
use crate::convert;
use crate::defaults;
use crate::error::{Error, Result};
use crate::retry::Backoff;
use crate::types::SubscriptionMode;

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
    ready: Option<oneshot::Sender<Result<()>>>,
    backoff: Backoff,
}

impl QueueSession {
    pub(crate) fn new(
        client: Client,
        config: ConsumerConfig,
        shared: Arc<QueueShared>,
    ) -> QueueSession {
        QueueSession {
            backoff: Backoff::new(config.reconnect),
            client,
            config,
            shared,
            ready: None,
        }
    }

    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        ready: oneshot::Sender<Result<()>>,
    ) {
        self.ready = Some(ready);
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
            if let Some(ready) = self.ready.take() {
                let _ = ready.send(Err(err));
                self.finish(None);
                return;
            }
            if !err.is_retriable() {
                tracing::warn!(cause = %err, topic = %self.config.topic, "queue subscription ended");
                self.finish(Some(err));
                return;
            }
            tracing::info!(cause = %err, topic = %self.config.topic, "queue consume stream lost; reconnecting");
            self.reset_session();
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

    fn finish(&self, fatal: Option<Error>) {
        let mut state = self.shared.state.lock();
        state.closed = true;
        state.fatal = fatal;
        state.buffer.clear();
        drop(state);
        self.shared.notify.notify_waiters();
    }

    /// A new stream: buffered deliveries and unsent receipts belong to the old one. The broker
    /// redelivers those messages; their receipts are stale from now on.
    fn reset_session(&self) {
        let mut state = self.shared.state.lock();
        state.session += 1;
        state.buffer.clear();
        let outbox = std::mem::take(&mut state.outbox);
        let dropped = outbox.acks.len()
            + outbox.nacks.values().map(Vec::len).sum::<usize>()
            + outbox.extends.values().map(Vec::len).sum::<usize>();
        state.stats.stale_receipts += dropped as u64;
        state.stats.reconnects += 1;
    }

    async fn stream(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> End {
        // The session this stream is opened with (see `Client::stream_ended`).
        let opened_with = self.client.current_session();
        let (generation, mut messaging) = match self.client.messaging().await {
            Ok(connected) => connected,
            Err(err) => return End::Lost(err),
        };
        let (requests, rx) = mpsc::unbounded_channel();
        let session = {
            let state = self.shared.state.lock();
            let _ = requests.send(request(consume_request::Kind::Subscribe(v1::Subscribe {
                topic: self.config.topic.clone(),
                subscription: self.config.subscription.clone(),
                mode: v1::SubscriptionMode::from(SubscriptionMode::Queue) as i32,
                start: Some(self.config.start.into()),
                credits: self
                    .config
                    .prefetch
                    .saturating_sub(state.buffer.len() as u32)
                    .max(1),
                consumer_name: self.config.consumer_name.clone(),
                queue: Some(self.config.queue.clone().into()),
            })));
            state.session
        };
        let opened = tokio::time::timeout(
            self.client.config().request_timeout,
            messaging.consume(UnboundedReceiverStream::new(rx)),
        )
        .await;
        let mut responses = match opened {
            Ok(Ok(response)) => response.into_inner(),
            Ok(Err(status)) => {
                let err = self
                    .client
                    .stream_ended(generation, status, opened_with.clone())
                    .await;
                return End::Lost(err);
            }
            Err(_) => {
                return End::Lost(Error::Timeout {
                    message: "opening the consume stream".into(),
                });
            }
        };
        let mut ack_tick = tokio::time::interval(self.config.commit_interval);
        ack_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                        let err = self.client.stream_ended(generation, status, opened_with.clone()).await;
                        return End::Lost(err);
                    }
                },
                command = commands.recv() => match command {
                    Some(Command::Credit { session: s, messages }) => {
                        if s == session && messages > 0 {
                            let _ = requests.send(request(consume_request::Kind::Credit(
                                v1::Credit { messages },
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
            let outbox = std::mem::take(&mut state.outbox);
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
