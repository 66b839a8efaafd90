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

use super::convert::publish_response;
use super::{consume, principal};
use crate::budget::PublishBudget;
use crate::engine::{Engine, PublishParams};
use crate::error::Error;

pub type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

pub struct MessagingService {
    engine: Arc<Engine>,
    max_inflight_per_stream: usize,
    budget: PublishBudget,
}

impl MessagingService {
    pub fn new(
        engine: Arc<Engine>,
        max_inflight_per_stream: usize,
        budget: PublishBudget,
    ) -> MessagingService {
        MessagingService {
            engine,
            max_inflight_per_stream,
            budget,
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
        let principal = principal(&request);
        let request = request.into_inner();
        let partition = request.partition;
        let _permit = self.budget.try_acquire(request.batch.len())?;
        let ack = self
            .engine
            .publish(&principal, publish_params(request))
            .await?;
        Ok(Response::new(publish_response(partition, ack)))
    }

    type PublishStreamStream = ResponseStream<pb::PublishStreamResponse>;

    async fn publish_stream(
        &self,
        request: Request<Streaming<pb::PublishStreamRequest>>,
    ) -> Result<Response<Self::PublishStreamStream>, Status> {
        let principal = principal(&request);
        let mut inbound = request.into_inner();
        let engine = self.engine.clone();
        let budget = self.budget.clone();
        let max_inflight = self.max_inflight_per_stream;
        let (tx, rx) = mpsc::channel(max_inflight);
        tokio::spawn(async move {
            // Requests are queued on their partitions in arrival order (so offsets follow it);
            // acknowledgements are sent as their group commits finish.
            let mut pending = FuturesUnordered::new();
            let mut inbound_open = true;
            loop {
                tokio::select! {
                    next = inbound.next(), if inbound_open && pending.len() < max_inflight => {
                        match next {
                            Some(Ok(item)) => {
                                let id = item.correlation_id;
                                let Some(request) = item.request else {
                                    let err = Error::malformed("PublishStreamRequest without a request");
                                    if tx.send(Ok(stream_error(id, &err))).await.is_err() { return; }
                                    continue;
                                };
                                let partition = request.partition;
                                let permit = match budget.try_acquire(request.batch.len()) {
                                    Ok(permit) => permit,
                                    Err(err) => {
                                        if tx.send(Ok(stream_error(id, &err))).await.is_err() { return; }
                                        continue;
                                    }
                                };
                                match engine.begin_publish(&principal, publish_params(request)).await {
                                    Ok(ack) => pending.push(async move {
                                        let result = ack.await;
                                        drop(permit);
                                        (id, partition, result)
                                    }),
                                    Err(err) => {
                                        if tx.send(Ok(stream_error(id, &err))).await.is_err() { return; }
                                    }
                                }
                            }
                            Some(Err(status)) => {
                                tracing::debug!(%status, "publish stream broke");
                                inbound_open = false;
                            }
                            None => inbound_open = false,
                        }
                    }
                    Some((id, partition, result)) = pending.next(), if !pending.is_empty() => {
                        let response = match result {
                            Ok(ack) => pb::PublishStreamResponse {
                                correlation_id: id,
                                result: Some(pb::publish_stream_response::Result::Ok(publish_response(partition, ack))),
                            },
                            Err(err) => stream_error(id, &err),
                        };
                        if tx.send(Ok(response)).await.is_err() { return; }
                    }
                    else => return,
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
        let principal = principal(&request);
        let stream = consume::start(self.engine.clone(), principal, request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().topic, partition = request.get_ref().partition))]
    async fn fetch(
        &self,
        request: Request<pb::FetchRequest>,
    ) -> Result<Response<pb::FetchResponse>, Status> {
        let principal = principal(&request);
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
            .await?;
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
        let principal = principal(&request);
        let r = request.into_inner();
        let offsets: Vec<(u32, u64)> = r.offsets.iter().map(|o| (o.partition, o.offset)).collect();
        self.engine
            .commit(&principal, &r.topic, &r.subscription, &offsets, None)
            .await?;
        Ok(Response::new(pb::CommitOffsetResponse {}))
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
