//! The checker fed small histories, good and bad: each invariant shown to fire.

use super::*;

const RULES: Rules = Rules {
    queue_ack_window: Duration::from_millis(500),
    queue_ack_deadline: Duration::from_secs(300),
    leader_settle: Duration::from_secs(1),
};

fn at(ms: u64, event: Event) -> Record {
    Record {
        at: Duration::from_millis(ms),
        event,
    }
}

fn sent(id: &str, key: Option<&str>) -> Event {
    Event::PublishSent {
        producer: 0,
        id: id.into(),
        key: key.map(Into::into),
        deliver_at_ms: None,
    }
}

fn acked(id: &str, partition: u32, offset: u64) -> Event {
    Event::PublishAcked {
        id: id.into(),
        partition,
        offset: Some(offset),
    }
}

fn entry(id: &str, partition: u32, offset: u64) -> LogEntry {
    LogEntry {
        partition,
        offset,
        id: id.into(),
        append_time_ms: 1_000,
    }
}

/// A full read of the single broker (node 0) with no commit points: all of it is committed.
fn read(began_ms: u64, entries: &[(&str, u32, u64)]) -> Event {
    node_read(0, began_ms, &[], entries)
}

/// A full read of `node` whose commit points are `ends` (partition, end).
fn node_read(node: u32, began_ms: u64, ends: &[(u32, u64)], entries: &[(&str, u32, u64)]) -> Event {
    Event::LogRead {
        node,
        began: Duration::from_millis(began_ms),
        ends: ends.iter().copied().collect(),
        entries: entries.iter().map(|&(id, p, o)| entry(id, p, o)).collect(),
    }
}

fn delivered(consumer: ConsumerKind, run: u32, id: &str, p: u32, o: u64) -> Event {
    Event::Delivered {
        consumer,
        run,
        entry: entry(id, p, o),
        wall_ms: 1_000,
    }
}

fn queue_ack(run: u32, id: &str, p: u32, o: u64) -> Event {
    Event::QueueAckSent {
        run,
        id: id.into(),
        partition: p,
        offset: o,
    }
}

fn invariants(records: &[Record], completeness: Completeness) -> Vec<Invariant> {
    check(records, &RULES, completeness)
        .into_iter()
        .map(|v| v.invariant)
        .collect()
}

/// A run where everything goes right, used as the base the bad histories break.
fn good_history() -> Vec<Record> {
    vec![
        at(0, Event::Started { run: 0 }),
        at(1, sent("a", Some("k"))),
        at(2, sent("b", Some("k"))),
        at(5, acked("a", 0, 0)),
        at(6, acked("b", 0, 1)),
        at(10, delivered(ConsumerKind::Stream, 0, "a", 0, 0)),
        at(11, delivered(ConsumerKind::Queue(0), 0, "a", 0, 0)),
        at(12, queue_ack(0, "a", 0, 0)),
        at(
            20,
            Event::CommitObserved {
                partition: 0,
                offset: 1,
            },
        ),
        at(2_000, Event::Crash { run: 0 }),
        at(2_500, Event::Started { run: 1 }),
        at(2_600, read(2_600, &[("a", 0, 0), ("b", 0, 1)])),
        at(2_700, delivered(ConsumerKind::Stream, 1, "b", 0, 1)),
        at(2_800, delivered(ConsumerKind::Queue(1), 1, "b", 0, 1)),
        at(
            2_900,
            Event::CommitObserved {
                partition: 0,
                offset: 2,
            },
        ),
    ]
}

#[test]
fn a_good_history_has_no_violation() {
    assert_eq!(invariants(&good_history(), Completeness::Final), vec![]);
}

#[test]
fn an_acked_message_missing_after_a_restart_is_reported() {
    let mut history = good_history();
    history[11] = at(2_600, read(2_600, &[("a", 0, 0)]));
    let found = invariants(&history, Completeness::Partial);
    assert!(found.contains(&Invariant::AckedMessageLost), "{found:?}");
}

#[test]
fn a_message_acked_after_a_read_began_need_not_be_in_it() {
    let mut history = good_history();
    history.push(at(3_000, sent("c", Some("k"))));
    history.push(at(3_050, acked("c", 0, 2)));
    history.push(at(3_100, read(3_000, &[("a", 0, 0), ("b", 0, 1)])));
    assert_eq!(invariants(&history, Completeness::Partial), vec![]);
}

#[test]
fn a_message_read_once_and_gone_later_is_reported() {
    let mut history = good_history();
    history.push(at(3_000, sent("c", None)));
    history.push(at(
        3_100,
        read(3_100, &[("a", 0, 0), ("b", 0, 1), ("c", 0, 2)]),
    ));
    history.push(at(3_200, read(3_200, &[("a", 0, 0), ("b", 0, 1)])));
    let found = invariants(&history, Completeness::Partial);
    assert_eq!(found, vec![Invariant::AckedMessageLost]);
}

#[test]
fn an_acked_message_missing_from_the_final_read_is_reported_even_when_scheduled() {
    let mut history = good_history();
    history.push(at(
        3_000,
        Event::PublishSent {
            producer: 0,
            id: "later".into(),
            key: None,
            deliver_at_ms: Some(5_000),
        },
    ));
    history.push(at(
        3_001,
        Event::PublishAcked {
            id: "later".into(),
            partition: 0,
            offset: None,
        },
    ));
    history.push(at(9_000, read(9_000, &[("a", 0, 0), ("b", 0, 1)])));
    let found = invariants(&history, Completeness::Final);
    assert_eq!(found, vec![Invariant::AckedMessageLost]);
}

#[test]
fn two_messages_at_one_offset_are_reported() {
    let mut history = good_history();
    history[4] = at(6, acked("b", 0, 0));
    let found = invariants(&history, Completeness::Partial);
    assert!(found.contains(&Invariant::DuplicateOffset), "{found:?}");
}

#[test]
fn one_message_stored_twice_is_reported() {
    let mut history = good_history();
    history[11] = at(2_600, read(2_600, &[("a", 0, 0), ("b", 0, 1), ("a", 0, 2)]));
    let found = invariants(&history, Completeness::Partial);
    assert_eq!(found, vec![Invariant::DuplicateOffset]);
}

#[test]
fn messages_of_one_key_stored_out_of_send_order_are_reported() {
    let mut history = good_history();
    history[3] = at(5, acked("a", 0, 1));
    history[4] = at(6, acked("b", 0, 0));
    history.truncate(5);
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::KeyOrder]
    );
}

#[test]
fn a_stream_that_skips_an_offset_is_reported() {
    let mut history = good_history();
    history.truncate(9);
    history.push(at(30, sent("c", None)));
    history.push(at(31, acked("c", 0, 2)));
    history.push(at(32, delivered(ConsumerKind::Stream, 0, "c", 0, 2)));
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::StreamGap]
    );
}

#[test]
fn a_stream_that_resumes_past_what_it_delivered_is_reported() {
    let mut history = good_history();
    history.push(at(3_000, sent("c", None)));
    history.push(at(3_001, acked("c", 0, 2)));
    history.push(at(3_002, Event::Crash { run: 1 }));
    history.push(at(3_003, Event::Started { run: 2 }));
    history.push(at(3_004, delivered(ConsumerKind::Stream, 2, "c", 0, 2)));
    assert_eq!(invariants(&history, Completeness::Partial), vec![]);
    history.pop();
    history.push(at(3_000, sent("d", None)));
    history.push(at(3_001, acked("d", 0, 3)));
    history.push(at(3_004, delivered(ConsumerKind::Stream, 2, "d", 0, 3)));
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::StreamGap]
    );
}

#[test]
fn a_committed_offset_that_goes_back_is_reported() {
    let mut history = good_history();
    history.push(at(
        3_000,
        Event::CommitObserved {
            partition: 0,
            offset: 1,
        },
    ));
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::CommitWentBack]
    );
}

#[test]
fn a_queue_message_acked_well_before_the_crash_and_redelivered_is_reported() {
    let mut history = good_history();
    history.push(at(3_000, delivered(ConsumerKind::Queue(0), 1, "a", 0, 0)));
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::AckedQueueMessageRedelivered]
    );
}

#[test]
fn a_queue_message_acked_just_before_the_crash_may_come_back() {
    let mut history = good_history();
    // Acked 100 ms before the crash: inside the documented window.
    history.insert(9, at(1_900, queue_ack(0, "b", 0, 1)));
    history.insert(
        9,
        at(1_890, delivered(ConsumerKind::Queue(0), 0, "b", 0, 1)),
    );
    assert_eq!(invariants(&history, Completeness::Final), vec![]);
    // The same redelivery with the ack 600 ms before the crash is a violation.
    history[10] = at(1_400, queue_ack(0, "b", 0, 1));
    history[9] = at(1_390, delivered(ConsumerKind::Queue(0), 0, "b", 0, 1));
    assert_eq!(
        invariants(&history, Completeness::Final),
        vec![Invariant::AckedQueueMessageRedelivered]
    );
}

#[test]
fn a_queue_message_redelivered_in_the_same_run_after_its_ack_is_reported() {
    let mut history = good_history();
    history.insert(8, at(13, delivered(ConsumerKind::Queue(1), 0, "a", 0, 0)));
    let found = invariants(&history, Completeness::Partial);
    assert!(
        found.contains(&Invariant::AckedQueueMessageRedelivered),
        "{found:?}"
    );
    assert!(found.contains(&Invariant::QueueDeliveredTwice), "{found:?}");
}

#[test]
fn a_queue_message_given_to_two_consumers_in_one_run_is_reported() {
    let mut history = good_history();
    history.insert(
        11,
        at(2_850, delivered(ConsumerKind::Queue(0), 1, "b", 0, 1)),
    );
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::QueueDeliveredTwice]
    );
}

#[test]
fn a_delayed_message_appended_or_delivered_early_is_reported() {
    let delayed = |due: i64| Event::PublishSent {
        producer: 0,
        id: "d".into(),
        key: None,
        deliver_at_ms: Some(due),
    };
    let delivery = |append: i64, wall: i64| Event::Delivered {
        consumer: ConsumerKind::Stream,
        run: 0,
        entry: LogEntry {
            partition: 0,
            offset: 0,
            id: "d".into(),
            append_time_ms: append,
        },
        wall_ms: wall,
    };
    let on_time = vec![at(0, delayed(5_000)), at(10, delivery(5_000, 5_001))];
    assert_eq!(invariants(&on_time, Completeness::Partial), vec![]);
    let appended_early = vec![at(0, delayed(5_000)), at(10, delivery(4_990, 5_001))];
    assert_eq!(
        invariants(&appended_early, Completeness::Partial),
        vec![Invariant::DelayedDeliveredEarly]
    );
    let seen_early = vec![at(0, delayed(5_000)), at(10, delivery(5_000, 4_999))];
    assert_eq!(
        invariants(&seen_early, Completeness::Partial),
        vec![Invariant::DelayedDeliveredEarly]
    );
}

#[test]
fn a_message_nobody_sent_is_reported() {
    let mut history = good_history();
    history.push(at(3_000, delivered(ConsumerKind::Stream, 1, "ghost", 0, 2)));
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::UnknownMessage]
    );
}

#[test]
fn a_stored_message_never_consumed_fails_the_final_check_only() {
    let mut history = good_history();
    history.truncate(12);
    assert_eq!(invariants(&history, Completeness::Partial), vec![]);
    assert_eq!(
        invariants(&history, Completeness::Final),
        vec![Invariant::NotDelivered, Invariant::NotDelivered]
    );
}

#[test]
fn feeding_the_history_in_pieces_finds_what_one_replay_finds() {
    let mut history = good_history();
    history.push(at(3_000, delivered(ConsumerKind::Queue(0), 1, "a", 0, 0)));
    history.push(at(
        3_100,
        Event::CommitObserved {
            partition: 0,
            offset: 0,
        },
    ));
    let whole = check(&history, &RULES, Completeness::Final);
    assert_eq!(whole.len(), 2, "{whole:?}");
    for split in 0..history.len() {
        let mut checker = Checker::new(RULES);
        checker.feed(&history[..split]);
        checker.feed(&history[split..]);
        assert_eq!(
            checker.violations(Completeness::Final),
            whole,
            "split at {split}"
        );
    }
    let mut checker = Checker::new(RULES);
    checker.feed(&history);
    let counts = checker.counts();
    assert_eq!((counts.sent, counts.acked, counts.stored), (2, 2, 2));
    assert_eq!((counts.queue_deliveries, counts.queue_redeliveries), (3, 1));
    assert_eq!(counts.crashes, 1);
}

#[test]
fn the_history_stamps_events_in_order() {
    let history = History::new();
    history.record(Event::Started { run: 0 });
    history.record_all([Event::Crash { run: 0 }, Event::Started { run: 1 }]);
    let records = history.drain();
    assert_eq!(records.len(), 3);
    assert!(records.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(history.drain().is_empty());
}

#[test]
fn replicas_that_agree_below_their_commit_points_pass() {
    let mut history = good_history();
    history.push(at(3_000, sent("c", None)));
    // Node 1 lags: its commit point is 1, and its tail above it holds something else.
    history.push(at(
        3_100,
        node_read(1, 3_100, &[(0, 1)], &[("a", 0, 0), ("c", 0, 1)]),
    ));
    history.push(at(3_200, acked("c", 0, 2)));
    history.push(at(
        3_300,
        node_read(
            2,
            3_300,
            &[(0, 3)],
            &[("a", 0, 0), ("b", 0, 1), ("c", 0, 2)],
        ),
    ));
    assert_eq!(invariants(&history, Completeness::Partial), vec![]);
}

#[test]
fn two_nodes_holding_different_messages_below_both_commit_points_are_reported() {
    let mut history = good_history();
    history.push(at(3_000, sent("c", None)));
    history.push(at(
        3_100,
        node_read(1, 3_100, &[(0, 2)], &[("a", 0, 0), ("c", 0, 1)]),
    ));
    let found = check(&history, &RULES, Completeness::Partial);
    let invariants: Vec<Invariant> = found.iter().map(|v| v.invariant).collect();
    assert_eq!(invariants, vec![Invariant::ReplicaDiverged], "{found:?}");
    assert!(found[0].detail.contains("node 1") && found[0].detail.contains("node 0"));
}

#[test]
fn a_delivered_message_replaced_or_gone_in_a_later_read_is_an_uncommitted_read() {
    let mut history = good_history();
    history.push(at(3_000, sent("x", None)));
    history.push(at(3_001, sent("y", None)));
    history.push(at(3_010, delivered(ConsumerKind::Stream, 1, "x", 0, 2)));
    let mut replaced = history.clone();
    replaced.push(at(3_100, acked("y", 0, 2)));
    replaced.push(at(
        3_200,
        read(3_200, &[("a", 0, 0), ("b", 0, 1), ("y", 0, 2)]),
    ));
    assert_eq!(
        invariants(&replaced, Completeness::Partial),
        vec![Invariant::UncommittedRead]
    );
    let mut gone = history.clone();
    gone.push(at(
        3_100,
        node_read(0, 3_100, &[(0, 3)], &[("a", 0, 0), ("b", 0, 1)]),
    ));
    assert_eq!(
        invariants(&gone, Completeness::Partial),
        vec![Invariant::UncommittedRead]
    );
    // The same delivery confirmed by the read is fine.
    history.push(at(
        3_100,
        read(3_100, &[("a", 0, 0), ("b", 0, 1), ("x", 0, 2)]),
    ));
    assert_eq!(invariants(&history, Completeness::Partial), vec![]);
}

#[test]
fn a_queue_ack_sent_just_before_its_session_was_cut_may_be_lost() {
    let mut history = good_history();
    history.push(at(3_000, delivered(ConsumerKind::Queue(0), 7, "b", 0, 1)));
    history.push(at(3_010, queue_ack(7, "b", 0, 1)));
    let redelivered = at(4_000, delivered(ConsumerKind::Queue(0), 8, "b", 0, 1));
    // Cut 100 ms after the ack: inside the window, the ack may not have arrived.
    let mut cut_soon = history.clone();
    cut_soon.push(at(3_110, Event::SessionCut { run: 7 }));
    cut_soon.push(redelivered.clone());
    assert_eq!(invariants(&cut_soon, Completeness::Partial), vec![]);
    // Cut long after the ack, or never: the broker had it.
    let mut cut_late = history.clone();
    cut_late.push(at(3_900, Event::SessionCut { run: 7 }));
    cut_late.push(redelivered.clone());
    assert_eq!(
        invariants(&cut_late, Completeness::Partial),
        vec![Invariant::AckedQueueMessageRedelivered]
    );
    history.push(redelivered);
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::AckedQueueMessageRedelivered]
    );
}

#[test]
fn a_queue_message_delivered_again_across_a_leader_window_is_allowed_and_outside_it_reported() {
    // "b" was delivered at 2 800 in run 1, never acked.
    let mut history = good_history();
    let again = |ms| at(ms, delivered(ConsumerKind::Queue(1), 1, "b", 0, 1));
    let mut no_window = history.clone();
    no_window.push(again(3_500));
    assert_eq!(
        invariants(&no_window, Completeness::Partial),
        vec![Invariant::QueueDeliveredTwice]
    );
    // A fault opened a window between the deliveries: the leader may have moved.
    history.push(at(3_000, Event::LeadersMayMove));
    history.push(at(3_100, Event::LeadersSettled));
    history.push(again(3_500));
    // Still within `leader_settle` of the settling, and after it but with the window between.
    history.push(again(5_000));
    assert_eq!(invariants(&history, Completeness::Partial), vec![]);
    // Both deliveries after the window closed (4 100): one run again.
    history.push(again(5_200));
    assert_eq!(
        invariants(&history, Completeness::Partial),
        vec![Invariant::QueueDeliveredTwice]
    );
}

#[test]
fn a_queue_ack_lost_to_a_leader_window_is_allowed_and_outside_it_reported() {
    // "b" was delivered at 2 800 in run 1; its ack is sent at 2 810 and it comes back at 3 500.
    let mut history = good_history();
    history.push(at(2_810, queue_ack(1, "b", 0, 1)));
    let again = |ms| at(ms, delivered(ConsumerKind::Queue(1), 1, "b", 0, 1));
    let with_window = |opened: u64| {
        let mut h = history.clone();
        h.push(at(opened, Event::LeadersMayMove));
        h.push(at(opened + 50, Event::LeadersSettled));
        h.push(again(3_500));
        h
    };
    // The window opened within `queue_ack_window` (500 ms) of the ack: it may be lost.
    assert_eq!(
        invariants(&with_window(3_000), Completeness::Partial),
        vec![]
    );
    // Opened later: the ack was flushed before any leader moved; only the lease may come back.
    assert_eq!(
        invariants(&with_window(3_400), Completeness::Partial),
        vec![Invariant::AckedQueueMessageRedelivered]
    );
    // No window at all.
    let mut no_window = history.clone();
    no_window.push(again(3_500));
    assert_eq!(
        invariants(&no_window, Completeness::Partial),
        vec![
            Invariant::AckedQueueMessageRedelivered,
            Invariant::QueueDeliveredTwice
        ]
    );
    // An ack sent after the window closed (settled at 2 870, + 1 s) is as binding as without a
    // cluster; the delivery again is not twice in one run (the one at 3 500 was in the window).
    let mut late = with_window(2_820);
    late.push(at(3_900, queue_ack(1, "b", 0, 1)));
    late.push(again(4_500));
    assert_eq!(
        invariants(&late, Completeness::Partial),
        vec![Invariant::AckedQueueMessageRedelivered]
    );
}
