//! The bidirectional `Consume` stream: the client subscribes, grants credits and commits; the
//! broker sends the assignment and delivery batches, never more messages than granted.

use std::sync::Arc;

use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::consume_request::Kind as In;
use rapidmq_proto::v1::consume_response::Kind as Out;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::convert;
use super::messaging::ResponseStream;
use crate::engine::{Engine, SessionEvent, StreamSession};
use crate::error::Error;
use crate::principal::Principal;

/// Responses buffered per stream before the session waits for the client to read.
const OUTBOUND_DEPTH: usize = 64;

pub async fn start(
    engine: Arc<Engine>,
    principal: Principal,
    mut inbound: Streaming<pb::ConsumeRequest>,
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
    convert::subscription_mode(subscribe.mode)?;
    let start = convert::start_position(subscribe.start)?;
    let subscription =
        (!subscribe.subscription.is_empty()).then_some(subscribe.subscription.as_str());
    let session = engine
        .subscribe(
            &principal,
            &subscribe.topic,
            subscription,
            start,
            &subscribe.consumer_name,
        )
        .await?;
    tracing::debug!(topic = %subscribe.topic, subscription = ?subscription, member = ?session.member_id(), "consumer subscribed");

    let (tx, rx) = mpsc::channel(OUTBOUND_DEPTH);
    let subscribed = pb::ConsumeResponse {
        kind: Some(Out::Subscribed(pb::Subscribed {
            member_id: session.member_id().unwrap_or_default().to_string(),
            partitions: session.topic().partitions.len() as u32,
        })),
    };
    // The channel is fresh, so this cannot fail.
    let _ = tx.try_send(Ok(subscribed));
    tokio::spawn(run(
        engine,
        principal,
        session,
        inbound,
        tx,
        subscribe.credits,
    ));
    Ok(Box::pin(ReceiverStream::new(rx)))
}

type Outbound = mpsc::Sender<Result<pb::ConsumeResponse, Status>>;

async fn run(
    engine: Arc<Engine>,
    principal: Principal,
    mut session: StreamSession,
    mut inbound: Streaming<pb::ConsumeRequest>,
    tx: Outbound,
    mut credits: u32,
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
                    Some(In::Credit(credit)) if credit.messages == 0 => {
                        Some(Error::new(ErrorCode::InvalidCredits, "a Credit must grant at least 1 message"))
                    }
                    Some(In::Credit(credit)) => {
                        credits = credits.saturating_add(credit.messages);
                        None
                    }
                    Some(In::Commit(commit)) => commit_offsets(&engine, &principal, &session, commit).await.err(),
                    Some(In::Subscribe(_)) => {
                        Some(Error::new(ErrorCode::NotSubscribed, "this stream is already subscribed"))
                    }
                    None => Some(Error::malformed("ConsumeRequest without a kind")),
                };
                if let Some(err) = reply
                    && tx.send(Ok(error_response(&err))).await.is_err()
                {
                    return;
                }
            }
            event = session.next(credits) => {
                let response = match event {
                    Ok(SessionEvent::Assigned { generation, partitions }) => Out::Assignment(pb::Assignment {
                        generation,
                        partitions: partitions
                            .into_iter()
                            .map(|(partition, offset)| pb::PartitionOffset { partition, offset })
                            .collect(),
                    }),
                    Ok(SessionEvent::Delivery(delivery)) => {
                        credits -= delivery.count;
                        Out::Batch(pb::DeliveryBatch::from(delivery))
                    }
                    Err(err) => {
                        let _ = tx.send(Err(Status::from(err))).await;
                        return;
                    }
                };
                if tx.send(Ok(pb::ConsumeResponse { kind: Some(response) })).await.is_err() {
                    return;
                }
            }
            _ = tx.closed() => return,
        }
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
