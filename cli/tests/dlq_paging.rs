//! Dead-letter listing and replay are bounded and paged, against a real broker: pages over a
//! two-partition dead-letter topic return every letter once and in order per partition (also
//! when replay or retention moves the start between pages), bad page sizes and tokens are
//! refused, replay goes a bounded number per call with `remaining` counting down, and the CLI
//! and REST follow the pages.
//!
//! The letters are published to the dead-letter topic directly, with the `rapidmq-dlq-*`
//! headers the broker adds when it dead-letters (the queue tests cover that move); thousands of
//! them are needed to span pages, and a dead letter is exactly such a message.

mod common;
mod rest_common;

use std::collections::{BTreeMap, HashSet};
use std::process::Output;

use bytes::Bytes;
use common::{Clients, connect, create_topic, error_code, publish_raw, topic_config};
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use rapidmq_testkit::{BrokerOptions, TestBroker};
use rest_common::Rest;
use serde_json::Value;

/// The original topic: letters go back to it.
const ORIGIN: &str = "orders";
/// Its dead-letter topic, with two partitions (a subscription may name any topic).
const DLQ: &str = "orders.dlq";
/// Letters per batch; pages end inside batches, so resuming mid-batch is exercised.
const BATCH: usize = 70;

fn buffered(partitions: u32) -> pb::TopicConfig {
    pb::TopicConfig {
        durability: pb::Durability::Buffered as i32,
        ..topic_config(partitions)
    }
}

/// The value of letter `i` of dead-letter partition `p`: unique, so replays can be counted.
fn letter_value(p: u32, i: usize) -> String {
    format!("letter-{p}-{i}")
}

/// A dead letter as the broker writes one: the message with its origin in headers.
fn dead_letter(p: u32, i: usize) -> pb::Message {
    let header = |key: &str, value: String| pb::Header {
        key: key.into(),
        value: Bytes::from(value),
    };
    pb::Message {
        value: Bytes::from(letter_value(p, i)),
        headers: vec![
            header("app", "kept".into()),
            header("rapidmq-dlq-topic", ORIGIN.into()),
            header("rapidmq-dlq-subscription", "workers".into()),
            header("rapidmq-dlq-partition", p.to_string()),
            header("rapidmq-dlq-offset", i.to_string()),
            header(
                "rapidmq-dlq-reason",
                "nacked on the last allowed delivery".into(),
            ),
            header("rapidmq-dlq-attempts", "5".into()),
        ],
        ..Default::default()
    }
}

/// Appends letters `from..to` to partition `p` of `dlq`, in batches of [`BATCH`].
async fn add_letters(c: &mut Clients, dlq: &str, p: u32, from: usize, to: usize) {
    let mut i = from;
    while i < to {
        let end = (i + BATCH).min(to);
        let batch = (i..end).map(|i| dead_letter(p, i)).collect();
        publish_raw(c, dlq, p, batch)
            .await
            .expect("publish letters");
        i = end;
    }
}

/// A broker with `orders` (2 partitions) and `orders.dlq` (2 partitions) holding `counts[p]`
/// letters in partition `p`.
async fn broker_with_letters(options: BrokerOptions, counts: [usize; 2]) -> (TestBroker, Clients) {
    let broker = TestBroker::start_with(options);
    let mut c = connect(&broker).await;
    create_topic(&mut c, ORIGIN, buffered(2)).await;
    create_topic(&mut c, DLQ, buffered(2)).await;
    for (p, &count) in counts.iter().enumerate() {
        add_letters(&mut c, DLQ, p as u32, 0, count).await;
    }
    (broker, c)
}

async fn list(
    c: &mut Clients,
    dlq: &str,
    max: u32,
    token: &str,
) -> Result<pb::ListDeadLettersResponse, tonic::Status> {
    c.admin
        .list_dead_letters(pb::ListDeadLettersRequest {
            dead_letter_topic: dlq.into(),
            max,
            page_token: token.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

async fn replay(
    c: &mut Clients,
    dlq: &str,
    max: u32,
) -> Result<pb::ReplayDeadLettersResponse, tonic::Status> {
    c.admin
        .replay_dead_letters(pb::ReplayDeadLettersRequest {
            dead_letter_topic: dlq.into(),
            max,
        })
        .await
        .map(tonic::Response::into_inner)
}

/// Follows the pages from `token` to the end; returns (partition, offset, value) per letter
/// and the size of each page.
async fn list_all(
    c: &mut Clients,
    dlq: &str,
    max: u32,
    mut token: String,
) -> (Vec<(u32, u64, String)>, Vec<usize>) {
    let mut letters = Vec::new();
    let mut pages = Vec::new();
    loop {
        let page = list(c, dlq, max, &token).await.expect("list a page");
        pages.push(page.dead_letters.len());
        for d in page.dead_letters {
            let value = d.message.expect("message").value;
            letters.push((
                d.partition,
                d.offset,
                String::from_utf8_lossy(&value).into_owned(),
            ));
        }
        assert!(pages.len() <= 100, "pages never end: {pages:?}");
        if page.next_page_token.is_empty() {
            return (letters, pages);
        }
        token = page.next_page_token;
    }
}

/// Asserts that `letters` are exactly offsets `from[p]..to[p]` of each partition, each once and
/// in offset order within its partition.
#[track_caller]
fn assert_each_once_in_order(letters: &[(u32, u64, String)], from: [u64; 2], to: [u64; 2]) {
    let mut per_partition: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    for (p, offset, value) in letters {
        assert_eq!(
            *value,
            letter_value(*p, *offset as usize),
            "letter contents"
        );
        per_partition.entry(*p).or_default().push(*offset);
    }
    for p in 0..2u32 {
        let expected: Vec<u64> = (from[p as usize]..to[p as usize]).collect();
        let got = per_partition.remove(&p).unwrap_or_default();
        assert_eq!(
            got.len(),
            expected.len(),
            "partition {p}: {} letters, expected {}",
            got.len(),
            expected.len()
        );
        assert_eq!(got, expected, "partition {p}: each once, in offset order");
    }
    assert!(
        per_partition.is_empty(),
        "no other partition: {per_partition:?}"
    );
}

/// Every message in `topic` (all partitions): partition → values in offset order.
async fn topic_values(c: &mut Clients, topic: &str, partitions: u32) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for partition in 0..partitions {
        let mut values = Vec::new();
        let mut offset = 0;
        loop {
            let fetched = c
                .messaging
                .fetch(pb::FetchRequest {
                    topic: topic.into(),
                    partition,
                    offset,
                    max_messages: 10_000,
                    max_wait_ms: 0,
                })
                .await
                .expect("fetch")
                .into_inner();
            if fetched.batches.is_empty() {
                break;
            }
            for batch in &fetched.batches {
                let decoded = <pb::MessageBatch as prost::Message>::decode(batch.batch.clone())
                    .expect("batch decodes");
                for m in decoded
                    .messages
                    .into_iter()
                    .skip(batch.skip as usize)
                    .take(batch.count as usize)
                {
                    assert!(
                        m.headers.iter().all(|h| !h.key.starts_with("rapidmq-dlq-")),
                        "replayed without the dead-letter headers"
                    );
                    assert!(
                        m.headers.iter().any(|h| h.key == "app"),
                        "other headers kept"
                    );
                    values.push(String::from_utf8_lossy(&m.value).into_owned());
                }
                offset = batch.base_offset + u64::from(batch.skip) + u64::from(batch.count);
            }
        }
        out.push(values);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_over_two_partitions_return_every_letter_once_in_order_per_partition() {
    let (_broker, mut c) = broker_with_letters(BrokerOptions::default(), [1300, 950]).await;

    let (letters, pages) = list_all(&mut c, DLQ, 1000, String::new()).await;
    assert_eq!(pages, [1000, 1000, 250], "full pages, then the rest");
    assert_each_once_in_order(&letters, [0, 0], [1300, 950]);

    // Smaller pages that end inside batches and across the partition boundary agree.
    let (small, pages) = list_all(&mut c, DLQ, 333, String::new()).await;
    assert_eq!(pages.len(), 7, "{pages:?}");
    assert_eq!(small, letters);

    // The default page size is 100, and nothing more means an empty token.
    let first = list(&mut c, DLQ, 0, "").await.unwrap();
    assert_eq!(first.dead_letters.len(), 100);
    assert!(!first.next_page_token.is_empty());
    let origin = &first.dead_letters[0];
    assert_eq!(
        (
            origin.original_topic.as_str(),
            origin.original_partition,
            origin.original_offset,
            origin.attempts
        ),
        (ORIGIN, 0, 0, 5)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_stops_at_about_two_mebibytes_and_replay_reads_page_after_page() {
    const LETTER: usize = 128 << 10;
    let (_broker, mut c) = broker_with_letters(BrokerOptions::default(), [0, 0]).await;
    for first in (0..40).step_by(5) {
        let batch = (first..first + 5)
            .map(|i| pb::Message {
                key: Some(Bytes::from(format!("{i:03}"))),
                value: Bytes::from(vec![b'x'; LETTER]),
                ..dead_letter(0, i)
            })
            .collect();
        publish_raw(&mut c, DLQ, 0, batch).await.unwrap();
    }

    let mut offsets = Vec::new();
    let mut token = String::new();
    let mut pages = Vec::new();
    loop {
        let page = list(&mut c, DLQ, 1000, &token).await.unwrap();
        pages.push(page.dead_letters.len());
        offsets.extend(page.dead_letters.iter().map(|d| d.offset));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    // 2 MiB hold 16 letters of 128 KiB: the 16th reaches the bound and ends the page.
    assert_eq!(pages, [16, 16, 8]);
    assert_eq!(
        offsets,
        (0..40).collect::<Vec<u64>>(),
        "each once, in order"
    );

    // One replay call reads as many pages as its `max` needs.
    let r = replay(&mut c, DLQ, 0).await.unwrap();
    assert_eq!((r.replayed, r.remaining), (40, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_resumes_past_letters_replayed_since() {
    let (_broker, mut c) = broker_with_letters(BrokerOptions::default(), [1300, 950]).await;
    let first = list(&mut c, DLQ, 1000, "").await.unwrap();
    assert_eq!(first.dead_letters.len(), 1000);

    // Replay moves the cursor to 1300 in partition 0 and 200 in partition 1: past where the
    // token points in both (1000 and 0).
    let replayed = replay(&mut c, DLQ, 1500).await.unwrap();
    assert_eq!((replayed.replayed, replayed.remaining), (1500, 750));

    let (rest, _) = list_all(&mut c, DLQ, 1000, first.next_page_token).await;
    assert_each_once_in_order(&rest, [1300, 200], [1300, 950]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_token_resumes_at_the_log_start_when_retention_dropped_its_place() {
    let options = BrokerOptions {
        env: vec![("RAPIDMQ_RETENTION__CHECK_INTERVAL_MS".into(), "100".into())],
        ..Default::default()
    };
    let broker = TestBroker::start_with(options);
    let mut c = connect(&broker).await;
    create_topic(&mut c, ORIGIN, buffered(2)).await;
    create_topic(
        &mut c,
        DLQ,
        pb::TopicConfig {
            retention_messages: Some(250),
            ..buffered(2)
        },
    )
    .await;
    add_letters(&mut c, DLQ, 0, 0, 140).await;
    let first = list(&mut c, DLQ, 100, "").await.unwrap();
    assert_eq!(first.dead_letters.len(), 100);

    // More letters push the first ones out: whole batches of 70 go, keeping the newest 250.
    add_letters(&mut c, DLQ, 0, 140, 700).await;
    // The newest 250 are 450..700; the batch [420, 490) holds some of them, so it stays.
    let admin = c.admin.clone();
    common::eventually("retention drops the listed letters", || {
        let mut admin = admin.clone();
        async move {
            let info = admin
                .describe_topic(pb::DescribeTopicRequest { name: DLQ.into() })
                .await
                .unwrap()
                .into_inner();
            info.partitions[0].log_start_offset == 420
        }
    })
    .await;
    let (rest, _) = list_all(&mut c, DLQ, 1000, first.next_page_token).await;
    assert_each_once_in_order(&rest, [420, 0], [700, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_pages_and_foreign_or_garbled_tokens_are_refused() {
    let (broker, mut c) = broker_with_letters(BrokerOptions::default(), [150, 0]).await;
    create_topic(&mut c, "other.dlq", buffered(2)).await;
    add_letters(&mut c, "other.dlq", 0, 0, 20).await;
    let foreign = list(&mut c, "other.dlq", 10, "")
        .await
        .unwrap()
        .next_page_token;
    let own = list(&mut c, DLQ, 10, "").await.unwrap().next_page_token;
    assert!(!foreign.is_empty() && !own.is_empty());

    for (max, token) in [
        (1001, ""),
        (u32::MAX, ""),
        (10, "not a token"),
        (10, "AAAA"),
        (10, foreign.as_str()),
        (10, &own[..own.len() - 2]),
    ] {
        let err = list(&mut c, DLQ, max, token).await.unwrap_err();
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "{max} {token:?}: {err:?}"
        );
        assert_eq!(error_code(&err), ErrorCode::InvalidArgument);
        let text = err.message();
        assert!(
            text.contains("max") || text.contains("page_token"),
            "the message names the field: {text}"
        );
    }
    // The largest page is fine, and so is its own token.
    assert_eq!(
        list(&mut c, DLQ, 1000, "")
            .await
            .unwrap()
            .dead_letters
            .len(),
        150
    );
    assert_eq!(
        list(&mut c, DLQ, 10, &own)
            .await
            .unwrap()
            .dead_letters
            .len(),
        10
    );

    for max in [10_001, u32::MAX] {
        let err = replay(&mut c, DLQ, max).await.unwrap_err();
        assert_eq!(error_code(&err), ErrorCode::InvalidArgument, "{err:?}");
    }
    assert_eq!(
        replay(&mut c, DLQ, 10_000).await.unwrap().replayed,
        150,
        "the largest replay is fine"
    );

    // REST refuses the same, with the document's bounds.
    let rest = Rest::new(&broker);
    let list_path = format!("/v1/topics/{DLQ}/dead-letters");
    for query in [
        "max=1001".to_string(),
        "max=0".to_string(),
        "page_token=garbage".to_string(),
        format!("page_token={foreign}"),
        "page_token=not%20base64".to_string(),
    ] {
        rest.get(&format!("{list_path}?{query}"))
            .await
            .problem(400, "INVALID_ARGUMENT");
    }
    rest.get(&format!("{list_path}?max=1000")).await.ok();
    let replay_path = format!("/v1/topics/{DLQ}/dead-letters/replay");
    for query in ["max=10001", "max=0"] {
        rest.send(rest.http.post(rest.url(&format!("{replay_path}?{query}"))))
            .await
            .problem(400, "INVALID_ARGUMENT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_goes_a_bounded_number_per_call_and_returns_each_letter_once() {
    let (_broker, mut c) = broker_with_letters(BrokerOptions::default(), [1300, 1200]).await;

    // The default is 1000 per call; `remaining` counts what is left over both partitions.
    let mut outcomes = Vec::new();
    loop {
        let r = replay(&mut c, DLQ, 0).await.unwrap();
        outcomes.push((r.replayed, r.remaining));
        if r.remaining == 0 {
            break;
        }
        assert!(outcomes.len() < 10, "replay never ends: {outcomes:?}");
    }
    assert_eq!(outcomes, [(1000, 1500), (1000, 500), (500, 0)]);
    let r = replay(&mut c, DLQ, 0).await.unwrap();
    assert_eq!((r.replayed, r.remaining), (0, 0), "nothing left");
    assert!(
        list(&mut c, DLQ, 1000, "")
            .await
            .unwrap()
            .dead_letters
            .is_empty()
    );

    // Each letter is back in the partition it came from exactly once, in dead-letter order.
    let back = topic_values(&mut c, ORIGIN, 2).await;
    for (p, count) in [(0u32, 1300usize), (1, 1200)] {
        let expected: Vec<String> = (0..count).map(|i| letter_value(p, i)).collect();
        assert_eq!(back[p as usize], expected, "partition {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_without_dead_letter_headers_are_passed_over_and_count_toward_max() {
    let (_broker, mut c) = broker_with_letters(BrokerOptions::default(), [0, 0]).await;
    let stray: Vec<pb::Message> = (0..30)
        .map(|i| common::raw(&format!("stray-{i}")))
        .collect();
    publish_raw(&mut c, DLQ, 0, stray).await.unwrap();
    add_letters(&mut c, DLQ, 0, 0, 20).await;

    let r = replay(&mut c, DLQ, 25).await.unwrap();
    assert_eq!((r.replayed, r.remaining), (0, 25), "25 strays passed over");
    let r = replay(&mut c, DLQ, 25).await.unwrap();
    assert_eq!((r.replayed, r.remaining), (20, 0));
    let back = topic_values(&mut c, ORIGIN, 2).await;
    assert_eq!(back[0].len(), 20);
    assert!(back[1].is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_stops_before_a_letter_whose_topic_is_gone_and_keeps_what_it_published() {
    let (_broker, mut c) = broker_with_letters(BrokerOptions::default(), [10, 0]).await;
    let mut lost = dead_letter(0, 10);
    for h in &mut lost.headers {
        if h.key == "rapidmq-dlq-topic" {
            h.value = Bytes::from_static(b"deleted");
        }
    }
    publish_raw(&mut c, DLQ, 0, vec![lost]).await.unwrap();
    add_letters(&mut c, DLQ, 1, 0, 5).await;

    let err = replay(&mut c, DLQ, 0).await.unwrap_err();
    assert_eq!(error_code(&err), ErrorCode::TopicNotFound, "{err:?}");
    // The ten before it went back; the cursor waits at the letter that cannot.
    let back = topic_values(&mut c, ORIGIN, 2).await;
    assert_eq!(back[0].len(), 10);
    let pending = list(&mut c, DLQ, 1000, "").await.unwrap().dead_letters;
    assert_eq!(
        pending
            .iter()
            .map(|d| (d.partition, d.offset))
            .collect::<Vec<_>>()[..2],
        [(0, 10), (1, 0)]
    );
    assert_eq!(pending.len(), 6);
}

/// Runs `rapidmq ARGS` against `broker` off the async runtime.
async fn cli(broker: &TestBroker, args: &[&str]) -> Output {
    let server = broker.grpc_url();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        rapidmq_testkit::cli_command()
            .args(&args)
            .env("RAPIDMQ_SERVER", server)
            .output()
            .expect("run rapidmq")
    })
    .await
    .unwrap()
}

#[track_caller]
fn succeeded(output: &Output) -> (String, String) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    );
    assert!(output.status.success(), "{}\n{stderr}", output.status);
    (stdout, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_follows_pages_and_replays_in_a_loop_with_progress() {
    let (broker, mut c) = broker_with_letters(BrokerOptions::default(), [1300, 1200]).await;

    // One page: the token is printed, and in JSON it is a field.
    let page = cli(
        &broker,
        &["dlq", "list", ORIGIN, "--max", "1000", "-o", "json"],
    )
    .await;
    let page: Value = serde_json::from_str(&succeeded(&page).0).expect("JSON");
    assert_eq!(page["dead_letter_topic"], DLQ);
    assert_eq!(page["dead_letters"].as_array().unwrap().len(), 1000);
    let token = page["next_page_token"].as_str().expect("a next token");
    let next = cli(
        &broker,
        &[
            "dlq",
            "list",
            ORIGIN,
            "--max",
            "1000",
            "--page-token",
            token,
            "-o",
            "json",
        ],
    )
    .await;
    let next: Value = serde_json::from_str(&succeeded(&next).0).expect("JSON");
    assert_eq!(next["dead_letters"][0]["offset"], 1000);
    assert_eq!(next["dead_letters"][0]["partition"], 0);
    let table = cli(&broker, &["dlq", "list", ORIGIN, "--max", "5"]).await;
    let (table, _) = succeeded(&table);
    assert!(table.contains("letter-0-4"), "{table}");
    assert!(
        table.contains("--page-token "),
        "the table says how to go on: {table}"
    );

    // --all follows every page into one document.
    let all = cli(
        &broker,
        &["dlq", "list", ORIGIN, "--all", "--max", "700", "-o", "json"],
    )
    .await;
    let all: Value = serde_json::from_str(&succeeded(&all).0).expect("one JSON document");
    assert_eq!(all["next_page_token"], Value::Null);
    let seen: HashSet<(u64, u64)> = all["dead_letters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["partition"].as_u64().unwrap(),
                d["offset"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(seen.len(), 2500, "every letter once");

    // --max out of range is refused before anything is sent.
    let refused = cli(&broker, &["dlq", "list", ORIGIN, "--max", "1001"]).await;
    assert_eq!(refused.status.code(), Some(2));

    // Replay with a total: two calls, progress in between.
    let some = cli(
        &broker,
        &["dlq", "replay", ORIGIN, "--max", "1200", "-o", "json"],
    )
    .await;
    let (stdout, stderr) = succeeded(&some);
    let some: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(some["replayed"], 1200);
    assert_eq!(some["remaining"], 1300);
    assert!(stderr.contains("replayed 1000, 1500 pending"), "{stderr}");

    // Replay the rest: loops until nothing is pending.
    let rest = cli(&broker, &["dlq", "replay", ORIGIN]).await;
    let (stdout, stderr) = succeeded(&rest);
    assert_eq!(
        stdout.trim(),
        format!("replayed 1300 dead letter(s) from {DLQ}")
    );
    assert!(stderr.contains("replayed 1000, 300 pending"), "{stderr}");

    let back = topic_values(&mut c, ORIGIN, 2).await;
    let mut values: Vec<String> = back.into_iter().flatten().collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 2500, "every letter back once");
    let empty = cli(&broker, &["dlq", "list", ORIGIN]).await;
    assert_eq!(
        succeeded(&empty).0.trim(),
        format!("no pending dead letters in {DLQ}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_pages_with_page_token_and_replay_reports_remaining() {
    let (broker, mut c) = broker_with_letters(BrokerOptions::default(), [1300, 950]).await;
    let rest = Rest::new(&broker);
    let path = format!("/v1/topics/{DLQ}/dead-letters");

    let mut letters = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = rest
            .get(&format!("{path}?max=1000&page_token={token}"))
            .await
            .ok();
        pages += 1;
        for d in page["dead_letters"].as_array().unwrap() {
            let m = &d["message"];
            letters.push((
                m["partition"].as_u64().unwrap() as u32,
                d["offset"].as_u64().unwrap(),
                m["value"].as_str().unwrap().to_string(),
            ));
        }
        token = page["next_page_token"].as_str().unwrap().to_string();
        if token.is_empty() {
            break;
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    assert_each_once_in_order(&letters, [0, 0], [1300, 950]);

    let replay_path = format!("/v1/topics/{DLQ}/dead-letters/replay");
    let first = rest
        .send(rest.http.post(rest.url(&format!("{replay_path}?max=2000"))))
        .await
        .ok();
    assert_eq!(first["replayed"], 2000);
    assert_eq!(first["remaining"], 250);
    let second = rest.send(rest.http.post(rest.url(&replay_path))).await.ok();
    assert_eq!(second["replayed"], 250);
    assert_eq!(second["remaining"], 0);
    let back = topic_values(&mut c, ORIGIN, 2).await;
    assert_eq!(back[0].len() + back[1].len(), 2250);
}

/// Replays of one dead-letter topic running at once take turns: together they publish every
/// letter exactly once, never the same page twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_running_at_once_publish_each_letter_once() {
    let (_broker, mut c) = broker_with_letters(BrokerOptions::default(), [1300, 1200]).await;
    let replays: Vec<_> = (0..4)
        .map(|_| {
            let mut admin = c.admin.clone();
            tokio::spawn(async move {
                admin
                    .replay_dead_letters(pb::ReplayDeadLettersRequest {
                        dead_letter_topic: DLQ.into(),
                        max: 10_000,
                    })
                    .await
                    .unwrap()
                    .into_inner()
            })
        })
        .collect();
    let mut replayed = 0;
    for r in replays {
        replayed += r.await.unwrap().replayed;
    }
    assert_eq!(
        replayed, 2500,
        "the replays together published each letter once"
    );
    let back = topic_values(&mut c, ORIGIN, 2).await;
    for (p, count) in [(0u32, 1300usize), (1, 1200)] {
        let expected: Vec<String> = (0..count).map(|i| letter_value(p, i)).collect();
        assert_eq!(back[p as usize], expected, "partition {p}");
    }
}
