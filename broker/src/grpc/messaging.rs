//! The `Messaging` service: Publish, PublishStream, Consume, Fetch, CommitOffset.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use futures::stream::{FuturesUnordered, StreamExt};
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::messaging_server::Messaging;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tracing::instrument;

use super::metadata::{get_metadata, publish_answer, with_leader_address};
use super::{consume, principal};
use crate::auth::CredentialWatch;
use crate::budget::{PublishBudget, PublishPermit};
use crate::engine::{Engine, PublishAck, PublishParams};
use crate::error::Error;
use crate::principal::Principal;
use crate::rest::cluster::ClusterHandle;

pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub struct MessagingService {
    engine: Arc<Engine>,
    max_inflight_per_stream: usize,
    budget: PublishBudget,
    cluster: ClusterHandle,
}

impl MessagingService {
    pub fn new(
        engine: Arc<Engine>,
        max_inflight_per_stream: usize,
        budget: PublishBudget,
        cluster: ClusterHandle,
    ) -> MessagingService {
        MessagingService {
            engine,
            max_inflight_per_stream,
            budget,
            cluster,
        }
    }
}

fn publish_params(request: pb::PublishRequest) -> PublishParams {
    PublishParams {
        topic: request.topic,
        partition: request.partition,
        producer_id: request.producer_id,
        base_sequence: request.base_sequence,
        batch: request.batch,
    }
}

#[tonic::async_trait]
impl Messaging for MessagingService {
    #[instrument(skip_all, fields(topic = %request.get_ref().topic, partition = request.get_ref().partition))]
    async fn publish(
        &self,
        request: Request<pb::PublishRequest>,
    ) -> Result<Response<pb::PublishResponse>, Status> {
        let principal = principal(&request)?;
        let request = request.into_inner();
        let partition = request.partition;
        let _permit = self.budget.try_acquire(request.batch.len())?;
        let ack = self
            .engine
            .publish(&principal, publish_params(request))
            .await
            .map_err(|err| with_leader_address(err, &self.cluster))?;
        Ok(Response::new(publish_answer(partition, ack, &self.cluster)))
    }

    type PublishStreamStream = ResponseStream<pb::PublishStreamResponse>;

    async fn publish_stream(
        &self,
        request: Request<Streaming<pb::PublishStreamRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        let principal = principal(&request)?;
        // Each request is checked for `Publish` on its topic; an anonymous caller is refused
        // the stream itself.
        self.engine.authenticated(&principal)?;
        let mut inbound = request.into_inner();
        let engine = self.engine.clone();
        let budget = self.budget.clone();
        let cluster = self.cluster.clone();
        let max_inflight = self.max_inflight_per_stream;
        let (tx, rx) = mpsc::channel(max_inflight);
        tokio::spawn(async move {
            // Requests are queued on their partitions in arrival order (so offsets follow it);
            // acknowledgements are sent as their group commits finish. A request that does not
            // fit in the publish byte budget waits for it, and the stream is not read meanwhile:
            // refusing it while later ones go through would store a producer's batches out of
            // order. HTTP/2 flow control then holds the producer back.
            let mut pending = FuturesUnordered::new();
            let mut waiting: Option<(u64, pb::PublishRequest)> = None;
            let mut inbound_open = true;
            // Over its tenant's publish rates the stream is not read until this passes: the
            // producer is slowed, not failed, and holds no budget meanwhile.
            let mut pace = Duration::ZERO;
            let mut paused_until: Option<tokio::time::Instant> = None;
            // A revoked or expired credential ends the stream (docs/adr/0004-security.md §5).
            let mut credential = engine.auth().watch(&principal);
            loop {
                let waiting_bytes = waiting.as_ref().map_or(0, |(_, r)| r.batch.len());
                let started = tokio::select! {
                    () = tokio::time::sleep_until(paused_until.unwrap_or_else(tokio::time::Instant::now)), if paused_until.is_some() => {
                        paused_until = None;
                        continue;
                    }
                    next = inbound.next(), if inbound_open && waiting.is_none() && paused_until.is_none() && pending.len() < max_inflight => {
                        match next {
                            Some(Ok(item)) => {
                                let id = item.correlation_id;
                                let Some(request) = item.request else {
                                    let err = Error::malformed("PublishStreamRequest without a request");
                                    if tx.send(Ok(stream_error(id, &err))).await.is_err() { return; }
                                    continue;
                                };
                                match budget.try_acquire(request.batch.len()) {
                                    Ok(permit) => begin(&engine, &principal, id, request, permit, &mut pace).await,
                                    Err(_) => {
                                        waiting = Some((id, request));
                                        continue;
                                    }
                                }
                            }
                            Some(Err(status)) => {
                                tracing::debug!(%status, "publish stream broke");
                                inbound_open = false;
                                continue;
                            }
                            None => {
                                inbound_open = false;
                                continue;
                            }
                        }
                    }
                    permit = budget.acquire(waiting_bytes), if waiting.is_some() => {
                        let Some((id, request)) = waiting.take() else { continue };
                        begin(&engine, &principal, id, request, permit, &mut pace).await
                    }
                    Some((id, partition, result)) = pending.next(), if !pending.is_empty() => {
                        let response = match result {
                            Ok(ack) => pb::PublishStreamResponse {
                                correlation_id: id,
                                result: Some(pb::publish_stream_response::Result::Ok(publish_answer(partition, ack, &cluster))),
                            },
                            Err(err) => stream_error(id, &with_leader_address(err, &cluster)),
                        };
                        if tx.send(Ok(response)).await.is_err() { return; }
                        continue;
                    }
                    // Only while another branch can run, so `else` still ends a finished stream.
                    _ = credential_changed(&mut credential), if inbound_open || waiting.is_some() || !pending.is_empty() => {
                        if let Some(Err(err)) = credential.as_ref().map(CredentialWatch::check) {
                            let _ = tx.send(Err(Status::from(err))).await;
                            return;
                        }
                        continue;
                    }
                    else => return,
                };
                if !pace.is_zero() {
                    paused_until = Some(tokio::time::Instant::now() + std::mem::take(&mut pace));
                }
                match started {
                    Ok(ack) => pending.push(ack),
                    Err((id, err)) => {
                        let err = with_leader_address(err, &cluster);
                        if tx.send(Ok(stream_error(id, &err))).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    type ConsumeStream = ResponseStream<pb::ConsumeResponse>;

    async fn consume(
        &self,
        request: Request<Streaming<pb::ConsumeRequest>>,
    ) -> Result<Response<Self::ConsumeStream>, Status> {
        let principal = principal(&request)?;
        let stream = consume::start(
            self.engine.clone(),
            principal,
            request.into_inner(),
            self.cluster.clone(),
        )
        .await?;
        Ok(Response::new(stream))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().topic, partition = request.get_ref().partition))]
    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let result = self
            .engine
            .fetch(
                &principal,
                &r.topic,
                r.partition,
                r.offset,
                r.max_messages,
                Duration::from_millis(u64::from(r.max_wait_ms)),
            )
            .await
            .map_err(|err| with_leader_address(err, &self.cluster))?;
        Ok(Response::new(pb::FetchResponse {
            batches: result
                .deliveries
                .into_iter()
                .map(pb::DeliveryBatch::from)
                .collect(),
            high_watermark: result.high_watermark,
            log_start_offset: result.log_start_offset,
        }))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().topic, subscription = %request.get_ref().subscription))]
    async fn commit_offset(
        &self,
        request: Request<pb::CommitOffsetRequest>,
    ) -> Result<Response<pb::CommitOffsetResponse>, Status> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let offsets: Vec<(u32, u64)> = r.offsets.iter().map(|o| (o.partition, o.offset)).collect();
        self.engine
            .commit(&principal, &r.topic, &r.subscription, &offsets, None)
            .await?;
        Ok(Response::new(pb::CommitOffsetResponse {}))
    }

    async fn get_metadata(
        &self,
        request: Request<pb::GetMetadataRequest>,
    ) -> Result<Response<pb::GetMetadataResponse>, Status> {
        let principal = principal(&request)?;
        let topics = request.into_inner().topics;
        let answer = get_metadata(&self.engine, &self.cluster, &principal, &topics)?;
        Ok(Response::new(answer))
    }
}

/// Queues one stream request on its partition, holding `permit` until its ack is ready.
/// Starts a stream's publish; `pace` is set to how long the stream waits before reading its
/// next request, to keep to the tenant's publish rates.
async fn begin(
    engine: &Engine,
    principal: &Principal,
    id: u64,
    request: pb::PublishRequest,
    permit: PublishPermit,
    pace: &mut Duration,
) -> Result<impl Future<Output = (u64, u32, Result<PublishAck, Error>)> + use<>, (u64, Error)> {
    let partition = request.partition;
    match engine
        .begin_publish_paced(principal, publish_params(request), Some(pace))
        .await
    {
        Ok(ack) => Ok(async move {
            let result = ack.await;
            drop(permit);
            (id, partition, result)
        }),
        Err(err) => Err((id, err)),
    }
}

fn stream_error(correlation_id: u64, err: &Error) -> pb::PublishStreamResponse {
    pb::PublishStreamResponse {
        correlation_id,
        result: Some(pb::publish_stream_response::Result::Error(pb::Error::from(
            err,
        ))),
    }
}

/// Resolves when a stream's credential may have stopped working; never without one.
async fn credential_changed(credential: &mut Option<CredentialWatch>) {
    match credential {
        Some(credential) => credential.changed().await,
        None => std::future::pending().await,
    }
}
