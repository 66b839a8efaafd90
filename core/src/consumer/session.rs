//! The consumer's session task: owns the `Consume` stream and reconnects it.
//!
//! In a cluster a stream subscription's members join through the node that coordinates it (the
//! leader of one of the topic's partitions, docs/clustering.md "Stream consumer groups"): a
//! join through another node, or a stream whose node stopped coordinating, ends with a leader
//! hint naming the coordinator, and the next stream goes there.

use std::collections::HashSet;
use std::sync::Arc;

use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use rapidmq_proto::v1::{self, consume_request, consume_response};
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::metadata::{Ascii, MetadataValue};

use super::{Charge, Grant, Shared};
use crate::auth::Conn;
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
        bytes: u64,
    },
    Commit(oneshot::Sender<Result<()>>),
    Close(oneshot::Sender<()>),
}

/// How one stream ended.
enum End {
    /// Closed by the application (`reply` when it waits for the close).
    Closed(Option<oneshot::Sender<()>>),
    /// The stream broke or could not be opened.
    Lost(Error),
}

pub(crate) struct Session {
    client: Client,
    config: ConsumerConfig,
    shared: Arc<Shared>,
    ready: Option<oneshot::Sender<Result<()>>>,
    backoff: Backoff,
    /// Where the stream goes: the seed (`None`), or the node that coordinates the subscription
    /// (cluster mode: a node that does not coordinate it answers the join with a hint naming
    /// the one that does).
    target: Option<(u64, String)>,
    /// The coordinator the last stream's end named, and its client address if the hint had
    /// it.
    redirect: Option<(u64, Option<String>)>,
    /// When the hints followed since the last successful join started: following them is
    /// bounded by [`REDIRECT_PATIENCE`] (they may lead in a circle while leaders change).
    redirecting_since: Option<tokio::time::Instant>,
}

/// How long a consumer follows coordinator hints without a successful join before the usual
/// error handling applies (the first join then fails): about an election and a lease.
const REDIRECT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

type Requests = mpsc::UnboundedSender<v1::ConsumeRequest>;

fn request(kind: consume_request::Kind) -> v1::ConsumeRequest {
    v1::ConsumeRequest { kind: Some(kind) }
}

impl Session {
    pub(crate) fn new(client: Client, config: ConsumerConfig, shared: Arc<Shared>) -> Session {
        Session {
            backoff: Backoff::new(config.reconnect),
            client,
            config,
            shared,
            ready: None,
            target: None,
            redirect: None,
            redirecting_since: None,
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
            let since = *self
                .redirecting_since
                .get_or_insert_with(tokio::time::Instant::now);
            let redirect = self
                .redirect
                .take()
                .filter(|_| since.elapsed() < REDIRECT_PATIENCE);
            let redirected = redirect.is_some();
            if let Some((node, addr)) = redirect {
                let addr = match addr {
                    Some(addr) => Some(addr),
                    // The node that answered did not know the address: the node table does.
                    None => {
                        self.client.refresh_routes(&self.config.topic).await;
                        self.client.routes().node_addr(node)
                    }
                };
                if let Some(target) = addr.map(|addr| (node, addr))
                    && self.target.as_ref() != Some(&target)
                {
                    // The node does not coordinate the subscription: join where it does.
                    tracing::debug!(cause = %err, node = target.0, addr = %target.1, topic = %self.config.topic, "joining through the subscription's coordinator");
                    self.target = Some(target);
                    self.reset_session();
                    continue;
                }
                // The coordinator named itself (it is taking over, its lease not confirmed yet),
                // or its address is not known yet: join again after the backoff, the first
                // join included.
            } else if let Some(ready) = self.ready.take() {
                // The first subscribe failed: the caller gets the error, no consumer exists.
                let _ = ready.send(Err(err));
                self.finish(None);
                return;
            }
            if !redirected && !err.is_retriable() {
                tracing::warn!(cause = %err, topic = %self.config.topic, "subscription ended");
                self.finish(Some(err));
                return;
            }
            tracing::info!(cause = %err, topic = %self.config.topic, "consume stream lost; reconnecting");
            self.reset_session();
            let delay = self.backoff.next_unbounded_delay();
            let sleep = tokio::time::sleep(delay);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    _ = &mut sleep => break,
                    command = commands.recv() => match command {
                        Some(Command::Credit { .. }) => {}
                        Some(Command::Commit(reply)) => {
                            let _ = reply.send(Err(Error::unavailable(
                                "not connected; acknowledged positions are committed after reconnecting",
                            )));
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

    /// Marks the consumer closed (with `fatal` as the reason, if any) and wakes pollers.
    fn finish(&self, fatal: Option<Error>) {
        let mut state = self.shared.state.lock();
        state.closed = true;
        state.fatal = fatal;
        state.buffer.clear();
        state.charges.clear();
        state.assignment.clear();
        drop(state);
        self.shared.notify.notify_waiters();
    }

    /// A new stream starts from the committed offsets: what was buffered will be delivered again.
    fn reset_session(&self) {
        let mut state = self.shared.state.lock();
        state.session += 1;
        state.buffer.clear();
        state.charges.clear();
        state.acks.clear();
        state.assignment.clear();
        state.stats.reconnects += 1;
    }

    /// Opens one stream and serves it until it ends.
    #[allow(clippy::needless_update)] // wire structs tolerate additive proto fields
    async fn stream(&mut self, commands: &mut mpsc::UnboundedReceiver<Command>) -> End {
        // The session this stream is opened with (see `Client::stream_ended`).
        let opened_with = self.client.current_session();
        let (generation, mut messaging) = match self.connect().await {
            Ok(connected) => connected,
            Err(err) => {
                // The coordinator cannot be reached: the seed names the next one.
                self.target = None;
                return End::Lost(err);
            }
        };
        let (requests, rx) = mpsc::unbounded_channel();
        let session = {
            let state = self.shared.state.lock();
            let _ = requests.send(request(consume_request::Kind::Subscribe(v1::Subscribe {
                topic: self.config.topic.clone(),
                subscription: self.config.subscription.clone(),
                mode: v1::SubscriptionMode::from(SubscriptionMode::Stream) as i32,
                start: Some(self.config.start.into()),
                credits: self
                    .config
                    .stream_prefetch()
                    .saturating_sub(state.buffer.len() as u32)
                    .max(1),
                credit_bytes: self
                    .config
                    .stream_prefetch_bytes()
                    .saturating_sub(state.buffered_bytes())
                    .max(1),
                consumer_name: self.config.consumer_name.clone(),
                ..Default::default()
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
                return End::Lost(self.ended(generation, status, opened_with.clone()).await);
            }
            Err(_) => {
                return End::Lost(Error::Timeout {
                    message: "opening the consume stream".into(),
                });
            }
        };
        let mut commit_tick = super::every(self.config.commit_interval);
        loop {
            tokio::select! {
                message = responses.message() => match message {
                    Ok(Some(response)) => {
                        if let Err(err) = self.on_response(response, &requests) {
                            return End::Lost(err);
                        }
                    }
                    Ok(None) => return End::Lost(Error::unavailable("the broker ended the consume stream")),
                    Err(status) => {
                        return End::Lost(self.ended(generation, status, opened_with.clone()).await);
                    }
                },
                command = commands.recv() => match command {
                    Some(Command::Credit { session: s, messages, bytes }) => {
                        if s == session && (messages > 0 || bytes > 0) {
                            let _ = requests.send(request(consume_request::Kind::Credit(
                                v1::Credit { messages, bytes },
                            )));
                        }
                    }
                    Some(Command::Commit(reply)) => {
                        self.send_commits(&requests);
                        let _ = reply.send(Ok(()));
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
                _ = commit_tick.tick() => self.send_commits(&requests),
            }
        }
    }

    /// A messaging client on the target's connection; the seed connection's generation.
    async fn connect(&self) -> Result<(Option<u64>, MessagingClient<Conn>)> {
        match &self.target {
            None => {
                let (generation, messaging) = self.client.messaging().await?;
                Ok((Some(generation), messaging))
            }
            Some((node, addr)) => Ok((None, self.client.node_messaging(*node, addr).await?)),
        }
    }

    /// The error for the stream ended with `status`, after dropping the connection it broke.
    /// A leader hint in it names the node that coordinates the subscription: the next stream
    /// goes there ([`Session::redirect`]).
    async fn ended(
        &mut self,
        generation: Option<u64>,
        status: tonic::Status,
        opened_with: Option<MetadataValue<Ascii>>,
    ) -> Error {
        let hint = rapidmq_proto::hint::decode_hint(status.details()).filter(|h| h.leader != 0);
        let err = match &self.target {
            Some((node, _)) => {
                self.client
                    .node_stream_ended(*node, status, opened_with)
                    .await
            }
            None => {
                self.client
                    .stream_ended(generation.unwrap_or_default(), status, opened_with)
                    .await
            }
        };
        if let Some(hint) = hint {
            let addr = Some(hint.grpc_addr)
                .filter(|addr| !addr.is_empty())
                .or_else(|| self.client.routes().node_addr(hint.leader));
            self.redirect = Some((hint.leader, addr));
        } else if err.is_connection_failure() {
            self.target = None;
        }
        err
    }

    /// Sends the final commit, half-closes the stream and waits (bounded) for the broker to end
    /// it, so the commit is applied before this member leaves.
    async fn close_stream(
        &self,
        requests: Requests,
        mut responses: tonic::Streaming<v1::ConsumeResponse>,
    ) {
        self.send_commits(&requests);
        drop(requests);
        let drained = tokio::time::timeout(defaults::CLOSE_TIMEOUT, async {
            while let Ok(Some(_)) = responses.message().await {}
        })
        .await;
        if drained.is_err() {
            tracing::debug!(topic = %self.config.topic, "broker did not end the consume stream in time");
        }
    }

    fn send_commits(&self, requests: &Requests) {
        if self.config.subscription.is_empty() {
            return;
        }
        let offsets = {
            let mut state = self.shared.state.lock();
            let offsets = state.acks.take_commits();
            if !offsets.is_empty() {
                state.stats.commits += 1;
            }
            offsets
        };
        if !offsets.is_empty() {
            tracing::trace!(?offsets, "commit");
            let _ = requests.send(request(consume_request::Kind::Commit(v1::Commit {
                offsets,
            })));
        }
    }

    fn on_response(&mut self, response: v1::ConsumeResponse, requests: &Requests) -> Result<()> {
        match response.kind {
            Some(consume_response::Kind::Subscribed(subscribed)) => {
                tracing::debug!(member = %subscribed.member_id, partitions = subscribed.partitions, "subscribed");
                self.backoff = Backoff::new(self.config.reconnect);
                self.redirecting_since = None;
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(Ok(()));
                }
            }
            Some(consume_response::Kind::Assignment(assignment)) => {
                self.on_assignment(assignment, requests);
            }
            Some(consume_response::Kind::Batch(batch)) => {
                let charge = Charge {
                    partition: batch.partition,
                    left: 0,
                    bytes: batch.batch.len() as u64,
                    credited: false,
                };
                let messages = convert::decode_delivery(&self.config.topic, batch)?;
                let n = messages.len() as u64;
                if n == 0 {
                    // Nothing to poll: the charge goes back at once.
                    let _ = requests.send(request(consume_request::Kind::Credit(v1::Credit {
                        messages: 0,
                        bytes: charge.bytes,
                    })));
                    return Ok(());
                }
                let mut state = self.shared.state.lock();
                state.charges.push_back(Charge {
                    left: n as u32,
                    ..charge
                });
                state.buffer.extend(messages);
                state.stats.received += n;
                let buffered = state.buffer.len() as u64;
                state.stats.max_buffered = state.stats.max_buffered.max(buffered);
                drop(state);
                self.shared.notify.notify_waiters();
            }
            Some(consume_response::Kind::Error(err)) => {
                let err = Error::from(err);
                if err.code() == ErrorCode::NotPartitionOwner {
                    tracing::debug!(cause = %err, "commit for a partition no longer owned");
                } else {
                    tracing::warn!(cause = %err, topic = %self.config.topic, "broker reported an error on the consume stream");
                }
            }
            None => {}
            // Response kinds of later protocol versions (e.g. queue mode) are not ours to handle.
            #[allow(unreachable_patterns)]
            Some(_) => tracing::debug!("ignoring an unknown consume response"),
        }
        Ok(())
    }

    /// A new assignment replaces the old one: revoked partitions lose their buffered messages
    /// (granted back as credits) and their ack state; new ones start at the given offset.
    fn on_assignment(&mut self, assignment: v1::Assignment, requests: &Requests) {
        let owned: HashSet<u32> = assignment.partitions.iter().map(|p| p.partition).collect();
        let mut state = self.shared.state.lock();
        let before = state.buffer.len();
        state.buffer.retain(|m| owned.contains(&m.partition));
        let dropped = before - state.buffer.len();
        let grant = state.drop_charges(|p| owned.contains(&p));
        state.acks.retain(|p| owned.contains(&p));
        for p in &assignment.partitions {
            if !state.acks.owns(p.partition) {
                state.acks.assign(p.partition, p.offset);
            }
        }
        let mut partitions: Vec<u32> = owned.into_iter().collect();
        partitions.sort_unstable();
        tracing::debug!(
            generation = assignment.generation,
            ?partitions,
            dropped,
            "assignment"
        );
        state.assignment = partitions;
        state.stats.generation = assignment.generation;
        state.stats.dropped_on_revoke += dropped as u64;
        drop(state);
        if grant != Grant::default() {
            let _ = requests.send(request(consume_request::Kind::Credit(v1::Credit {
                messages: grant.messages,
                bytes: grant.bytes,
            })));
        }
    }
}
