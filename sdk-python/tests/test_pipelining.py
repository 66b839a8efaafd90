"""C18 receipts-scheduled-and-deduplicated and C19 pipelining-order-across-restart."""

from __future__ import annotations

import threading

from conftest import GUARD, read_log
from test_consumer import poll_until

MSG_ID = "msg-id"


def test_a_repeated_msg_id_within_the_window_gets_a_deduplicated_receipt_and_one_copy_is_kept(
    client, make_topic
):
    topic = make_topic(1, dedup_window_ms=60_000)
    first = client.producer(topic)
    second = client.producer(topic)
    assert first.send("a1", headers={MSG_ID: "order-1"}).result().offset == 0
    # One batch from another producer: a repeat, a new id, a delayed one and a plain message.
    receipts = [
        second.send("a2", headers={MSG_ID: "order-1"}),
        second.send("b", headers={MSG_ID: "order-2"}),
        second.send("c", delay=3600.0),
        second.send("d"),
    ]
    second.flush()
    got = [(d.status, d.offset) for d in (r.result() for r in receipts)]
    assert got == [("deduplicated", None), ("appended", 1), ("scheduled", None), ("appended", 2)]
    assert [m.value for m in read_log(client, topic)] == [b"a1", b"b", b"d"]
    first.close()
    second.close()


def test_after_the_dedup_window_a_repeated_msg_id_is_kept(client, make_topic):
    topic = make_topic(1, dedup_window_ms=500)
    with client.producer(topic) as producer:
        producer.send("x", headers={MSG_ID: "id"}).result()
        producer.send("marker", delay=1.0).result()
        # The broker's schedule is the clock: the marker appears a second later, past the window.
        with client.consumer(topic, "clock", start="earliest") as clock:
            values = []
            while b"marker" not in values:
                values += [m.value for m in poll_until(clock, 1)]
        again = producer.send("x", headers={MSG_ID: "id"}).result()
    assert again.status == "appended"
    assert [m.value for m in read_log(client, topic)].count(b"x") == 2


def test_pipelined_batches_keep_order_per_key_across_lost_acks_and_a_broker_crash(
    broker, client, make_topic
):
    total, keys = 20_000, 16
    topic = make_topic(2)
    producer = client.producer(
        topic, max_batch_messages=50, linger=0.001, max_in_flight_per_partition=5
    )
    producer._native._lose_acks(3)  # acks lost mid-window: that batch and later ones are resent
    progress = threading.Condition()
    acked = [0]
    failures = []

    def produce():
        try:
            window = []
            for i in range(total):
                window.append(producer.send(str(i), key=f"k{i % keys}"))
                if len(window) == 2000 or i + 1 == total:
                    for receipt in window:
                        receipt.result()
                    acked[0] += len(window)
                    window.clear()
                    with progress:
                        progress.notify_all()
        except BaseException as e:
            failures.append(e)

    thread = threading.Thread(target=produce)
    thread.start()
    with progress:
        assert progress.wait_for(lambda: acked[0] >= total // 3 or failures, GUARD)
    broker.crash_and_restart()
    client.set_endpoints(broker.url)
    thread.join(GUARD)
    assert not thread.is_alive() and not failures, failures

    stats = producer.stats()
    assert stats.max_partition_in_flight > 1, f"batches were pipelined: {stats}"
    assert stats.retries >= 3, stats
    seen = set()
    last = {}
    for m in read_log(client, topic):
        value = int(m.value)
        assert value not in seen, f"duplicate {value}"
        seen.add(value)
        key = m.key
        assert last.get(key, -1) < value, f"key {key!r}: {last.get(key)} before {value}"
        last[key] = value
    assert len(seen) == total, "nothing acked is missing"
    producer.close()
