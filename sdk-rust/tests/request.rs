//! Request/reply (conformance C27) against a real broker: a responder on a queue subscription
//! answers concurrent requests, each gets its own reply; no responder is a timeout; a message
//! that is no request cannot be replied to; closing the requester deletes its inbox.

mod common;

use std::time::Duration;

use common::{Env, guarded, text};
use rapidmq::{
    CORRELATION_ID_HEADER, Client, Error, ErrorCode, Message, REPLY_TO_HEADER, ReceivedMessage,
    StartPosition,
};

/// Answers `count` requests on `topic` with their value upper-cased and the request's
/// `n` header echoed back.
async fn respond(client: Client, topic: String, count: usize) {
    let consumer = client
        .queue_consumer(&topic)
        .subscription("responders")
        .start(StartPosition::Earliest)
        .subscribe()
        .await
        .unwrap();
    let mut answered = 0;
    while answered < count {
        for delivery in consumer
            .poll(count - answered, Duration::from_secs(30))
            .await
            .unwrap()
        {
            let request = &delivery.message;
            let n = request
                .headers
                .iter()
                .find(|(k, _)| k == "n")
                .unwrap()
                .1
                .clone();
            let reply = Message::new(text(&request.value).to_uppercase()).with_header("n", n);
            client.reply(request, reply).await.unwrap();
            consumer.ack(&delivery.receipt).unwrap();
            answered += 1;
        }
    }
    consumer.close().await.unwrap();
}

/// The first message of `topic` (one partition), waiting for it: a request that timed out was
/// still queued for sending, but may not have reached the broker yet.
async fn first_message(env: &Env, topic: &str) -> ReceivedMessage {
    let reader = env
        .client
        .consumer(topic)
        .start(StartPosition::Earliest)
        .subscribe()
        .await
        .unwrap();
    let mut got = guarded("first message", reader.poll(1, Duration::from_secs(30)))
        .await
        .unwrap();
    reader.close().await.unwrap();
    assert_eq!(got.len(), 1, "no message on {topic}");
    got.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_their_own_reply() {
    const REQUESTS: usize = 20;
    let env = Env::start().await;
    let topic = env.topic(2).await;
    let responder = Client::connect(env.broker.grpc_url()).await.unwrap();
    let answering = tokio::spawn(respond(responder.clone(), topic.clone(), REQUESTS));

    let asks = (0..REQUESTS).map(|i| {
        let client = env.client.clone();
        let topic = topic.clone();
        async move {
            let request = Message::new(format!("ask-{i}")).with_header("n", i.to_string());
            let reply = client
                .request(&topic, request, Duration::from_secs(30))
                .await
                .unwrap();
            (i, reply)
        }
    });
    let replies = guarded("requests", futures::future::join_all(asks)).await;
    for (i, reply) in replies {
        assert_eq!(text(&reply.value), format!("ASK-{i}"));
        let n = reply.headers.iter().find(|(k, _)| k == "n").unwrap();
        assert_eq!(
            text(&n.1),
            i.to_string(),
            "reply {i} went to the wrong request"
        );
        assert!(
            reply
                .headers
                .iter()
                .any(|(k, _)| k == CORRELATION_ID_HEADER)
        );
        assert!(
            reply.topic.starts_with("_inbox."),
            "replies come through the inbox: {}",
            reply.topic
        );
    }
    guarded("responder", answering).await.unwrap();
    responder.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_answers_times_out_and_a_late_reply_is_dropped() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let started = tokio::time::Instant::now();
    let err = env
        .client
        .request(&topic, Message::new("anyone?"), Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(300));

    // The unanswered request is still on the topic; answering it now reaches nobody, and the
    // requester's next request gets its own reply, not the late one.
    let responder = Client::connect(env.broker.grpc_url()).await.unwrap();
    let late = first_message(&env, &topic).await;
    responder.reply(&late, Message::new("late")).await.unwrap();
    let topic2 = topic.clone();
    let answering = tokio::spawn({
        let responder = responder.clone();
        async move {
            let consumer = responder
                .consumer(&topic2)
                .subscription("s")
                .start(StartPosition::Offset(1))
                .subscribe()
                .await
                .unwrap();
            let got = consumer.poll(1, Duration::from_secs(30)).await.unwrap();
            responder
                .reply(&got[0], Message::new("on time"))
                .await
                .unwrap();
        }
    });
    let reply = env
        .client
        .request(&topic, Message::new("again"), Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(text(&reply.value), "on time");
    guarded("responder", answering).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_no_request_cannot_be_replied_to() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let producer = env.client.producer(&topic).build().await.unwrap();
    guarded("send", producer.send(Message::new("plain")).await.unwrap())
        .await
        .unwrap();
    let plain = first_message(&env, &topic).await;
    let err = env
        .client
        .reply(&plain, Message::new("x"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err:?}");

    let err = env
        .client
        .request(&topic, Message::new("q"), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err:?}");

    let err = env
        .client
        .request("no-such-topic", Message::new("q"), Duration::from_secs(5))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TopicNotFound, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_requester_deletes_its_inbox() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let requester = Client::connect(env.broker.grpc_url()).await.unwrap();
    let err = requester
        .request(&topic, Message::new("q"), Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    let request = first_message(&env, &topic).await;
    let inbox = request
        .headers
        .iter()
        .find(|(k, _)| k == REPLY_TO_HEADER)
        .map(|(_, v)| text(v))
        .unwrap();
    let admin = env.client.admin();
    assert!(
        admin.describe_topic(&inbox).await.is_ok(),
        "the inbox exists while in use"
    );

    requester.close().await.unwrap();
    let err = admin.describe_topic(&inbox).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::TopicNotFound, "{err:?}");
    let err = env
        .client
        .reply(&request, Message::new("too late"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::TopicNotFound, "{err:?}");
}
