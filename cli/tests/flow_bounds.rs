//! The flow-event ring is bounded in bytes, not only in events: traced messages with long keys
//! fill `observability.flow_events_bytes` long before `observability.flow_events`, and the ring
//! then keeps only the newest events that fit.

mod common;

use bytes::Bytes;
use common::*;
use rapidmq_proto::v1 as pb;

const BUDGET: u64 = 64 * 1024;
const KEY_LEN: usize = 8 * 1024;
const MESSAGES: usize = 40;

#[tokio::test]
async fn traced_messages_with_long_keys_keep_the_flow_ring_within_its_byte_budget() {
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![(
            "RAPIDMQ_OBSERVABILITY__FLOW_EVENTS_BYTES".into(),
            BUDGET.to_string(),
        )],
        ..Default::default()
    });
    let mut c = connect(&broker).await;
    create_topic(&mut c, "traced", topic_config(1)).await;
    for i in 0..MESSAGES {
        let message = pb::Message {
            key: Some(Bytes::from(format!("{i:03}{}", "k".repeat(KEY_LEN)))),
            value: Bytes::from_static(b"v"),
            headers: vec![pb::Header {
                key: "msg-id".into(),
                value: Bytes::from(format!("m-{i}")),
            }],
            ..Default::default()
        };
        publish_raw(&mut c, "traced", 0, vec![message])
            .await
            .unwrap();
    }

    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{}{path}", broker.http_url())).send();
    let events: serde_json::Value = get("/v1/flow-events?limit=1000")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = events["events"].as_array().unwrap();
    // 40 events of over 8 KiB each cannot all fit in 64 KiB: only the newest are kept.
    assert!(
        !events.is_empty() && events.len() < 8,
        "{} events kept",
        events.len()
    );
    let kept_bytes: usize = events
        .iter()
        .map(|e| e["key"].as_str().unwrap().len())
        .sum();
    assert!(kept_bytes as u64 <= BUDGET);
    let newest = events.last().unwrap();
    assert_eq!(newest["msg_id"], format!("m-{}", MESSAGES - 1));
    assert_eq!(newest["seq"], MESSAGES as u64);

    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    let gauge = |name: &str| -> f64 {
        let line = metrics
            .lines()
            .find(|l| l.split([' ', '{']).next() == Some(name))
            .unwrap_or_else(|| panic!("{name} missing from /metrics"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(gauge("rapidmq_flow_events_limit_bytes"), BUDGET as f64);
    let held = gauge("rapidmq_flow_events_bytes");
    assert!(held > 0.0 && held <= BUDGET as f64, "{held}");
}
