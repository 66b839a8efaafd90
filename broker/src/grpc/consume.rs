//! The bidirectional `Consume` stream: the client subscribes, grants credits, and commits (stream
//! mode) or acks/nacks (queue mode); the broker sends the assignment and deliveries, never more
//! messages than granted.
//!
//! Cancel safety: the loop reserves room in the outbound channel before it asks the session for
//! the next delivery, so a delivery goes into the channel the moment it is claimed, with no await
//! in between. Queue deliveries wait in the channel with an [`Undelivered`] guard: if the client
//! hangs up before the transport takes them, dropping the channel takes the claims back (no
//! attempt counted, no dead letter for a message the consumer never got). The session outlives
//! the channel ([`Outbound`] stream): its member leaves the group, releasing what it still
//! holds, only after the buffered deliveries were taken back, so another member cannot claim
//! one of them (and spend its attempt) first.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::consume_request::Kind as In;
use rapidmq_proto::v1::consume_response::Kind as Out;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::convert;
use super::messaging::ResponseStream;
use super::metadata::with_leader_address;
use crate::engine::{
    Engine, ReceiptRef, Session, SessionEvent, StreamSession, SubscriptionMode, Undelivered,
};
use crate::error::Error;
use crate::principal::Principal;
use crate::rest::cluster::ClusterHandle;

/// Responses buffered per stream before the session waits for the client to read.
const OUTBOUND_DEPTH: usize = 64;

pub async fn start(
    engine: Arc<Engine>,
    principal: Principal,
    mut inbound: Streaming<pb::ConsumeRequest>,
    cluster: ClusterHandle,
) -> Result<ResponseStream<pb::ConsumeResponse>, Status> {
    let first = inbound.message().await?.ok_or_else(|| {
        Status::from(Error::new(
            ErrorCode::NotSubscribed,
            "the stream ended before Subscribe",
        ))
    })?;
    let Some(In::Subscribe(subscribe)) = first.kind else {
        return Err(Error::new(
            ErrorCode::NotSubscribed,
            "the first message on a Consume stream must be Subscribe",
        )
        .into());
    };
    if subscribe.credits == 0 {
        return Err(Error::new(
            ErrorCode::InvalidCredits,
            "Subscribe must grant at least 1 credit",
        )
        .into());
    }
    let mode = convert::subscription_mode(subscribe.mode)?;
    let start = convert::start_position(subscribe.start)?;
    let queue = convert::queue_spec(subscribe.queue);
    let subscription =
        (!subscribe.subscription.is_empty()).then_some(subscribe.subscription.as_str());
    // A stream subscription's members join where it is coordinated (cluster mode).
    let coordinator = match (subscription, mode) {
        (Some(name), SubscriptionMode::Stream) => engine
            .stream_coordinator(&principal, &subscribe.topic, name)
            .map_err(|err| with_leader_address(err, &cluster))?,
        _ => None,
    };
    let mut session = engine
        .subscribe(
            &principal,
            &subscribe.topic,
            subscription,
            mode,
            start,
            Some(&queue),
            &subscribe.consumer_name,
        )
        .await?;
    if let (Session::Stream(stream), Some(partition)) = (&mut session, coordinator) {
        stream.coordinated_by(partition);
    }
    let (member_id, partitions) = match &session {
        Session::Stream(s) => (
            s.member_id().unwrap_or_default().to_string(),
            s.topic().partitions.len(),
        ),
        Session::Queue(q) => (q.member_id(), q.topic().partitions.len()),
    };
    tracing::debug!(topic = %subscribe.topic, subscription = ?subscription, member = %member_id, "consumer subscribed");

    let (tx, rx) = mpsc::channel(OUTBOUND_DEPTH);
    let subscribed = Out::Subscribed(pb::Subscribed {
        member_id,
        partitions: partitions as u32,
    });
    // The channel is fresh, so this cannot fail.
    let _ = tx.try_send(Outgoing::plain(Ok(pb::ConsumeResponse {
        kind: Some(subscribed),
    })));
    let parked = Arc::new(Mutex::new(None));
    let outbound = Outbound {
        rx: ReceiverStream::new(rx),
        _session: parked.clone(),
    };
    let credits = Credits {
        messages: subscribe.credits,
        // Byte credits bound what a stream consumer buffers; queue mode counts messages only.
        bytes: (mode == SubscriptionMode::Stream && subscribe.credit_bytes > 0)
            .then(|| clamp_bytes(subscribe.credit_bytes)),
    };
    tokio::spawn(async move {
        let mut session = session;
        run(
            engine,
            principal,
            &mut session,
            inbound,
            tx,
            credits,
            &cluster,
        )
        .await;
        // Dropped with the outbound stream (after what is still buffered), or here if that is
        // gone already.
        if let Ok(mut slot) = parked.lock() {
            *slot = Some(session);
        }
    });
    Ok(Box::pin(outbound))
}

/// The response stream handed to tonic: the outbound channel, then the session. Fields drop in
/// order, so deliveries still buffered take their claims back before the session leaves.
struct Outbound {
    rx: ReceiverStream<Outgoing>,
    _session: Arc<Mutex<Option<Session>>>,
}

impl Stream for Outbound {
    type Item = Result<pb::ConsumeResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.rx)
            .poll_next(cx)
            .map(|item| item.map(Outgoing::sent))
    }
}

/// A response waiting in the outbound channel, with the claims it carries.
struct Outgoing {
    response: Result<pb::ConsumeResponse, Status>,
    claims: Option<Undelivered>,
}

impl Outgoing {
    fn plain(response: Result<pb::ConsumeResponse, Status>) -> Outgoing {
        Outgoing {
            response,
            claims: None,
        }
    }

    /// The transport takes the response to write it out: its deliveries count from now on.
    fn sent(self) -> Result<pb::ConsumeResponse, Status> {
        if let Some(claims) = self.claims {
            claims.sent();
        }
        self.response
    }
}

type OutboundTx = mpsc::Sender<Outgoing>;

async fn run(
    engine: Arc<Engine>,
    principal: Principal,
    session: &mut Session,
    mut inbound: Streaming<pb::ConsumeRequest>,
    tx: OutboundTx,
    mut credits: Credits,
    cluster: &ClusterHandle,
) {
    loop {
        tokio::select! {
            message = inbound.message() => {
                let request = match message {
                    Ok(Some(request)) => request,
                    Ok(None) => return,
                    Err(status) => {
                        tracing::debug!(%status, "consume stream broke");
                        return;
                    }
                };
                let reply = match request.kind {
                    Some(In::Credit(credit)) if credit.messages == 0 && credit.bytes == 0 => {
                        Some(Error::new(ErrorCode::InvalidCredits, "a Credit must grant at least 1 message or 1 byte"))
                    }
                    Some(In::Credit(credit)) => {
                        credits.grant(&credit);
                        None
                    }
                    Some(In::Subscribe(_)) => Some(Error::new(ErrorCode::NotSubscribed, "this stream is already subscribed")),
                    Some(kind) => handle(&engine, &principal, &*session, kind).await.err(),
                    None => Some(Error::malformed("ConsumeRequest without a kind")),
                };
                if let Some(err) = reply
                    && tx.send(Outgoing::plain(Ok(error_response(&err)))).await.is_err()
                {
                    return;
                }
            }
            // Room first, then the delivery: nothing is claimed until it can be queued at once.
            event = async {
                let permit = tx.reserve().await;
                (permit, next(&engine, &mut *session, credits.sendable()).await)
            } => {
                let (Ok(permit), event) = event else { return };
                let (response, claims) = match event {
                    Ok(next) => next,
                    Err(err) => {
                        let err = with_leader_address(err, cluster);
                        permit.send(Outgoing::plain(Err(Status::from(err))));
                        return;
                    }
                };
                credits.charge(&response);
                permit.send(Outgoing {
                    response: Ok(pb::ConsumeResponse { kind: Some(response) }),
                    claims,
                });
            }
            _ = tx.closed() => return,
        }
    }
}

/// What the consumer lets the broker send.
struct Credits {
    messages: u32,
    /// Stream mode with a byte bound: bytes left, below zero once the last batch sent overran
    /// them (a batch goes out whole while any are left). `None`: messages only.
    bytes: Option<i64>,
}

impl Credits {
    fn grant(&mut self, credit: &pb::Credit) {
        self.messages = self.messages.saturating_add(credit.messages);
        if let Some(bytes) = &mut self.bytes {
            *bytes = bytes.saturating_add(clamp_bytes(credit.bytes));
        }
    }

    /// Messages the next delivery may carry: none while the byte credits are spent.
    fn sendable(&self) -> u32 {
        if self.bytes.is_some_and(|bytes| bytes <= 0) {
            0
        } else {
            self.messages
        }
    }

    /// Takes what `out` uses: a message per message and, with a byte bound, the length of a
    /// delivery's batch bytes (what the consumer grants back once it has taken them all).
    fn charge(&mut self, out: &Out) {
        let (messages, bytes) = match out {
            Out::Batch(batch) => (batch.count, batch.batch.len()),
            Out::QueueBatch(batch) => (batch.messages.len() as u32, 0),
            _ => (0, 0),
        };
        self.messages -= messages;
        if let Some(left) = &mut self.bytes {
            *left = left.saturating_sub(bytes as i64);
        }
    }
}

fn clamp_bytes(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

/// The next thing to send and the queue claims it carries. Cancel-safe.
async fn next(
    engine: &Engine,
    session: &mut Session,
    credits: u32,
) -> Result<(Out, Option<Undelivered>), Error> {
    match session {
        Session::Stream(stream) => Ok(match stream.next(credits).await? {
            SessionEvent::Assigned {
                generation,
                partitions,
            } => (
                Out::Assignment(pb::Assignment {
                    generation,
                    partitions: partitions
                        .into_iter()
                        .map(|(partition, offset)| pb::PartitionOffset { partition, offset })
                        .collect(),
                }),
                None,
            ),
            SessionEvent::Delivery(delivery) => {
                (Out::Batch(pb::DeliveryBatch::from(delivery)), None)
            }
        }),
        Session::Queue(queue) => {
            let deliveries = queue.next(engine, credits).await?;
            engine.observe_queue_deliveries(
                queue.topic(),
                queue.subscription().name(),
                &deliveries,
            );
            let claims = queue.undelivered(&deliveries);
            Ok((
                Out::QueueBatch(pb::QueueBatch {
                    messages: deliveries.into_iter().map(Into::into).collect(),
                }),
                Some(claims),
            ))
        }
    }
}

/// Commits, acks, nacks and deadline extensions.
async fn handle(
    engine: &Engine,
    principal: &Principal,
    session: &Session,
    kind: In,
) -> Result<(), Error> {
    match (session, kind) {
        (Session::Stream(stream), In::Commit(commit)) => {
            commit_offsets(engine, principal, stream, commit).await
        }
        (Session::Queue(queue), In::Ack(ack)) => {
            unknown_receipts(queue.ack(&receipts(&ack.receipts)))
        }
        (Session::Queue(queue), In::Nack(nack)) => unknown_receipts(
            queue
                .nack(engine, &receipts(&nack.receipts), nack.delay_ms)
                .await?,
        ),
        (Session::Queue(queue), In::Extend(extend)) => {
            unknown_receipts(queue.extend(engine, &receipts(&extend.receipts), extend.extend_ms)?)
        }
        (Session::Queue(_), In::Commit(_)) => Err(Error::new(
            ErrorCode::SubscriptionModeMismatch,
            "this is a queue subscription: ack messages instead of committing offsets",
        )),
        (Session::Stream(_), In::Ack(_) | In::Nack(_) | In::Extend(_)) => Err(Error::new(
            ErrorCode::SubscriptionModeMismatch,
            "ack, nack and deadline extension are for queue subscriptions; stream subscriptions commit offsets",
        )),
        (_, In::Subscribe(_) | In::Credit(_)) => Ok(()),
    }
}

fn receipts(receipts: &[pb::Receipt]) -> Vec<ReceiptRef> {
    receipts
        .iter()
        .map(|r| ReceiptRef {
            partition: r.partition,
            offset: r.offset,
            delivery_id: r.delivery_id,
        })
        .collect()
}

fn unknown_receipts(unknown: usize) -> Result<(), Error> {
    if unknown == 0 {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::ReceiptUnknown,
            format!(
                "{unknown} receipt(s) name no delivery in flight to this subscription (already acked, redelivered after the deadline, or foreign)"
            ),
        ))
    }
}

async fn commit_offsets(
    engine: &Engine,
    principal: &Principal,
    session: &StreamSession,
    commit: pb::Commit,
) -> Result<(), Error> {
    let Some(subscription) = session.subscription_name() else {
        return Err(Error::invalid(
            "an ephemeral subscription has no offsets to commit",
        ));
    };
    let offsets: Vec<(u32, u64)> = commit
        .offsets
        .iter()
        .map(|o| (o.partition, o.offset))
        .collect();
    engine
        .commit(
            principal,
            session.topic().name(),
            subscription,
            &offsets,
            session.member_id(),
        )
        .await
}

fn error_response(err: &Error) -> pb::ConsumeResponse {
    pb::ConsumeResponse {
        kind: Some(Out::Error(pb::Error::from(err))),
    }
}
