//! Queue delivery under faults, against a real broker: consumers hanging up mid-delivery,
//! dead-lettering while streams come and go, competing consumers under CPU contention, caps on
//! nack delays and deadline extensions, a parked message, and the bytes a partial delivery costs.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use prost::Message as _;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use tonic::transport::{Channel, Endpoint};

/// A client whose HTTP/2 windows are small (64 KiB): what the broker can push to it without
/// the client reading is bounded and known.
async fn connect_small_window(broker: &TestBroker) -> Clients {
    let channel: Channel = Endpoint::from_shared(broker.grpc_url())
        .unwrap()
        .initial_stream_window_size(Some(65_535))
        .initial_connection_window_size(Some(65_535))
        .connect()
        .await
        .expect("connect to broker");
    Clients {
        admin: pb::admin_client::AdminClient::new(channel.clone()),
        messaging: pb::messaging_client::MessagingClient::new(channel)
            .max_decoding_message_size(64 << 20),
    }
}

type Admin = pb::admin_client::AdminClient<Channel>;

async fn describe(mut admin: Admin, topic: &str, subscription: &str) -> pb::SubscriptionInfo {
    admin
        .describe_subscription(pb::DescribeSubscriptionRequest {
            topic: topic.into(),
            name: subscription.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Every pending dead letter of `dlq`, page by page.
async fn all_dead_letters(admin: Admin, dlq: &str) -> Result<Vec<pb::DeadLetter>, tonic::Status> {
    // Pages stop at about 2 MiB, under the default 4 MiB response limit.
    let mut admin = admin;
    let mut letters = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_dead_letters(pb::ListDeadLettersRequest {
                dead_letter_topic: dlq.into(),
                max: 1000,
                page_token,
            })
            .await?
            .into_inner();
        letters.extend(page.dead_letters);
        if page.next_page_token.is_empty() {
            return Ok(letters);
        }
        page_token = page.next_page_token;
    }
}

/// Original offsets of the dead letters in `dlq` (all of them, repeats included).
async fn dead_lettered_offsets(admin: Admin, dlq: &str) -> Vec<u64> {
    match all_dead_letters(admin, dlq).await {
        Ok(letters) => letters.iter().map(|d| d.original_offset).collect(),
        Err(_) => Vec::new(),
    }
}

/// Consumers that stop reading and hang up while the broker still has deliveries for them give
/// back what never reached them: no attempt is counted for those, so with `max_deliveries = 1`
/// they are delivered to the next consumer instead of being dead-lettered. Only what could have
/// reached the quitter's connection (its 64 KiB window and what the transport had taken) may
/// count as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_hanging_up_give_back_the_messages_they_never_received() {
    const ROUNDS: u64 = 3;
    const PER_ROUND: u64 = 1_000;
    const VALUE: usize = 2_048;
    /// At most this many messages per hang-up may have reached the quitter's connection unread:
    /// its 64 KiB window (32 messages), plus the deliveries the transport had taken to write
    /// out, one or two, each at most 256 KiB (the broker's delivery size: 128 messages here).
    const ON_THE_WIRE: usize = 32 + 2 * 128;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "jobs", topic_config(1)).await;
    let settings = queue_settings(60_000, 1);
    let mut read_by_quitters: HashSet<u64> = HashSet::new();
    let mut next_offset = 0u64;
    for round in 0..ROUNDS {
        let mut qc = connect_small_window(&broker).await;
        let mut quitter = QueueConsumer::open(&mut qc, "jobs", "w", settings.clone(), 1_000_000)
            .await
            .unwrap();
        for _ in 0..PER_ROUND / 10 {
            let batch: Vec<Msg> = (0..10)
                .map(|i| {
                    let offset = next_offset + i;
                    msg("", format!("{offset:08}{}", "x".repeat(VALUE - 8)))
                })
                .collect();
            publish(&mut c, "jobs", 0, &batch).await.unwrap();
            next_offset += 10;
        }
        // It reads one response, then stops reading while the broker has claimed far more for
        // it than its connection can hold.
        let first = quitter.receive(1).await;
        read_by_quitters.extend(first.iter().map(|m| receipt(m).offset));
        eventually(
            "the broker claims more than the quitter's window holds",
            || {
                let admin = c.admin.clone();
                async move {
                    describe(admin, "jobs", "w")
                        .await
                        .queue_stats
                        .is_some_and(|s| s.in_flight >= 300)
                }
            },
        )
        .await;
        drop(quitter);
        drop(qc);
        println!("round {round}: the quitter read {} messages", first.len());
    }
    let total = ROUNDS * PER_ROUND;

    // A well-behaved consumer takes everything that is left.
    let mut worker = QueueConsumer::open(&mut c, "jobs", "w", settings, 200)
        .await
        .unwrap();
    let mut acked: HashMap<u64, u32> = HashMap::new();
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    loop {
        match worker.next_within(Duration::from_millis(500)).await {
            Some(pb::consume_response::Kind::QueueBatch(batch)) => {
                for m in &batch.messages {
                    let offset = receipt(m).offset;
                    assert_eq!(&value_of(m)[..8], format!("{offset:08}"));
                    assert_eq!(m.attempt, 1, "offset {offset} was never delivered before");
                    assert!(
                        acked.insert(offset, m.attempt).is_none(),
                        "offset {offset} delivered twice"
                    );
                }
                worker
                    .ack(batch.messages.iter().map(receipt).collect())
                    .await;
                worker.credit(batch.messages.len() as u32).await;
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => {
                let dead = dead_lettered_offsets(c.admin.clone(), "jobs.dlq").await;
                if acked.len() + dead.len() >= total as usize {
                    break;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "stalled: {} acked, {} dead-lettered of {total}",
                    acked.len(),
                    dead.len()
                );
            }
        }
    }
    let dead = dead_lettered_offsets(c.admin.clone(), "jobs.dlq").await;
    let dead_set: HashSet<u64> = dead.iter().copied().collect();
    assert_eq!(dead.len(), dead_set.len(), "no message dead-lettered twice");
    assert!(
        dead_set.iter().all(|o| !acked.contains_key(o)),
        "a message both acked and dead-lettered"
    );
    assert_eq!(
        acked.len() + dead.len(),
        total as usize,
        "every message acked or dead-lettered"
    );
    assert!(
        read_by_quitters.iter().all(|o| dead_set.contains(o)),
        "what a quitter read used its one delivery"
    );
    let never_read = dead_set.difference(&read_by_quitters).count();
    println!("{never_read} messages reached a quitter's connection unread");
    assert!(
        never_read <= ROUNDS as usize * ON_THE_WIRE,
        "{never_read} messages no consumer read were dead-lettered (at most {} could have reached the quitters)",
        ROUNDS as usize * ON_THE_WIRE
    );
    eventually("nothing is left in flight or unsettled", || {
        let admin = c.admin.clone();
        async move {
            let info = describe(admin, "jobs", "w").await;
            info.total_lag == 0 && info.queue_stats.is_some_and(|s| s.in_flight == 0)
        }
    })
    .await;
}

/// Messages that use up their only delivery are dead-lettered while consumers ack, come and
/// go: every other message is acked exactly once on its first attempt, every spent one lands in
/// the dead-letter topic exactly once, and nothing is left stuck (the partitions drain).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_lettering_while_consumers_come_and_go_burns_and_strands_nothing() {
    const PARTITIONS: u32 = 4;
    const PER_PARTITION: u64 = 250;
    const CONSUMERS: usize = 3;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "mail", topic_config(PARTITIONS)).await;
    // Every 4th message is "poison": consumers ignore it, its 2 s deadline passes and, with
    // max_deliveries 1, the next claim dead-letters it, while acks of the others keep flowing.
    let poison: HashSet<(u32, u64)> = (0..PARTITIONS)
        .flat_map(|p| {
            (0..PER_PARTITION)
                .filter(|o| o % 4 == 3)
                .map(move |o| (p, o))
        })
        .collect();
    let good = (u64::from(PARTITIONS) * PER_PARTITION) as usize - poison.len();
    let settings = queue_settings(2_000, 1);
    // Create the subscription before the consumers race to.
    c.admin
        .create_subscription(pb::CreateSubscriptionRequest {
            topic: "mail".into(),
            name: "senders".into(),
            mode: pb::SubscriptionMode::Queue as i32,
            start: Some(start(pb::StartKind::Earliest)),
            queue: Some(settings.clone()),
        })
        .await
        .unwrap();

    // Messages arrive over about 4 s, so dead-lettering overlaps consumers acking and leaving.
    let publisher = {
        let mut c = connect(&broker).await;
        tokio::spawn(async move {
            let mut pace = tokio::time::interval(Duration::from_millis(40));
            for chunk in 0..PER_PARTITION / 10 {
                for p in 0..PARTITIONS {
                    pace.tick().await;
                    let batch: Vec<Msg> = (0..10)
                        .map(|i| {
                            let offset = chunk * 10 + i;
                            let kind = if offset % 4 == 3 { "poison" } else { "ok" };
                            msg("", format!("{kind}-{p}-{offset}"))
                        })
                        .collect();
                    publish(&mut c, "mail", p, &batch).await.unwrap();
                }
            }
        })
    };
    let acked = Arc::new(Acked::default());
    let finished = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for id in 0..CONSUMERS {
        let broker_url = broker.grpc_url();
        let acked = acked.clone();
        let finished = finished.clone();
        let settings = settings.clone();
        tasks.push(tokio::spawn(async move {
            let channel = Channel::from_shared(broker_url)
                .unwrap()
                .connect()
                .await
                .unwrap();
            let mut c = Clients {
                admin: pb::admin_client::AdminClient::new(channel.clone()),
                messaging: pb::messaging_client::MessagingClient::new(channel),
            };
            let mut responses = 0usize;
            while !finished.load(Ordering::Relaxed) {
                let mut q = QueueConsumer::open(&mut c, "mail", "senders", settings.clone(), 4)
                    .await
                    .unwrap();
                let (mut granted, mut got) = (4usize, 0usize);
                while !finished.load(Ordering::Relaxed) {
                    match q.next_within(Duration::from_millis(200)).await {
                        Some(pb::consume_response::Kind::QueueBatch(batch)) => {
                            responses += 1;
                            got += batch.messages.len();
                            let mut receipts = Vec::new();
                            for m in &batch.messages {
                                let value = value_of(m);
                                if value.starts_with("poison") {
                                    continue;
                                }
                                let r = receipt(m);
                                acked.record(id, r.partition, r.offset, m.attempt);
                                receipts.push(r);
                            }
                            q.ack(receipts).await;
                            // Hang up now and then, with every granted message read (so
                            // nothing is on the wire to us) and our acks applied: the broker
                            // answers requests in order, so the error for a receipt that names
                            // nothing comes after the acks took effect.
                            if got == granted && (responses + id).is_multiple_of(3) {
                                q.ack(vec![pb::Receipt {
                                    partition: 0,
                                    offset: u64::MAX,
                                    delivery_id: 0,
                                }])
                                .await;
                                match q.next_within(PATIENCE).await {
                                    Some(pb::consume_response::Kind::Error(err))
                                        if err.name == "RECEIPT_UNKNOWN" => {}
                                    other => {
                                        panic!("consumer {id}: expected the barrier, got {other:?}")
                                    }
                                }
                                break;
                            }
                            q.credit(batch.messages.len() as u32).await;
                            granted += batch.messages.len();
                        }
                        Some(pb::consume_response::Kind::Error(err)) => {
                            panic!("consumer {id}: stream error {err:?}")
                        }
                        Some(other) => panic!("consumer {id}: unexpected {other:?}"),
                        None => {}
                    }
                }
            }
        }));
    }

    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    loop {
        let dead = dead_lettered_offsets(c.admin.clone(), "mail.dlq")
            .await
            .len();
        let done = acked.distinct();
        if done >= good && dead >= poison.len() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stalled: {done} of {good} acked, {dead} of {} dead-lettered",
            poison.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    finished.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    publisher.await.unwrap();

    let records = acked.all();
    let mut seen: HashMap<(u32, u64), usize> = HashMap::new();
    for &(_, p, o, attempt) in &records {
        assert_eq!(
            attempt, 1,
            "{p}/{o} was delivered before (an attempt was burned)"
        );
        *seen.entry((p, o)).or_default() += 1;
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "a message was delivered twice"
    );
    assert!(
        seen.keys().all(|k| !poison.contains(k)),
        "poison is never acked"
    );
    let letters = all_dead_letters(c.admin.clone(), "mail.dlq").await.unwrap();
    let dead: Vec<(u32, u64)> = letters
        .iter()
        .map(|d| (d.original_partition, d.original_offset))
        .collect();
    let dead_set: HashSet<(u32, u64)> = dead.iter().copied().collect();
    assert_eq!(dead.len(), dead_set.len(), "no message dead-lettered twice");
    assert_eq!(dead_set, poison, "exactly the poison was dead-lettered");
    eventually("every partition drains", || {
        let admin = c.admin.clone();
        async move {
            let info = describe(admin, "mail", "senders").await;
            info.total_lag == 0 && info.queue_stats.is_some_and(|s| s.in_flight == 0)
        }
    })
    .await;
}

/// Acks recorded by consumer tasks: `(consumer, partition, offset, attempt)`.
#[derive(Default)]
struct Acked {
    records: Mutex<Vec<(usize, u32, u64, u32)>>,
    distinct: Mutex<HashSet<(u32, u64)>>,
}

impl Acked {
    fn record(&self, consumer: usize, partition: u32, offset: u64, attempt: u32) {
        self.records
            .lock()
            .unwrap()
            .push((consumer, partition, offset, attempt));
        self.distinct.lock().unwrap().insert((partition, offset));
    }

    fn distinct(&self) -> usize {
        self.distinct.lock().unwrap().len()
    }

    fn all(&self) -> Vec<(usize, u32, u64, u32)> {
        self.records.lock().unwrap().clone()
    }
}

/// Many competing consumers with few credits each, while busy threads in this process compete
/// for the CPU: no message goes to two consumers (the deadline is far away, nobody leaves), and
/// every message is acked.
///
/// Nobody leaves until the broker has taken every ack: an ack is only queued on the client's
/// stream, so a consumer that hung up right after its last one could leave with it unsent, and
/// the broker then rightly gives that consumer's messages to another one (attempt 2, at least
/// once). Once everything was received, the consumers stop reading but stay connected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_consumers_under_cpu_contention_never_get_the_same_message() {
    const TOTAL: usize = 20_000;
    const CONSUMERS: usize = 8;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "tasks", topic_config(2)).await;
    let settings = queue_settings(120_000, 5);
    let mut consumers = Vec::new();
    for i in 0..CONSUMERS {
        // Credits 1 to 8: claims of every size race each other.
        consumers.push(
            QueueConsumer::open(&mut c, "tasks", "workers", settings.clone(), 1 + i as u32)
                .await
                .unwrap(),
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let spinners: Vec<_> = (0..1)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            })
        })
        .collect();
    let publisher = {
        let mut c = connect(&broker).await;
        tokio::spawn(async move {
            for chunk in 0..TOTAL / 500 {
                let batch: Vec<Msg> = (0..500)
                    .map(|i| msg("", format!("task-{}", chunk * 500 + i)))
                    .collect();
                publish(&mut c, "tasks", (chunk % 2) as u32, &batch)
                    .await
                    .unwrap();
            }
        })
    };
    let (done_tx, _) = tokio::sync::watch::channel(0usize);
    let done_tx = Arc::new(done_tx);
    let mut tasks = Vec::new();
    for (i, mut consumer) in consumers.into_iter().enumerate() {
        let done = done_tx.clone();
        tasks.push(tokio::spawn(async move {
            // (consumer, partition, offset, delivery id, value, attempt)
            let mut mine: Vec<(usize, u32, u64, u64, String, u32)> = Vec::new();
            let mut finished = done.subscribe();
            loop {
                let next = tokio::select! {
                    // Not a delivery already waiting: stop reading once everything arrived.
                    biased;
                    _ = finished.wait_for(|n| *n >= TOTAL) => break,
                    next = consumer.next_within(PATIENCE) => next,
                };
                match next {
                    Some(pb::consume_response::Kind::QueueBatch(batch)) => {
                        let receipts: Vec<pb::Receipt> =
                            batch.messages.iter().map(receipt).collect();
                        for m in &batch.messages {
                            let r = receipt(m);
                            let value = value_of(m);
                            mine.push((i, r.partition, r.offset, r.delivery_id, value, m.attempt));
                        }
                        consumer.ack(receipts.clone()).await;
                        consumer.credit(receipts.len() as u32).await;
                        done.send_modify(|n| *n += receipts.len());
                    }
                    Some(pb::consume_response::Kind::Error(err)) => panic!("stream error: {err:?}"),
                    other => panic!("unexpected {other:?} with {} acked", *done.borrow()),
                }
            }
            // Still connected: what it holds stays its own until the broker has its acks.
            (mine, consumer)
        }));
    }
    /// One delivery as seen: (consumer, partition, offset, delivery id, attempt).
    type Seen = (usize, u32, u64, u64, u32);
    let mut per_message: HashMap<String, Vec<Seen>> = HashMap::new();
    let mut redelivered = Vec::new();
    let mut connected = Vec::new();
    for task in tasks {
        let (mine, consumer) = task.await.unwrap();
        connected.push(consumer);
        for (consumer, p, o, delivery_id, value, attempt) in mine {
            if attempt != 1 {
                redelivered.push((p, o, attempt));
            }
            per_message
                .entry(value)
                .or_default()
                .push((consumer, p, o, delivery_id, attempt));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for s in spinners {
        s.join().unwrap();
    }
    publisher.await.unwrap();
    // Each with every delivery of it.
    let twice: Vec<_> = per_message.iter().filter(|(_, d)| d.len() > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert!(redelivered.is_empty(), "redelivered: {redelivered:?}");
    assert_eq!(per_message.len(), TOTAL, "every message was delivered");
    // Every ack reached the broker, and nothing was handed out again after the end: a message
    // delivered again would be in flight, unacked.
    eventually("every ack is taken and nothing is in flight", || {
        let admin = c.admin.clone();
        async move {
            let info = describe(admin, "tasks", "workers").await;
            info.total_lag == 0 && info.queue_stats.is_some_and(|s| s.in_flight == 0)
        }
    })
    .await;
    drop(connected);
}

/// The broker caps nack delays and deadline extensions (24 h by default): above it the request
/// is refused with INVALID_ARGUMENT and settles nothing; at the cap it is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_delay_and_deadline_extension_above_the_cap_are_refused() {
    const DAY_MS: u64 = 86_400_000;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "q", topic_config(1)).await;
    publish(&mut c, "q", 0, &[msg("", "a"), msg("", "b")])
        .await
        .unwrap();
    let mut q = QueueConsumer::open(&mut c, "q", "w", queue_settings(30_000, 5), 2)
        .await
        .unwrap();
    let got = q.receive(2).await;
    let expect_invalid = |what: &str, next: Option<pb::consume_response::Kind>| match next {
        Some(pb::consume_response::Kind::Error(err)) => {
            assert_eq!(
                err.code,
                ErrorCode::InvalidArgument.code(),
                "{what}: {err:?}"
            );
            assert!(err.message.contains("limit"), "{what}: {}", err.message);
        }
        other => panic!("{what}: expected INVALID_ARGUMENT, got {other:?}"),
    };

    q.nack(vec![receipt(&got[0])], DAY_MS + 1).await;
    expect_invalid("nack", q.next_within(Duration::from_secs(5)).await);
    q.extend(vec![receipt(&got[1])], DAY_MS + 1).await;
    expect_invalid("extend", q.next_within(Duration::from_secs(5)).await);

    // Both receipts still name their deliveries: the refused requests settled nothing.
    q.extend(vec![receipt(&got[1])], DAY_MS).await;
    q.ack(vec![receipt(&got[0]), receipt(&got[1])]).await;
    assert!(
        q.next_within(Duration::from_millis(500)).await.is_none(),
        "no error for requests within the cap"
    );
    let info = describe(c.admin.clone(), "q", "w").await;
    assert_eq!(info.total_lag, 0, "both acked");
}

/// A message nacked for an hour does not stop its partition: the thousands of messages behind
/// it (more than the broker keeps loaded per partition) are all delivered meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_parked_by_a_long_nack_delay_does_not_stop_its_partition() {
    const TOTAL: u64 = 12_000;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "jobs", topic_config(1)).await;
    // Small batches: the broker loads a partition a few batches at a time.
    for chunk in 0..TOTAL / 100 {
        let batch: Vec<Msg> = (0..100)
            .map(|i| msg("", format!("job-{}", chunk * 100 + i)))
            .collect();
        publish(&mut c, "jobs", 0, &batch).await.unwrap();
    }
    let mut q = QueueConsumer::open(&mut c, "jobs", "w", queue_settings(30_000, 5), 1)
        .await
        .unwrap();
    let first = q.receive(1).await;
    assert_eq!(receipt(&first[0]).offset, 0);
    q.nack(vec![receipt(&first[0])], 3_600_000).await;
    q.credit(500).await;
    let mut seen: HashSet<u64> = HashSet::new();
    while (seen.len() as u64) < TOTAL - 1 {
        match q.next_within(Duration::from_secs(10)).await {
            Some(pb::consume_response::Kind::QueueBatch(batch)) => {
                for m in &batch.messages {
                    let offset = receipt(m).offset;
                    assert_ne!(offset, 0, "the parked message waits for its delay");
                    assert!(seen.insert(offset), "offset {offset} twice");
                }
                q.ack(batch.messages.iter().map(receipt).collect()).await;
                q.credit(batch.messages.len() as u32).await;
            }
            Some(other) => panic!("unexpected {other:?}"),
            None => panic!(
                "the partition stopped after {} of {} messages behind the parked one",
                seen.len(),
                TOTAL - 1
            ),
        }
    }
    // The last acks are on their way.
    eventually(
        "everything delivered is acked; the parked message waits",
        || {
            let admin = c.admin.clone();
            async move {
                describe(admin, "jobs", "w")
                    .await
                    .queue_stats
                    .is_some_and(|s| s.in_flight == 0)
            }
        },
    )
    .await;
}

/// Reading a 300-message batch one message at a time costs about the batch's size on the wire,
/// not 300 times it: each delivery carries only its messages. Queue deliveries too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_a_batch_one_message_at_a_time_sends_the_batch_about_once() {
    const N: usize = 300;
    let broker = TestBroker::start();
    let mut c = connect(&broker).await;
    create_topic(&mut c, "big", topic_config(1)).await;
    let batch: Vec<Msg> = (0..N)
        .map(|i| msg(format!("k{i}"), format!("{i:05}-{}", "v".repeat(100))))
        .collect();
    let batch_bytes = encode(&batch).len();
    publish(&mut c, "big", 0, &batch).await.unwrap();

    let mut stream = Consumer::open(
        &mut c,
        "big",
        "one-by-one",
        start(pb::StartKind::Earliest),
        1,
    )
    .await
    .unwrap();
    let mut wire = 0usize;
    let mut offsets = Vec::new();
    while offsets.len() < N {
        match stream.next_event().await {
            Some(pb::consume_response::Kind::Batch(delivery)) => {
                assert_eq!(delivery.count, 1, "one credit, one message");
                wire += delivery.encoded_len();
                for r in decode(&delivery) {
                    assert_eq!(
                        String::from_utf8(r.msg.value.to_vec()).unwrap()[..5],
                        format!("{:05}", r.offset)
                    );
                    offsets.push(r.offset);
                }
                stream.credit(1).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(offsets, (0..N as u64).collect::<Vec<_>>());
    assert!(
        wire < 3 * batch_bytes,
        "stream: {wire} bytes on the wire for a {batch_bytes}-byte batch"
    );

    let mut q = QueueConsumer::open(&mut c, "big", "queue", queue_settings(30_000, 5), 1)
        .await
        .unwrap();
    let mut wire = 0usize;
    for _ in 0..N {
        match q.next_within(PATIENCE).await {
            Some(pb::consume_response::Kind::QueueBatch(b)) => {
                wire += b.encoded_len();
                q.ack(b.messages.iter().map(receipt).collect()).await;
                q.credit(1).await;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        wire < 3 * batch_bytes,
        "queue: {wire} bytes on the wire for a {batch_bytes}-byte batch"
    );
}
