//! The tail cache has one broker-wide budget (`storage.tail_cache_bytes`), not one per
//! partition: with a budget far smaller than what many partitions publish, the cache stays within
//! it (as `/metrics` reports) and every message is still served, in order and unchanged, from the
//! cache or, once evicted, from storage.

mod common;

use common::*;
use rapidmq_proto::v1 as pb;

const BUDGET: u64 = 8 * 1024;
const PARTITIONS: u32 = 12;
const BATCHES_PER_PARTITION: usize = 10;
const MESSAGES_PER_BATCH: usize = 3;

/// `(rapidmq_tail_cache_bytes, rapidmq_tail_cache_limit_bytes)` from one scrape.
async fn tail_cache_gauges(broker: &TestBroker) -> (f64, f64) {
    let text = reqwest::get(format!("{}/metrics", broker.http_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text");
    let gauge = |name: &str| {
        parsed
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                _ => panic!("{name} is not a gauge"),
            })
            .unwrap_or_else(|| panic!("{name} missing from /metrics"))
    };
    (
        gauge("rapidmq_tail_cache_bytes"),
        gauge("rapidmq_tail_cache_limit_bytes"),
    )
}

fn value(partition: u32, batch: usize, i: usize) -> String {
    // About 300 bytes a message, so one partition's batches alone outgrow the whole budget.
    format!("p{partition}-b{batch}-m{i}-{}", "x".repeat(300))
}

#[tokio::test]
async fn many_partitions_share_one_small_tail_cache_and_every_message_is_served() {
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![(
            "RAPIDMQ_STORAGE__TAIL_CACHE_BYTES".into(),
            BUDGET.to_string(),
        )],
        ..Default::default()
    });
    let mut c = connect(&broker).await;
    create_topic(&mut c, "wide", topic_config(PARTITIONS)).await;

    // A consumer that keeps up, opened before anything is published.
    let total = PARTITIONS as usize * BATCHES_PER_PARTITION * MESSAGES_PER_BATCH;
    let mut live = Consumer::open(
        &mut c,
        "wide",
        "live",
        start(pb::StartKind::Latest),
        total as u32,
    )
    .await
    .unwrap();

    let mut published = Vec::new();
    for batch in 0..BATCHES_PER_PARTITION {
        for partition in 0..PARTITIONS {
            let messages: Vec<Msg> = (0..MESSAGES_PER_BATCH)
                .map(|i| msg(format!("k{i}"), value(partition, batch, i)))
                .collect();
            let ack = publish(&mut c, "wide", partition, &messages).await.unwrap();
            for (i, m) in messages.into_iter().enumerate() {
                published.push((partition, ack.base_offset + i as u64, m));
            }
        }
        let (cached, limit) = tail_cache_gauges(&broker).await;
        assert_eq!(limit, BUDGET as f64);
        assert!(
            cached <= BUDGET as f64,
            "{cached} bytes cached over a budget of {BUDGET}"
        );
    }
    let (cached, _) = tail_cache_gauges(&broker).await;
    assert!(cached > 0.0, "recent batches are still cached");

    // Every message, read back by the live consumer and by a new one from the start (which must
    // read the evicted batches from storage), is the one published at its offset.
    let mut expected: Vec<(u32, u64, Msg)> = published;
    expected.sort_by_key(|(p, o, _)| (*p, *o));
    let as_sorted = |received: Vec<Received>| {
        let mut got: Vec<(u32, u64, Msg)> = received
            .into_iter()
            .map(|r| (r.partition, r.offset, r.msg))
            .collect();
        got.sort_by_key(|(p, o, _)| (*p, *o));
        got
    };
    assert_eq!(as_sorted(live.receive(total).await), expected);

    let mut replay = Consumer::open(
        &mut c,
        "wide",
        "replay",
        start(pb::StartKind::Earliest),
        total as u32,
    )
    .await
    .unwrap();
    assert_eq!(as_sorted(replay.receive(total).await), expected);
    let (cached, _) = tail_cache_gauges(&broker).await;
    assert!(cached <= BUDGET as f64);
}
