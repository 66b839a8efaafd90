//! Tests of the peer queues: coalescing, unreachable peers.

use futures::future::{BoxFuture, join_all};
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_stream::wrappers::TcpListenerStream;

use super::*;
use crate::cluster::Groups;
use crate::cluster::wire::GroupHandle;

/// Answers each message with the group id followed by the message; the group built with a
/// gate holds its first answer until the test opens it.
struct Echo {
    group: GroupId,
    entered: Arc<Notify>,
    gate: Option<Arc<Notify>>,
}

impl GroupHandle for Echo {
    fn handle(&self, message: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move {
            if let Some(gate) = &self.gate {
                self.entered.notify_one();
                gate.notified().await;
            }
            let mut answer = self.group.to_be_bytes().to_vec();
            answer.extend(message);
            Ok(answer)
        })
    }

    fn heartbeat(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn install_snapshot(
        &self,
        head: Vec<u8>,
        data: Vec<u8>,
    ) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async move { Ok([head, data].concat()) })
    }

    fn propose(&self, _command: Vec<u8>) -> BoxFuture<'_, Result<Vec<u8>, String>> {
        Box::pin(async { Err("an echo takes no commands".to_string()) })
    }

    fn read_index(&self) -> BoxFuture<'_, Result<u64, String>> {
        Box::pin(async { Err("an echo has no log".to_string()) })
    }
}

fn queue_message(
    queue: &mpsc::UnboundedSender<Queued>,
    group: GroupId,
) -> oneshot::Receiver<Result<Vec<u8>, SendFailure>> {
    let (answer, answered) = oneshot::channel();
    let message = Frame::Message(format!("to {group}").into_bytes());
    assert!(
        queue
            .send(Queued {
                group,
                message,
                answer
            })
            .is_ok()
    );
    answered
}

#[tokio::test]
async fn messages_queued_during_an_rpc_go_out_together_in_the_next_one() {
    let groups = Groups::new();
    let entered = Arc::new(Notify::new());
    let gate = Arc::new(Notify::new());
    for group in 0..=20 {
        let gate = (group == 0).then(|| Arc::clone(&gate));
        let entered = Arc::clone(&entered);
        groups.insert(
            group,
            Arc::new(Echo {
                group,
                entered,
                gate,
            }),
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_open, closing) = tokio::sync::watch::channel(false);
    let service = groups.service(closing);
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );

    let peers = Peers::new();
    let queue = peers.queue(2, &addr.to_string());
    let first = queue_message(&queue, 0);
    entered.notified().await; // the first RPC is now in flight, held by group 0
    let rest: Vec<_> = (1..=20).map(|group| queue_message(&queue, group)).collect();
    gate.notify_one();

    let mut answers = vec![first.await.unwrap().unwrap()];
    for answer in join_all(rest).await {
        answers.push(answer.unwrap().unwrap());
    }
    for (group, answer) in (0..=20u64).zip(&answers) {
        let mut want = group.to_be_bytes().to_vec();
        want.extend(format!("to {group}").into_bytes());
        assert_eq!(*answer, want, "group {group} got its own answer");
    }
    let traffic = peers.traffic();
    assert_eq!(
        traffic.rpcs.load(Ordering::Relaxed),
        2,
        "one RPC, then the rest in one"
    );
    assert_eq!(traffic.messages.load(Ordering::Relaxed), 21);

    peers.close();
    server.abort();
}

#[tokio::test]
async fn a_peer_that_is_down_fails_the_messages_as_unreachable() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let peers = Peers::new();
    let queue = peers.queue(2, &addr.to_string());
    let answer = queue_message(&queue, 7).await.unwrap();
    assert!(answer.is_err(), "no answer from a closed port: {answer:?}");
    peers.close();
}

/// Serves `groups` on `listener` until `closing` turns true.
fn serve_until(
    groups: &Arc<Groups>,
    listener: TcpListener,
    closing: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let service = groups.service(closing.clone());
    let mut closed = closing;
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(TcpListenerStream::new(listener), async move {
                let _ = closed.wait_for(|closing| *closing).await;
            })
            .await
            .unwrap();
    })
}

#[tokio::test]
async fn a_peer_that_restarted_gets_the_next_batch_on_a_new_stream() {
    let groups = Groups::new();
    for group in [1, 2] {
        let entered = Arc::new(Notify::new());
        groups.insert(
            group,
            Arc::new(Echo {
                group,
                entered,
                gate: None,
            }),
        );
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (closing, closed) = tokio::sync::watch::channel(false);
    let server = serve_until(&groups, listener, closed);

    let peers = Peers::new();
    let queue = peers.queue(2, &addr.to_string());
    let first = queue_message(&queue, 1).await.unwrap();
    assert!(first.is_ok(), "{first:?}");

    // The peer shuts down (ending its side of the stream, or its shutdown would wait for the
    // sender forever) and starts again on the same address.
    closing.send(true).unwrap();
    server.await.unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    let (_open, closed) = tokio::sync::watch::channel(false);
    let server = serve_until(&groups, listener, closed);

    let second = queue_message(&queue, 2).await.unwrap();
    let mut want = 2u64.to_be_bytes().to_vec();
    want.extend(b"to 2");
    assert_eq!(
        second.unwrap(),
        want,
        "answered on a new stream, not failed"
    );
    assert_eq!(peers.traffic().rpcs.load(Ordering::Relaxed), 2);

    peers.close();
    server.abort();
}
