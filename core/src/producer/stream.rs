//! The producer's `PublishStream`: one ordered bidi stream per connection. The owner task writes
//! requests (tagged with a correlation id) into it; this task reads the answers and reports them,
//! and reports once when the stream ends, so the owner can fail what was outstanding on it.
//!
//! A stream goes to the seed connection, or to one node (a partition leader, client routing).
//! An error answer with a leader hint teaches the client's routes before the owner retries; so
//! does the ack of a batch the node forwarded to the partition's leader (the partition's next
//! batches go to that leader once none of its batches is on the wire).

use rapidmq_proto::v1::{self, publish_stream_response};
use tokio::sync::mpsc;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::client::Client;
use crate::error::{Error, Result};

/// What a stream task reports to the owner.
pub(crate) enum Event {
    /// The answer to request `correlation_id`.
    Answer {
        correlation_id: u64,
        result: Result<v1::PublishResponse>,
    },
    /// Stream `stream` ended; every request still outstanding on it failed with `error`.
    Lost { stream: u64, error: Error },
}

/// The owner's end of one stream.
pub(crate) struct StreamHandle {
    pub(crate) id: u64,
    pub(crate) requests: mpsc::UnboundedSender<v1::PublishStreamRequest>,
    task: tokio::task::JoinHandle<()>,
}

impl StreamHandle {
    /// Opens stream `id` in the background; requests may be written at once and go out when it
    /// is open. `node` is the node to open it on (its id and address), `None` for the seed.
    pub(crate) fn open(
        client: &Client,
        id: u64,
        node: Option<(u64, String)>,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        let (requests, rx) = mpsc::unbounded_channel();
        let task = client
            .runtime()
            .spawn(run(client.clone(), id, node, rx, events));
        StreamHandle { id, requests, task }
    }
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    client: Client,
    id: u64,
    node: Option<(u64, String)>,
    rx: mpsc::UnboundedReceiver<v1::PublishStreamRequest>,
    events: mpsc::UnboundedSender<Event>,
) {
    let error = match node {
        None => serve(&client, rx, &events).await,
        Some((node, addr)) => serve_node(&client, node, &addr, rx, &events).await,
    };
    tracing::debug!(stream = id, cause = %error, "publish stream ended");
    let _ = events.send(Event::Lost { stream: id, error });
}

async fn serve(
    client: &Client,
    rx: mpsc::UnboundedReceiver<v1::PublishStreamRequest>,
    events: &mpsc::UnboundedSender<Event>,
) -> Error {
    // The session this stream is opened with (see `Client::stream_ended`).
    let opened_with = client.current_session();
    let (generation, mut messaging) = match client.messaging().await {
        Ok(connected) => connected,
        Err(err) => return err,
    };
    let opened = tokio::time::timeout(
        client.config().request_timeout,
        messaging.publish_stream(UnboundedReceiverStream::new(rx)),
    )
    .await;
    let mut responses = match opened {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => {
            let err = client
                .stream_ended(generation, status, opened_with.clone())
                .await;
            return err;
        }
        Err(_) => {
            return Error::Timeout {
                message: "opening the publish stream".into(),
            };
        }
    };
    loop {
        match responses.message().await {
            Ok(Some(answer)) => {
                if !report(client, answer, events) {
                    return Error::closed("the producer stopped");
                }
            }
            Ok(None) => return Error::unavailable("the broker ended the publish stream"),
            Err(status) => {
                let err = client
                    .stream_ended(generation, status, opened_with.clone())
                    .await;
                return err;
            }
        }
    }
}

/// A publish stream on node `node`'s own connection.
async fn serve_node(
    client: &Client,
    node: u64,
    addr: &str,
    rx: mpsc::UnboundedReceiver<v1::PublishStreamRequest>,
    events: &mpsc::UnboundedSender<Event>,
) -> Error {
    let failed = |err: Error| {
        if err.is_connection_failure() {
            client.routes().node_failed(node);
        }
        err
    };
    let mut messaging = match client.node_messaging(node, addr).await {
        Ok(messaging) => messaging,
        Err(err) => return failed(err),
    };
    let opened = tokio::time::timeout(
        client.config().request_timeout,
        messaging.publish_stream(UnboundedReceiverStream::new(rx)),
    )
    .await;
    let mut responses = match opened {
        Ok(Ok(response)) => response.into_inner(),
        Ok(Err(status)) => return failed(Error::from(status)),
        Err(_) => {
            return failed(Error::unavailable(format!(
                "opening the publish stream on node {node} timed out"
            )));
        }
    };
    loop {
        match responses.message().await {
            Ok(Some(answer)) => {
                if !report(client, answer, events) {
                    return Error::closed("the producer stopped");
                }
            }
            Ok(None) => return failed(Error::unavailable("the node ended the publish stream")),
            Err(status) => return failed(Error::from(status)),
        }
    }
}

/// Reports one answer to the owner, after adopting the leader hint of an answer (or
/// marking the topic's routes stale when an `UNAVAILABLE` or `NOT_FOUND` came without one);
/// false when the owner is gone.
fn report(
    client: &Client,
    answer: v1::PublishStreamResponse,
    events: &mpsc::UnboundedSender<Event>,
) -> bool {
    let result = match answer.result {
        Some(publish_stream_response::Result::Ok(mut ok)) => {
            // Forwarded by a node that does not lead the partition: its leader is elsewhere.
            if let Some(hint) = ok.leader_hint.take()
                && client.routes().adopt(&hint)
            {
                tracing::debug!(topic = %hint.topic, partition = hint.partition, leader = hint.leader, term = hint.term, "adopted the leader hint of an ack");
            }
            Ok(ok)
        }
        Some(publish_stream_response::Result::Error(mut err)) => {
            match err.leader_hint.take() {
                Some(hint) => {
                    if client.routes().adopt(&hint) {
                        tracing::debug!(topic = %hint.topic, partition = hint.partition, leader = hint.leader, term = hint.term, "adopted a leader hint");
                    }
                }
                None => {
                    let code = rapidmq_proto::ErrorCode::from_code(err.code);
                    if matches!(
                        code,
                        Some(
                            rapidmq_proto::ErrorCode::Unavailable
                                | rapidmq_proto::ErrorCode::TopicNotFound
                                | rapidmq_proto::ErrorCode::PartitionNotFound
                        )
                    ) {
                        client.routes().mark_all_stale();
                    }
                }
            }
            Err(Error::from(err))
        }
        None => Err(Error::protocol("publish stream answer without a result")),
    };
    let event = Event::Answer {
        correlation_id: answer.correlation_id,
        result,
    };
    events.send(event).is_ok()
}
