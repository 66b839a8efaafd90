//! The queue rules, tested on an injected clock.

use rapidmq_proto::v1 as pb;

use super::*;

fn message(priority: u32, ttl_ms: i64) -> Arc<QueuedMessage> {
    Arc::new(QueuedMessage {
        message: pb::Message {
            priority,
            ttl_ms,
            ..Default::default()
        },
        append_time_ms: 1_000,
        base_timestamp_ms: 1_000,
    })
}

/// Both clocks at `ms`.
fn at(ms: i64) -> Clock {
    Clock {
        mono_ms: ms,
        wall_ms: ms,
    }
}

fn ids() -> impl FnMut() -> u64 {
    let mut next = 0;
    move || {
        next += 1;
        next
    }
}

impl QueuePartition {
    /// Recomputes the indexes and counts from the slots by a full scan and compares.
    fn assert_consistent(&self) {
        let mut ready = BTreeSet::new();
        let mut delayed = BTreeSet::new();
        let mut deadlines = BTreeSet::new();
        let (mut in_flight, mut unsettled) = (0, 0);
        for (&offset, slot) in &self.window {
            match slot.state {
                SlotState::Ready { not_before: 0 } | SlotState::Overdue { .. } => {
                    ready.insert((Reverse(slot.priority), offset));
                }
                SlotState::Ready { not_before } => {
                    delayed.insert((not_before, offset));
                }
                SlotState::InFlight { deadline, .. } => {
                    deadlines.insert((deadline, offset));
                }
                SlotState::DeadLettering | SlotState::Done => {}
            }
            in_flight += usize::from(slot.state.in_flight());
            unsettled += usize::from(slot.state != SlotState::Done);
        }
        assert_eq!(self.ready, ready);
        assert_eq!(self.delayed, delayed);
        assert_eq!(self.deadlines, deadlines);
        assert_eq!((self.in_flight, self.unsettled), (in_flight, unsettled));
    }
}

fn loaded(n: u64) -> QueuePartition {
    let mut q = QueuePartition::new(0);
    q.load((0..n).map(|o| (o, message(0, 0))));
    q
}

#[test]
fn a_claim_stops_at_its_byte_budget_but_always_takes_one_message() {
    let mut q = QueuePartition::new(0);
    let sized = |len: usize| {
        Arc::new(QueuedMessage {
            message: pb::Message {
                value: vec![b'x'; len].into(),
                ..Default::default()
            },
            append_time_ms: 1_000,
            base_timestamp_ms: 1_000,
        })
    };
    q.load([
        (0, sized(100)),
        (1, sized(100)),
        (2, sized(100)),
        (3, sized(1_000)),
    ]);
    let size = sized(100).message.encoded_len();
    let mut id = ids();
    let (c, _) = q.claim(
        &mut Budget::new(10, 2 * size + 1),
        at(0),
        1,
        30_000,
        5,
        &mut id,
    );
    assert_eq!(c.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![0, 1]);
    let (c, _) = q.claim(&mut Budget::new(10, 1), at(0), 1, 30_000, 5, &mut id);
    assert_eq!(c.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![2]);
    let (c, _) = q.claim(&mut Budget::new(10, 1), at(0), 1, 30_000, 5, &mut id);
    assert_eq!(
        c.iter().map(|c| c.offset).collect::<Vec<_>>(),
        vec![3],
        "one larger than the budget still goes"
    );
    q.assert_consistent();
}

#[test]
fn each_message_is_claimed_once_until_acked() {
    let mut q = loaded(3);
    let mut id = ids();
    let (a, _) = q.claim(&mut Budget::messages(2), at(10), 1, 30_000, 5, &mut id);
    let (b, _) = q.claim(&mut Budget::messages(5), at(10), 2, 30_000, 5, &mut id);
    assert_eq!(a.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![0, 1]);
    assert_eq!(b.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![2]);
    assert!(
        q.claim(&mut Budget::messages(5), at(10), 3, 30_000, 5, &mut id)
            .0
            .is_empty()
    );
    assert_eq!(q.ack(0, a[0].delivery_id), Settle::Done);
    assert_eq!(
        q.ack(0, a[0].delivery_id),
        Settle::Unknown,
        "a second ack is unknown"
    );
    assert_eq!(q.floor(), 1);
    assert_eq!(
        q.ack(2, a[0].delivery_id),
        Settle::Unknown,
        "a foreign receipt is unknown"
    );
}

#[test]
fn an_unacked_message_comes_back_after_its_deadline_unless_extended() {
    let mut q = loaded(2);
    let mut id = ids();
    let (first, _) = q.claim(&mut Budget::messages(2), at(0), 1, 1_000, 5, &mut id);
    assert!(
        q.claim(&mut Budget::messages(2), at(999), 2, 1_000, 5, &mut id)
            .0
            .is_empty()
    );
    assert_eq!(q.extend(1, first[1].delivery_id, 500, 5_000), Settle::Done);
    assert!(
        q.claim(&mut Budget::messages(2), at(1_000), 2, 1_000, 5, &mut id)
            .0
            .is_empty(),
        "the claim may have come at the end of millisecond 0: a deadline is never short"
    );
    let (again, _) = q.claim(&mut Budget::messages(2), at(1_001), 2, 1_000, 5, &mut id);
    assert_eq!(again.len(), 1, "only the unextended message is redelivered");
    assert_eq!((again[0].offset, again[0].attempt), (0, 2));
    assert_eq!(
        q.ack(0, first[0].delivery_id),
        Settle::Unknown,
        "the stale receipt no longer acks"
    );
    assert_eq!(q.counters.redeliveries, 1);
    assert_eq!(q.next_timer(), Some(2_002));
}

#[test]
fn nack_delays_redelivery_and_the_last_allowed_attempt_dead_letters() {
    let mut q = loaded(1);
    let mut id = ids();
    let (c, _) = q.claim(&mut Budget::messages(1), at(0), 1, 30_000, 2, &mut id);
    assert_eq!(q.nack(0, c[0].delivery_id, 0, 2_000, 2), Settle::Done);
    assert!(
        q.claim(&mut Budget::messages(1), at(2_000), 1, 30_000, 2, &mut id)
            .0
            .is_empty(),
        "not before the delay: the nack may have come at the end of millisecond 0"
    );
    let (c, _) = q.claim(&mut Budget::messages(1), at(2_001), 1, 30_000, 2, &mut id);
    assert_eq!(c[0].attempt, 2);
    let Settle::DeadLetter(dead) = q.nack(0, c[0].delivery_id, 2_001, 0, 2) else {
        panic!("expected a dead letter")
    };
    assert_eq!(dead.attempts, 2);
    assert_eq!(q.floor(), 0, "not settled until the dead letter is stored");
    q.dead_lettered(0, true);
    assert_eq!(q.floor(), 1);
    assert_eq!(q.counters.dead_lettered, 1);
}

#[test]
fn higher_priorities_go_first_among_loaded_messages() {
    let mut q = QueuePartition::new(0);
    q.load([
        (0, message(1, 0)),
        (1, message(9, 0)),
        (2, message(5, 0)),
        (3, message(9, 0)),
    ]);
    let (c, _) = q.claim(&mut Budget::messages(4), at(0), 1, 30_000, 5, &mut ids());
    assert_eq!(
        c.iter().map(|c| c.offset).collect::<Vec<_>>(),
        vec![1, 3, 2, 0]
    );
}

#[test]
fn expired_messages_are_never_delivered_and_are_counted() {
    let mut q = QueuePartition::new(0);
    q.load([(0, message(0, 500)), (1, message(0, 0))]);
    let (c, _) = q.claim(
        &mut Budget::messages(2),
        at(1_600),
        1,
        30_000,
        5,
        &mut ids(),
    );
    assert_eq!(c.iter().map(|c| c.offset).collect::<Vec<_>>(), vec![1]);
    assert_eq!(q.counters.expired, 1);
}

/// The encoded state of four loaded messages of which 0, 1 and 2 were claimed and 0 and 2
/// acked, and the delivery-id source that claimed them.
fn claimed_three_acked_0_and_2() -> (bytes::Bytes, impl FnMut() -> u64) {
    let mut q = loaded(4);
    let mut id = ids();
    let (c, _) = q.claim(&mut Budget::messages(3), at(0), 1, 30_000, 5, &mut id);
    q.ack(0, c[0].delivery_id);
    q.ack(2, c[2].delivery_id);
    (q.encode(), id)
}

#[test]
fn a_restored_state_above_the_recovered_log_is_clamped_to_it() {
    let (encoded, mut id) = claimed_three_acked_0_and_2();

    // The whole log is gone (a memory topic after a restart): a fresh state at 0.
    let mut restored = QueuePartition::decode(&encoded).unwrap();
    assert_eq!(restored.clamp_to(0), Some(3));
    assert_eq!((restored.floor(), restored.read_pos()), (0, 0));
    assert!(restored.is_dirty());
    assert_eq!(
        QueuePartition::decode(&restored.encode()).unwrap().floor(),
        0
    );

    // The log lost offsets 2 and 3: the ack of 2 does not settle the next message there.
    let mut restored = QueuePartition::decode(&encoded).unwrap();
    assert_eq!(restored.clamp_to(2), Some(3));
    restored.load((1..4).map(|o| (o, message(0, 0))));
    let (c, _) = restored.claim(&mut Budget::messages(10), at(0), 2, 30_000, 5, &mut id);
    let got: Vec<(u64, u32)> = c.iter().map(|c| (c.offset, c.attempt)).collect();
    assert_eq!(got, vec![(1, 2), (2, 1), (3, 1)]);

    // A state within the log is left alone.
    let mut restored = QueuePartition::decode(&encoded).unwrap();
    assert_eq!(restored.clamp_to(3), None);
    assert!(!restored.is_dirty());
}

#[test]
fn persisted_state_redelivers_only_unsettled_messages_with_their_attempts() {
    let (encoded, mut id) = claimed_three_acked_0_and_2();
    let mut restored = QueuePartition::decode(&encoded).unwrap();
    assert_eq!(restored.floor(), 1);
    restored.load((1..4).map(|o| (o, message(0, 0))));
    let (c, _) = restored.claim(&mut Budget::messages(10), at(0), 2, 30_000, 5, &mut id);
    let got: Vec<(u64, u32)> = c.iter().map(|c| (c.offset, c.attempt)).collect();
    assert_eq!(
        got,
        vec![(1, 2), (3, 1)],
        "2 stays acked; 1 keeps its attempt count"
    );
}

#[test]
fn a_leaving_member_gives_its_messages_back_at_once() {
    let mut q = loaded(2);
    let mut id = ids();
    q.claim(&mut Budget::messages(1), at(0), 7, 30_000, 5, &mut id);
    assert!(q.release_member(7));
    let (c, _) = q.claim(&mut Budget::messages(2), at(0), 8, 30_000, 5, &mut id);
    assert_eq!(c.len(), 2);
}

#[test]
fn an_overdue_receipt_still_acks_until_the_message_is_claimed_again() {
    let mut q = loaded(1);
    let mut id = ids();
    let (c, _) = q.claim(&mut Budget::messages(1), at(0), 1, 1_000, 5, &mut id);
    assert!(!q.has_available(1_000), "a deadline is never short");
    assert!(q.has_available(1_001), "the deadline passed");
    assert!(
        q.claim(&mut Budget::messages(0), at(1_001), 2, 1_000, 5, &mut id)
            .0
            .is_empty()
    );
    assert_eq!(
        q.in_flight(),
        1,
        "overdue, but not given to anyone else yet"
    );
    assert_eq!(q.ack(0, c[0].delivery_id), Settle::Done);
    assert_eq!(q.floor(), 1);
    assert_eq!((q.in_flight(), q.backlog(1)), (0, 0));
    q.assert_consistent();
}

#[test]
fn indexes_and_counts_follow_every_state_change() {
    // A deterministic mix of every operation on a window of mixed priorities and TTLs,
    // checked against a full scan after each step.
    let mut q = QueuePartition::new(0);
    let mut id = ids();
    let mut out: Vec<Claimed> = Vec::new();
    let mut seed = 0x2545_f491_u64;
    let mut next = move |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (seed >> 33) % n
    };
    let mut loaded_to = 0;
    for step in 0..5_000_i64 {
        let now = step * 10;
        match next(8) {
            0 => {
                let batch: Vec<_> = (loaded_to..loaded_to + next(20))
                    .map(|o| {
                        (
                            o,
                            message(next(10) as u32, [0, 0, 0, 700][next(4) as usize]),
                        )
                    })
                    .collect();
                loaded_to += batch.len() as u64;
                q.load(batch);
            }
            1 | 2 => {
                let (claimed, dead) = q.claim(
                    &mut Budget::messages(next(8) as usize),
                    at(now),
                    next(3),
                    300,
                    4,
                    &mut id,
                );
                out.extend(claimed);
                for letter in dead {
                    q.dead_lettered(letter.offset, next(4) > 0);
                }
            }
            3 | 4 if !out.is_empty() => {
                let c = out.swap_remove(next(out.len() as u64) as usize);
                q.ack(c.offset, c.delivery_id);
            }
            5 if !out.is_empty() => {
                let c = out.swap_remove(next(out.len() as u64) as usize);
                if let Settle::DeadLetter(letter) =
                    q.nack(c.offset, c.delivery_id, now, next(3) * 100, 4)
                {
                    q.dead_lettered(letter.offset, true);
                }
            }
            6 if !out.is_empty() => {
                let c = &out[next(out.len() as u64) as usize];
                q.extend(c.offset, c.delivery_id, now, 500);
            }
            7 => {
                q.release_member(next(3));
            }
            _ => {}
        }
        q.assert_consistent();
    }
    assert!(q.counters.redeliveries > 0 && q.counters.expired > 0 && q.counters.dead_lettered > 0);
}

#[test]
fn a_claim_that_never_reached_the_consumer_is_taken_back_without_an_attempt() {
    let mut q = loaded(2);
    let mut id = ids();
    let (c, _) = q.claim(&mut Budget::messages(2), at(0), 1, 30_000, 1, &mut id);
    assert!(q.unclaim(0, c[0].delivery_id));
    // The member left before the second receipt was taken back: it still counts no attempt.
    q.release_member(1);
    assert!(q.unclaim(1, c[1].delivery_id));
    assert!(!q.unclaim(1, c[1].delivery_id), "only once");
    q.assert_consistent();
    let (again, dead) = q.claim(&mut Budget::messages(2), at(0), 2, 30_000, 1, &mut id);
    assert!(
        dead.is_empty(),
        "max_deliveries 1: nothing was delivered yet"
    );
    assert_eq!(
        again
            .iter()
            .map(|c| (c.offset, c.attempt))
            .collect::<Vec<_>>(),
        vec![(0, 1), (1, 1)]
    );
    assert_eq!(q.counters.redeliveries, 0);
    assert!(
        !q.unclaim(0, c[0].delivery_id),
        "a stale claim cannot undo the new one"
    );
    q.assert_consistent();
}

#[test]
fn a_wall_clock_step_does_not_make_deliveries_overdue() {
    let mut q = loaded(1);
    let mut id = ids();
    let (c, _) = q.claim(&mut Budget::messages(1), at(1_000), 1, 30_000, 5, &mut id);
    let stepped = Clock {
        mono_ms: 2_000,
        wall_ms: 1_000 + 3_600_000,
    };
    assert!(
        q.claim(&mut Budget::messages(1), stepped, 2, 30_000, 5, &mut id)
            .0
            .is_empty()
    );
    assert!(!q.has_available(stepped.mono_ms));
    assert_eq!(q.ack(0, c[0].delivery_id), Settle::Done);
}

#[test]
fn a_parked_message_does_not_count_against_the_window() {
    let mut q = loaded(1);
    let mut id = ids();
    let (c, _) = q.claim(&mut Budget::messages(1), at(0), 1, 30_000, 5, &mut id);
    let day = 24 * 3_600_000;
    assert_eq!(q.nack(0, c[0].delivery_id, 0, day, 5), Settle::Done);
    q.load((1..1_001).map(|o| (o, message(0, 0))));
    let (c, _) = q.claim(&mut Budget::messages(1_000), at(1), 1, 30_000, 5, &mut id);
    assert_eq!(c.len(), 1_000, "the messages behind the parked one flow");
    for d in &c {
        q.ack(d.offset, d.delivery_id);
    }
    assert_eq!(q.floor(), 0, "the parked message holds the floor");
    assert_eq!(q.unsettled(), 1, "but only it counts against the window");
    assert!(
        q.window.values().filter(|s| s.message.is_some()).count() == 1,
        "settled slots keep no payload"
    );
    q.assert_consistent();
}
