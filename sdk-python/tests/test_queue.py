"""Queue mode (C15, C20, C21, C22): per-message acks, nack with delay, deadlines, dead letters,
priority, restarts and bad input. Waiting for a delay or a deadline is time passing by design."""

from __future__ import annotations

import collections
import threading
import time

import pytest

import rapidmq
from conftest import GUARD, eventually


def send_all(client, topic, messages):
    with client.producer(topic) as producer:
        for receipt in [producer.send(m) for m in messages]:
            receipt.result()


def receive(worker, n):
    out = []
    while len(out) < n:
        got = worker.poll(n - len(out), 30.0)
        assert got, f"stalled after {len(out)} deliveries"
        out += got
    return out


def worker(client, topic, sub, prefetch=rapidmq.ConsumerConfig().prefetch, **queue):
    return client.queue_consumer(
        topic,
        sub,
        start="earliest",
        commit_interval=0.02,
        prefetch=prefetch,
        queue=rapidmq.QueueConfig(**queue),
    )


def test_competing_consumers_share_the_work_and_each_message_is_delivered_once(client, make_topic):
    """C15 (competing consumers)."""
    topic = make_topic(2)
    total = 400
    send_all(client, topic, [str(i) for i in range(total)])
    counts = collections.Counter()
    per_worker = collections.Counter()
    lock = threading.Lock()
    workers = [worker(client, topic, "pool", prefetch=10) for _ in range(2)]

    def run(index, q):
        while True:
            with lock:
                if sum(counts.values()) >= total:
                    return
            for d in q.poll(50, 0.2):
                assert d.attempt == 1
                q.ack(d)
                with lock:
                    counts[(d.partition, d.offset)] += 1
                    per_worker[index] += 1

    threads = [threading.Thread(target=run, args=(i, q)) for i, q in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(GUARD)
    assert len(counts) == total and set(counts.values()) == {1}, "a message came twice"
    assert all(per_worker[i] > 0 for i in range(2)), per_worker
    for q in workers:
        q.close()
    info = client.admin().describe_subscription(topic, "pool")
    assert info.mode == "queue" and info.queue_stats.in_flight == 0


def test_nacked_message_is_redelivered_then_dead_lettered_after_max_deliveries_and_replayed(
    client, make_topic
):
    """C15 (nack, dead letters, replay)."""
    topic = make_topic(1)
    send_all(client, topic, ["poison"])
    q = worker(client, topic, "w", max_deliveries=2)
    first = receive(q, 1)
    assert first[0].attempt == 1
    nacked_at = time.monotonic()
    q.nack(first[0], 1.5)
    second = receive(q, 1)
    assert time.monotonic() - nacked_at >= 1.5
    assert (second[0].attempt, second[0].value) == (2, b"poison")
    q.nack(second[0], 0.0)

    admin = client.admin()
    dlq = f"{topic}.dlq"

    def pending(n):
        try:
            return len(admin.list_dead_letters(dlq, 10).dead_letters) == n
        except rapidmq.TopicNotFoundError:
            return False

    eventually("the message is dead-lettered", lambda: pending(1))
    page = admin.list_dead_letters(dlq, 10)
    assert page.next_page_token is None, "one letter is one page"
    letters = page.dead_letters
    assert len(letters) == 1
    letter = letters[0]
    assert (letter.partition, letter.offset) == (0, 0)
    assert (letter.original_topic, letter.original_offset, letter.attempts) == (topic, 0, 2)
    assert letter.message.value == b"poison"
    assert ("rapidmq-dlq-topic", topic.encode()) in letter.message.headers
    assert admin.describe_subscription(topic, "w").queue_stats.dead_lettered == 1

    # Two more letters: pages of two follow the token, and replay counts down what remains.
    send_all(client, topic, ["p1", "p2"])
    for _ in range(2):
        for d in receive(q, 2):
            q.nack(d, 0.0)
    eventually("three letters are pending", lambda: pending(3))
    first = admin.list_dead_letters(dlq, 2)
    assert first.next_page_token is not None
    second = admin.list_dead_letters(dlq, 2, first.next_page_token)
    assert second.next_page_token is None
    offsets = [d.offset for d in first.dead_letters + second.dead_letters]
    assert offsets == [0, 1, 2], "each letter once, in order"
    with pytest.raises(rapidmq.InvalidArgumentError):
        admin.list_dead_letters(dlq, 2, "not-a-token")
    with pytest.raises(rapidmq.InvalidArgumentError):
        admin.list_dead_letters(dlq, 1001)

    replay = admin.replay_dead_letters(dlq, 2)
    assert (replay.replayed, replay.remaining) == (2, 1)
    replay = admin.replay_dead_letters(dlq)
    assert (replay.replayed, replay.remaining) == (1, 0)
    back = receive(q, 3)
    assert sorted((d.value, d.attempt) for d in back) == [
        (b"p1", 1), (b"p2", 1), (b"poison", 1)
    ], "each replayed message comes back once and starts over"
    for d in back:
        q.ack(d)
    q.close()
    page = admin.list_dead_letters(dlq, 10)
    assert page.dead_letters == [] and page.next_page_token is None


def test_an_unacked_delivery_comes_back_after_its_deadline_unless_extended(client, make_topic):
    """C15 (deadline, extension) and C22 (RECEIPT_UNKNOWN surfaces without ending the consumer)."""
    topic = make_topic(1)
    send_all(client, topic, ["slow", "stuck"])
    q = worker(client, topic, "w", ack_deadline=0.8)
    got = {d.value: d for d in receive(q, 2)}
    slow, stuck = got[b"slow"], got[b"stuck"]
    q.extend_deadline(slow, 30.0)
    started = time.monotonic()
    again = receive(q, 1)
    assert time.monotonic() - started >= 0.5
    assert (again[0].value, again[0].attempt) == (b"stuck", 2)
    q.ack(again[0])
    q.ack(slow)
    q.ack(stuck)  # the timed-out first delivery: the broker refuses its receipt
    q.flush()
    eventually("the stale ack is reported", lambda: q.stats().stream_errors >= 1)
    errors = q.take_stream_errors()
    assert len(errors) == 1 and isinstance(errors[0], rapidmq.ReceiptUnknownError)
    assert errors[0].code == 4007
    q.close()
    assert client.admin().describe_subscription(topic, "w").queue_stats.in_flight == 0


def test_a_backlog_of_mixed_priorities_is_delivered_highest_first(client, make_topic):
    """C20 queue-priority."""
    topic = make_topic(1)
    priorities = [3, 9, 0, 5, 9, 1, 7]
    send_all(client, topic, [rapidmq.Message(f"p{p}", priority=p) for p in priorities])
    with worker(client, topic, "pager") as q:
        got = [d.message.priority for d in receive(q, len(priorities))]
    assert got == [9, 9, 7, 5, 3, 1, 0]


def test_after_a_broker_restart_the_unacked_message_returns_and_stale_receipts_are_dropped(
    broker, client, make_topic
):
    """C21 queue-restart-stale-receipts."""
    topic = make_topic(1)
    send_all(client, topic, ["a", "b"])
    q = worker(client, topic, "w", ack_deadline=60.0)
    acked, held = receive(q, 2)
    q.ack(acked)
    q.flush()
    admin = client.admin()
    eventually("the ack is recorded", lambda: admin.describe_subscription(topic, "w").total_lag == 1)
    broker.restart()
    client.set_endpoints(broker.url)

    again = receive(q, 1)
    assert again[0].value == held.value
    assert again[0].attempt == 2, "the attempt count survives the restart"
    assert q.stats().reconnects >= 1
    q.ack(held)
    assert q.stats().stale_receipts == 1, "the old receipt is dropped locally"
    q.ack(again[0])
    q.close()
    assert q.take_stream_errors() == []
    assert admin.describe_subscription(topic, "w").queue_stats.in_flight == 0


def test_queue_settings_are_created_and_described_and_bad_ones_get_their_codes(client, make_topic):
    """C22 queue-and-message-bad-input."""
    topic = make_topic(1)
    admin = client.admin()
    info = admin.create_queue_subscription(
        topic, "jobs", "earliest", ack_deadline=12.0, max_deliveries=7,
        dead_letter_topic=f"{topic}-dead",
    )
    assert info.mode == "queue"
    described = admin.describe_subscription(topic, "jobs").queue
    assert (described.ack_deadline, described.max_deliveries, described.dead_letter_topic) == (
        12.0, 7, f"{topic}-dead",
    )
    with pytest.raises(rapidmq.InvalidArgumentError):
        worker(client, topic, "zero", max_deliveries=0)
    with pytest.raises(rapidmq.InvalidArgumentError):
        client.queue_consumer(topic, "")
    admin.create_subscription(topic, "stream", "earliest")
    with pytest.raises(rapidmq.SubscriptionModeMismatchError) as err:
        worker(client, topic, "stream")
    assert err.value.code == 4003
    with client.producer(topic) as producer:
        with pytest.raises(rapidmq.InvalidPriorityError) as err:
            producer.send("too high", priority=10).result()
        assert err.value.code == 3005
        with pytest.raises(rapidmq.DeliverAtOutOfRangeError):
            producer.send("far", deliver_at_ms=int(time.time() * 1000) + 10 * 365 * 86_400_000).result()


def _check_handled(handled, admin, dlq, most):  # type: ignore[no-untyped-def]
    """The outcome C26 asks for, from ``handled``: value -> [(attempt, monotonic time)]."""
    for i in range(18):
        assert [a for a, _ in handled[f"ok-{i}"]] == [1], f"ok-{i}"
    flaky, poison = handled["flaky"], handled["poison"]
    assert [a for a, _ in flaky] == [1, 2]
    assert flaky[1][1] - flaky[0][1] >= 0.2, "backoff of attempt 1"
    assert [a for a, _ in poison] == [1, 2, 3]
    assert poison[1][1] - poison[0][1] >= 0.2, "backoff of attempt 1"
    assert poison[2][1] - poison[1][1] >= 0.4, "doubled for attempt 2"
    (letter,) = admin.list_dead_letters(dlq, 10).dead_letters
    assert (letter.message.value, letter.attempts) == (b"poison", 3)
    assert most <= 4, f"at most 4 at once, saw {most}"
    assert rapidmq.retry_delay(3, 0.2, 5.0) == pytest.approx(0.8)


def _handled_messages():  # type: ignore[no-untyped-def]
    return [f"ok-{i}" for i in range(18)] + ["flaky", "poison"]


def test_a_handler_acks_what_it_handles_and_nacks_failures_with_backoff_until_dead_lettered(
    client, make_topic
):
    """C26 queue-handler (the thread-pool run)."""
    topic = make_topic(2)
    send_all(client, topic, _handled_messages())
    q = worker(client, topic, "handled", max_deliveries=3)
    handled = collections.defaultdict(list)
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def handler(delivery):  # type: ignore[no-untyped-def]
        value = delivery.value.decode()
        with lock:
            running[0] += 1
            running[1] = max(running)
            handled[value].append((delivery.attempt, time.monotonic()))
        try:
            if value == "poison" or (value == "flaky" and delivery.attempt == 1):
                raise RuntimeError("fails")
        finally:
            with lock:
                running[0] -= 1

    stop = threading.Event()
    runner = threading.Thread(
        target=q.run,
        args=(handler,),
        kwargs={"concurrency": 4, "retry_backoff": 0.2, "max_retry_backoff": 5.0, "stop": stop},
    )
    runner.start()
    admin = client.admin()
    dlq = f"{topic}.dlq"

    def dead_lettered():  # type: ignore[no-untyped-def]
        try:
            return len(admin.list_dead_letters(dlq, 10).dead_letters) == 1
        except rapidmq.TopicNotFoundError:
            return False

    eventually("the poison message is dead-lettered", dead_lettered)
    eventually(
        "everything else is handled", lambda: len(handled) == 20 and len(handled["flaky"]) == 2
    )
    stop.set()
    runner.join(GUARD)
    assert not runner.is_alive(), "run returned"
    _check_handled(handled, admin, dlq, running[1])
    assert admin.describe_subscription(topic, "handled").queue_stats.in_flight == 0
    q.close()
