"""Producer conformance (C02-C07) against a real broker."""

from __future__ import annotations

import array
import sys
import threading

import pytest
import xxhash

import rapidmq
from conftest import GUARD, publish_values, read_log
from rapidmq import _native


def test_ten_thousand_sends_with_5ms_linger_make_far_fewer_requests_than_messages(client, make_topic):
    """C02 batching-by-linger."""
    topic = make_topic(1)
    with client.producer(topic, linger=0.005) as producer:
        deliveries = publish_values(producer, 10_000)
        assert [d.offset for d in deliveries] == list(range(10_000))
        stats = producer.stats()
        assert stats.messages_acked == 10_000
        assert stats.retries == 0
        assert stats.requests * 10 <= 10_000, stats


def test_a_full_batch_is_sent_without_waiting_for_linger(client, make_topic):
    """C03 batching-by-size."""
    topic = make_topic(1)
    with client.producer(topic, linger=3600.0, max_batch_messages=100) as producer:
        receipts = [producer.send(str(i)) for i in range(150)]
        for receipt in receipts[:100]:
            assert receipt.result().status == "appended"
        assert producer.stats().batches == 1
        assert not receipts[100].done(), "the partial batch waits for the hour-long linger"
        producer.flush()
        assert all(r.done() for r in receipts[100:])
        assert [r.result().offset for r in receipts] == list(range(150))
        assert producer.stats().batches == 2


def test_keyed_messages_land_on_the_partition_of_the_shared_function(client, make_topic):
    """C04 partition-function: xxh3_64(key) % partitions, checked against an independent
    xxh3 implementation (the xxhash package)."""
    topic = make_topic(8)
    with client.producer(topic) as producer:
        for key in ["order-42", "user:7", "a", "", "ключ"]:
            delivery = producer.send("v", key=key).result()
            assert delivery.partition == xxhash.xxh3_64_intdigest(key.encode()) % 8, key


def test_an_empty_key_is_a_key_and_stays_apart_from_no_key(client, make_topic):
    """C25 empty-key-round-trip: an empty key hashes like any key and is read back empty; no
    key is read back as None."""
    topic = make_topic(8)
    with client.producer(topic) as producer:
        delivery = producer.send("empty", key=b"").result()
        assert delivery.partition == xxhash.xxh3_64_intdigest(b"") % 8
        producer.send("none").result()
    keys = {m.value: m.key for m in read_log(client, topic)}
    assert keys[b"empty"] == b""
    assert keys[b"none"] is None


def test_try_send_returns_none_when_the_buffer_is_full_and_queues_nothing(client, make_topic):
    topic = make_topic(1)
    with client.producer(topic, linger=3600.0, max_buffered_messages=10) as producer:
        receipts = [producer.try_send(str(i)) for i in range(10)]
        assert all(r is not None for r in receipts), "room for ten"
        assert producer.try_send("no room") is None
        producer.flush()
        assert [r.result().offset for r in receipts] == list(range(10))
        late = producer.try_send(rapidmq.Message("room again"))
        assert late is not None
        producer.flush()
        assert late.result().offset == 10
    assert [m.value for m in read_log(client, topic)][-1] == b"room again"


def test_message_too_large_fails_at_once_with_its_code_and_no_retries(client, make_topic):
    """C05 non-retriable-errors-at-once (size)."""
    topic = make_topic(1, max_message_bytes=1024)
    with client.producer(topic) as producer:
        receipt = producer.send(b"\0" * 4096)
        with pytest.raises(rapidmq.MessageTooLargeError) as err:
            receipt.result()
        assert err.value.code == 3001
        assert isinstance(err.value, rapidmq.PublishError)
        assert not err.value.retriable
        stats = producer.stats()
        assert (stats.requests, stats.retries) == (1, 0)
        # The rejected batch did not consume sequence numbers.
        assert producer.send("small").result().offset == 0


def test_unknown_topic_fails_at_once_with_topic_not_found(client, make_topic):
    """C05 non-retriable-errors-at-once (unknown and deleted topic)."""
    with pytest.raises(rapidmq.TopicNotFoundError) as err:
        client.producer("no-such-topic")
    assert err.value.code == 2001 and not err.value.retriable

    topic = make_topic(1)
    producer = client.producer(topic)
    client.admin().delete_topic(topic)
    receipt = producer.send("x")
    with pytest.raises(rapidmq.TopicNotFoundError):
        receipt.result()
    assert producer.stats().retries == 0


def test_a_lost_ack_is_retried_and_the_broker_returns_the_original_offsets(client, make_topic):
    """C06 idempotent-resend-after-lost-ack."""
    topic = make_topic(1)
    with client.producer(topic) as producer:
        producer._native._lose_acks(1)
        deliveries = publish_values(producer, 10)
        assert [d.offset for d in deliveries] == list(range(10))
        stats = producer.stats()
        assert stats.retries >= 1 and stats.duplicates >= 1, stats
    assert len(read_log(client, topic)) == 10, "the log holds one copy"


def test_a_resent_batch_is_deduplicated_across_a_broker_restart(broker, client, make_topic):
    """C07 idempotent-resend-across-restart."""
    topic = make_topic(1)
    batch = [f"m{i}" for i in range(5)]
    producer_id = 0x5EED
    first = client.publish_batch(topic, 0, batch, producer_id=producer_id, base_sequence=0)
    assert (first.base_offset, first.duplicate) == (0, False)

    broker.crash_and_restart()
    client.set_endpoints(broker.url)

    again = client.publish_batch(topic, 0, batch, producer_id=producer_id, base_sequence=0)
    assert again.duplicate
    assert (again.base_offset, again.count) == (0, 5)
    assert len(read_log(client, topic)) == 5

    following = client.publish_batch(topic, 0, batch, producer_id=producer_id, base_sequence=5)
    assert (following.base_offset, following.duplicate) == (5, False)
    with pytest.raises(rapidmq.OutOfOrderSequenceError) as err:
        client.publish_batch(topic, 0, batch, producer_id=producer_id, base_sequence=20)
    assert err.value.code == 3003


def test_send_accepts_str_bytes_bytearray_memoryview_headers_and_message_objects(client, make_topic):
    topic = make_topic(1)
    with client.producer(topic) as producer:
        producer.send("text", headers={"h": "v"}).result()
        producer.send(b"bytes", key=bytearray(b"k"), headers=[("a", b"1"), ("a", b"2")]).result()
        producer.send(memoryview(b"view")).result()
        producer.send(rapidmq.Message(b"msg", key="k2", timestamp_ms=1234)).result()
    log = read_log(client, topic)
    assert [m.value for m in log] == [b"text", b"bytes", b"view", b"msg"]
    assert log[0].headers == [("h", b"v")]
    assert log[1].headers == [("a", b"1"), ("a", b"2")] and log[1].key == b"k"
    assert log[3].timestamp_ms == 1234


def test_a_value_that_is_not_bytes_or_text_is_refused_not_coerced(client, make_topic):
    """`bytes(42)` is 42 zero bytes and `bytes([1, 2])` two bytes: neither is what the caller
    meant, so only str and buffer-protocol objects are payloads."""
    topic = make_topic(1)
    with client.producer(topic) as producer:
        for value in (42, [1, 2], None, 1.5):
            with pytest.raises(rapidmq.InvalidArgumentError, match="expected bytes"):
                producer.send(value)
        with pytest.raises(rapidmq.InvalidArgumentError, match="expected bytes"):
            producer.send(b"v", key=7)
        producer.send(array.array("B", [1, 2])).result()
    assert [m.value for m in read_log(client, topic)] == [b"\x01\x02"]


def test_a_closed_producer_refuses_sends_with_closed_error(client, make_topic):
    topic = make_topic(1)
    producer = client.producer(topic)
    producer.close()
    with pytest.raises(rapidmq.ClosedError) as err:
        producer.send("late")
    assert isinstance(err.value, rapidmq.InvalidArgumentError) and err.value.code == 1001


def test_native_module_is_private_and_receipts_are_shared_by_sync_and_async():
    assert rapidmq.SendReceipt is _native.SendReceipt


def test_on_delivery_is_called_once_with_the_delivery_or_the_error(
    client, make_topic, monkeypatch
):
    topic = make_topic(1, max_message_bytes=1024)
    outcomes: dict = {}
    arrived = threading.Semaphore(0)

    def recorder(name):  # type: ignore[no-untyped-def]
        def on_delivery(delivery, error):  # type: ignore[no-untyped-def]
            outcomes.setdefault(name, []).append((delivery, error))
            arrived.release()

        return on_delivery

    raised = []

    def unraisable(hook_args):  # type: ignore[no-untyped-def]
        raised.append(hook_args.exc_value)
        arrived.release()

    monkeypatch.setattr(sys, "unraisablehook", unraisable)

    def failing(delivery, error):  # type: ignore[no-untyped-def]
        raise ValueError("from the callback")

    with client.producer(topic) as producer:
        producer.send("ok", on_delivery=recorder("ok"))
        producer.flush()
        producer.send(b"\0" * 4096, on_delivery=recorder("too large"))
        producer.flush()
        producer.try_send("tried", on_delivery=recorder("tried"))
        producer.send("raises", on_delivery=failing)
        producer.flush()
    for _ in range(4):
        assert arrived.acquire(timeout=GUARD), f"callbacks so far: {outcomes} {raised}"
    (ok,) = outcomes["ok"]
    assert ok[1] is None and ok[0].offset == 0
    (too_large,) = outcomes["too large"]
    assert too_large[0] is None and isinstance(too_large[1], rapidmq.MessageTooLargeError)
    (tried,) = outcomes["tried"]
    assert tried[1] is None and tried[0].offset == 1
    assert [type(e) for e in raised] == [ValueError], "a raising callback goes to the hook"
