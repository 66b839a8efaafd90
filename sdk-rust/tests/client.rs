//! `Client::close` against a real broker: it flushes producers, sends the final commits and
//! acks of consumers, and every later operation fails with `Error::Closed`.

mod common;

use std::time::Duration;

use common::{Env, guarded, publish_values};
use rapidmq::{Client, Error, Message, StartPosition};

const LONG: Duration = Duration::from_secs(3600);

fn assert_closed<T>(what: &str, result: rapidmq::Result<T>) {
    match result {
        Err(Error::Closed { .. }) => {}
        Err(other) => panic!("{what}: expected Error::Closed, got {other:?}"),
        Ok(_) => panic!("{what}: expected Error::Closed, got Ok"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_close_flushes_producers_commits_consumers_and_fails_later_calls() {
    let env = Env::start().await;
    let stream_topic = env.topic(1).await;
    let queue_topic = env.topic(1).await;
    let setup = env.client.producer(&stream_topic).build().await.unwrap();
    publish_values(&setup, 20).await;
    let setup = env.client.producer(&queue_topic).build().await.unwrap();
    publish_values(&setup, 30).await;

    let client = Client::connect(env.broker.grpc_url()).await.unwrap();
    // Nothing here flushes, commits or acks on its own before the close: a linger, a commit
    // interval and an ack interval of an hour.
    let producer = client
        .producer(&stream_topic)
        .linger(LONG)
        .build()
        .await
        .unwrap();
    let consumer = client
        .consumer(&stream_topic)
        .subscription("closing")
        .start(StartPosition::Earliest)
        .commit_interval(LONG)
        .subscribe()
        .await
        .unwrap();
    let queue = client
        .queue_consumer(&queue_topic)
        .subscription("closing")
        .start(StartPosition::Earliest)
        .ack_interval(LONG)
        .ack_deadline(LONG)
        .subscribe()
        .await
        .unwrap();

    let mut polled = Vec::new();
    while polled.len() < 20 {
        polled.extend(
            guarded("poll", consumer.poll(20, Duration::from_secs(10)))
                .await
                .unwrap(),
        );
    }
    for m in &polled {
        consumer.ack(m).unwrap();
    }
    let mut deliveries = Vec::new();
    while deliveries.len() < 30 {
        deliveries.extend(
            guarded("poll", queue.poll(30, Duration::from_secs(10)))
                .await
                .unwrap(),
        );
    }
    for d in &deliveries {
        queue.ack(&d.receipt).unwrap();
    }
    let mut receipts = Vec::new();
    for i in 0..100 {
        receipts.push(producer.send(Message::new(i.to_string())).await.unwrap());
    }

    guarded("close", client.close()).await.unwrap();
    assert!(client.is_closed());

    // The producer flushed: every receipt completed.
    for receipt in receipts {
        guarded("receipt", receipt).await.unwrap();
    }
    // The stream consumer committed its 20 acks: 100 of the 120 messages are left.
    let admin = env.client.admin();
    assert_eq!(admin.lag(&stream_topic, "closing").await.unwrap(), 100);
    // The queue consumer sent its 30 acks: nothing is in flight.
    let info = admin
        .describe_subscription(&queue_topic, "closing")
        .await
        .unwrap();
    assert_eq!(info.queue_stats.unwrap().in_flight, 0);

    // Everything made from the client, and the client itself, now fails with Error::Closed.
    assert_closed("send", producer.send(Message::new("late")).await);
    assert_closed("poll", consumer.poll(1, Duration::ZERO).await);
    assert_closed("queue poll", queue.poll(1, Duration::ZERO).await);
    assert_closed("producer", client.producer(&stream_topic).build().await);
    assert_closed(
        "subscribe",
        client
            .consumer(&stream_topic)
            .subscription("x")
            .subscribe()
            .await,
    );
    assert_closed("admin", client.admin().list_topics().await);
    assert_closed("fetch", client.fetch(&stream_topic, 0, 0, 10).await);
    // Closing again is a no-op with the same outcome.
    client.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_closes_all_wait_for_the_one_close() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let client = Client::connect(env.broker.grpc_url()).await.unwrap();
    let producer = client.producer(&topic).linger(LONG).build().await.unwrap();
    let receipt = producer.send(Message::new("x")).await.unwrap();
    let (a, b) = tokio::join!(client.close(), client.close());
    a.unwrap();
    b.unwrap();
    // Either close returned only after the flush: the receipt is already complete.
    let mut receipt = receipt;
    assert!(matches!(receipt.try_result(), Some(Ok(_))));
}
