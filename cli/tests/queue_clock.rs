//! Queue ack deadlines against a broker whose wall clock steps (NTP at boot, a VM resumed): the
//! broker runs under libfaketime, which moves its `CLOCK_REALTIME` while its monotonic clock runs
//! on. Needs libfaketime (`apt-get install libfaketime`; `make test` installs it).

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use rapidmq_proto::v1 as pb;

/// libfaketime's preload library, wherever the distribution put it.
fn faketime_library() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("faketime/libfaketime.so.1"))
        .find(|path| path.exists())
        .expect("libfaketime is needed for this test: apt-get install libfaketime")
}

/// A consumer holds a message with a 30 s ack deadline when the broker's wall clock jumps two
/// minutes ahead: the message stays with it (no second consumer gets it) and its ack works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_step_does_not_hand_a_message_in_flight_to_another_consumer() {
    let clock_dir = tempfile::tempdir().unwrap();
    let clock = clock_dir.path().join("faketime");
    std::fs::write(&clock, "+0\n").unwrap();
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![
            (
                "LD_PRELOAD".into(),
                faketime_library().display().to_string(),
            ),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                clock.display().to_string(),
            ),
            // Read the file on every clock call, so the step takes effect at once.
            ("FAKETIME_NO_CACHE".into(), "1".into()),
            ("DONT_FAKE_MONOTONIC".into(), "1".into()),
        ],
        ..Default::default()
    });
    let mut c = connect(&broker).await;
    create_topic(&mut c, "jobs", topic_config(1)).await;
    publish(&mut c, "jobs", 0, &[msg("", "first")])
        .await
        .unwrap();
    let settings = queue_settings(30_000, 5);
    let mut a = QueueConsumer::open(&mut c, "jobs", "w", settings.clone(), 1)
        .await
        .unwrap();
    let held = a.receive(1).await;
    assert_eq!(value_of(&held[0]), "first");
    let mut b = QueueConsumer::open(&mut c, "jobs", "w", settings, 10)
        .await
        .unwrap();

    std::fs::write(&clock, "+120\n").unwrap();
    // A new message wakes the waiting consumer's session after the step.
    publish(&mut c, "jobs", 0, &[msg("", "second")])
        .await
        .unwrap();
    let got = b.receive(1).await;
    assert_eq!(
        (value_of(&got[0]).as_str(), got[0].attempt),
        ("second", 1),
        "the message in flight to the other consumer was handed out again"
    );
    assert!(
        b.next_within(Duration::from_millis(1_500)).await.is_none(),
        "nothing else is deliverable"
    );
    a.ack(vec![receipt(&held[0])]).await;
    match a.next_within(Duration::from_millis(500)).await {
        None => {}
        Some(pb::consume_response::Kind::Error(err)) => {
            panic!("the held message's ack failed: {err:?}")
        }
        Some(other) => panic!("unexpected {other:?}"),
    }
}
