//! Per-partition consumer-lag series are capped like topic series: past
//! `observability.max_lag_series`, a subscription's series are summed into the overflow label set
//! (`tenant`, `topic`, `subscription` and `partition` all `_other`), so lag never goes missing.

mod common;
mod rest_common;

use common::{BrokerOptions, TestBroker};
use rest_common::*;
use serde_json::{Value, json};

/// `rapidmq_consumer_lag` samples: `(subscription, partition, value)`.
async fn lag_samples(rest: &Rest) -> Vec<(String, String, f64)> {
    let text = rest
        .http
        .get(rest.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let parsed = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("valid Prometheus text");
    let mut out: Vec<_> = parsed
        .samples
        .into_iter()
        .filter(|s| s.metric == "rapidmq_consumer_lag")
        .map(|s| {
            let value = match s.value {
                prometheus_parse::Value::Gauge(v) | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("lag is not a gauge: {other:?}"),
            };
            (
                s.labels["subscription"].to_string(),
                s.labels["partition"].to_string(),
                value,
            )
        })
        .collect();
    out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    out
}

#[tokio::test]
async fn lag_series_past_the_limit_are_summed_into_the_overflow_set() {
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![("RAPIDMQ_OBSERVABILITY__MAX_LAG_SERIES".into(), "4".into())],
        ..Default::default()
    });
    let rest = Rest::new(&broker);
    rest.create_topic("wide", 2).await;
    for name in ["a", "b", "c"] {
        rest.create_subscription(
            "wide",
            json!({"name": name, "mode": "stream", "start": {"kind": "earliest"}}),
        )
        .await;
    }
    for (partition, n) in [(0, 3), (1, 5)] {
        let messages: Vec<Value> = (0..n).map(|i| json!({"value": format!("m{i}")})).collect();
        rest.post(
            &format!("/v1/topics/wide/messages?partition={partition}"),
            json!({ "messages": messages }),
        )
        .await
        .ok();
    }

    // Two subscriptions of two partitions fill the 4 series; the third is summed into `_other`.
    let samples = lag_samples(&rest).await;
    let own: Vec<_> = samples.iter().filter(|s| s.0 != "_other").collect();
    assert_eq!(own.len(), 4, "{samples:?}");
    let other: Vec<_> = samples.iter().filter(|s| s.0 == "_other").collect();
    assert_eq!(other.len(), 1, "{samples:?}");
    assert_eq!(other[0].1, "_other");
    assert_eq!(
        other[0].2, 8.0,
        "the third subscription's lag, both partitions"
    );
    let total: f64 = samples.iter().map(|s| s.2).sum();
    assert_eq!(total, 3.0 * 8.0, "no lag goes missing");

    // The same subscriptions keep their series on the next scrape.
    assert_eq!(lag_samples(&rest).await, samples);

    // Deleting one of them frees its slots for the third.
    let kept: Vec<&str> = own.iter().map(|s| s.0.as_str()).collect();
    let dropped = kept[0];
    let reply = rest
        .delete(&format!("/v1/topics/wide/subscriptions/{dropped}"))
        .await;
    assert!(reply.status.is_success(), "{reply:?}");
    let samples = lag_samples(&rest).await;
    assert!(samples.iter().all(|s| s.0 != "_other"), "{samples:?}");
    assert_eq!(samples.len(), 4, "{samples:?}");
}
