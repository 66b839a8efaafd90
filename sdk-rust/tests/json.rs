//! JSON helpers (conformance C28) against a real broker: a value sent with `json_message` reads
//! back as the same value, marked `content-type: application/json`; JSON without the header
//! reads too; a value that is not JSON is `INVALID_ARGUMENT`.

mod common;

use common::{Env, guarded, read_log};
use rapidmq::{CONTENT_TYPE_HEADER, ErrorCode, JSON_CONTENT_TYPE, JsonExt, Message, json_message};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u32,
    name: String,
    tags: Vec<String>,
    price: f64,
    note: Option<String>,
}

fn order() -> Order {
    Order {
        id: 7,
        name: "café ☕".into(),
        tags: vec!["a".into(), "b".into()],
        price: 12.5,
        note: None,
    }
}

async fn send(env: &Env, topic: &str, message: Message) {
    let producer = env.client.producer(topic).build().await.unwrap();
    guarded("send", producer.send(message).await.unwrap())
        .await
        .unwrap();
    producer.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_sent_as_json_is_read_back_as_the_same_object() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    let message = json_message(&order())
        .unwrap()
        .with_key("k")
        .with_header("source", "test");
    send(&env, &topic, message).await;
    send(
        &env,
        &topic,
        Message::new(r#"{"id":8,"name":"plain","tags":[],"price":1,"note":"n"}"#),
    )
    .await;

    let log = read_log(&env.client, &topic).await;
    assert_eq!(log[0].json::<Order>().unwrap(), order());
    let headers: Vec<(&str, &[u8])> = log[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_ref()))
        .collect();
    assert_eq!(
        headers,
        vec![
            (CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE.as_bytes()),
            ("source", &b"test"[..])
        ]
    );
    let raw: serde_json::Value = serde_json::from_slice(&log[0].value).unwrap();
    assert_eq!(
        raw,
        serde_json::json!({"id": 7, "name": "café ☕", "tags": ["a", "b"], "price": 12.5, "note": null})
    );
    let plain: Order = log[1].json().unwrap();
    assert_eq!(
        (plain.id, plain.note.as_deref()),
        (8, Some("n")),
        "JSON without the header reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_that_is_not_json_fails_with_invalid_argument() {
    let env = Env::start().await;
    let topic = env.topic(1).await;
    send(&env, &topic, Message::new("not json")).await;
    let log = read_log(&env.client, &topic).await;
    let err = log[0].json::<Order>().unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err:?}");

    let not_a_string_key = std::collections::HashMap::from([((1, 2), "x")]);
    let err = json_message(&not_a_string_key).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err:?}");
}
