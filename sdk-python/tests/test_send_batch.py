"""``Producer.send_batch``: many messages per native call, one receipt per message, in order,
against a real broker (sync and asyncio)."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

import rapidmq
from rapidmq import aio
from conftest import GUARD, read_log, unique_topic


def test_send_batch_queues_payloads_and_messages_in_order_with_their_offsets(client, make_topic):
    topic = make_topic(1)
    batch = [
        b"bytes",
        "text",
        bytearray(b"array"),
        memoryview(b"view"),
        rapidmq.Message(b"message", key="k", headers=[("h", b"1"), ("h", b"2")], timestamp_ms=1234),
    ]
    with client.producer(topic) as producer:
        receipts = producer.send_batch(batch)
        assert all(isinstance(r, rapidmq.SendReceipt) for r in receipts)
        assert [r.result().offset for r in receipts] == [0, 1, 2, 3, 4]
        # Any iterable, a generator included.
        more = producer.send_batch(f"g{i}" for i in range(3))
        assert [r.result().offset for r in more] == [5, 6, 7]
        assert producer.send_batch([]) == []
    log = read_log(client, topic)
    assert [m.value for m in log] == [b"bytes", b"text", b"array", b"view", b"message", b"g0", b"g1", b"g2"]
    assert (log[4].key, log[4].headers, log[4].timestamp_ms) == (b"k", [("h", b"1"), ("h", b"2")], 1234)
    assert log[0].key is None


def test_receipts_stay_out_of_the_cycle_collector_and_still_resolve(client, make_topic):
    # A receipt holds no Python object, so it is untracked: a program holding many receipts does
    # not have the collector walk them on every collection (the batch send benchmark spent 39%
    # of its time there).
    topic = make_topic(1)
    with client.producer(topic, max_buffered_messages=10) as producer:
        receipts = [producer.send(b"one"), producer.try_send(b"two")]
        receipts += producer.send_batch([b"three", b"four"])
        receipts += producer.send_batch([b"five"] * 50)  # more than the buffer: waits for room
        assert not any(gc.is_tracked(r) for r in receipts)
        gc.collect()
        assert [r.result().offset for r in receipts] == list(range(54))
    assert len(read_log(client, topic)) == 54


def test_a_batch_larger_than_the_buffer_waits_for_room_and_keeps_its_order(client, make_topic):
    topic = make_topic(3)
    with client.producer(topic, max_buffered_messages=10) as producer:
        receipts = producer.send_batch(
            rapidmq.Message(f"{i}", key=f"k{i % 5}") for i in range(2_000)
        )
        deliveries = [r.result() for r in receipts]
        assert producer.stats().messages_acked == 2_000
    assert all(d.status == "appended" for d in deliveries)
    by_key: dict = {}
    for m in read_log(client, topic):
        by_key.setdefault(m.key, []).append(int(m.value))
    assert sorted(by_key) == [f"k{k}".encode() for k in range(5)]
    for k, values in by_key.items():
        assert values == sorted(values), f"{k!r} kept its order"
    assert sum(len(v) for v in by_key.values()) == 2_000


def test_an_invalid_message_fails_the_call_with_its_index_and_queues_none(client, make_topic):
    """Conformance C30: a batch is queued whole or not at all."""
    topic = make_topic(1)
    with client.producer(topic) as producer:
        with pytest.raises(rapidmq.InvalidArgumentError) as err:
            producer.send_batch([b"ok", 42, b"never"])
        assert "message 1" in str(err.value) and "int" in str(err.value)
        with pytest.raises(rapidmq.InvalidArgumentError) as err:
            producer.send_batch([b"ok", rapidmq.Message(b"x", priority=300)])
        assert "message 1" in str(err.value) and "priority" in str(err.value)
        with pytest.raises(rapidmq.InvalidArgumentError) as err:
            producer.send_batch([rapidmq.Message(b"x", delay=-1.0)])
        assert "message 0" in str(err.value) and "delay" in str(err.value)
        with pytest.raises(rapidmq.InvalidArgumentError) as err:
            producer.send_batch([b"ok", rapidmq.Message(b"x", timestamp_ms=2**62)])
        assert "message 1" in str(err.value) and "timestamp" in str(err.value)
        producer.flush()
        assert producer.stats().messages_sent == 0
        assert producer.send_batch([b"after"])[0].result().offset == 0
    assert [m.value for m in read_log(client, topic)] == [b"after"]


def test_a_message_the_broker_refuses_fails_the_producer_batch_it_went_in_and_no_other(
    client, make_topic
):
    """priority 99 is the broker's to refuse (INVALID_PRIORITY, for the whole wire batch): the
    messages batched with it fail with the same error, later batches are appended."""
    topic = make_topic(1)
    batch = [rapidmq.Message(f"m{i}", priority=99 if i == 2 else None) for i in range(10)]
    with client.producer(topic, linger=3600.0, max_batch_messages=5) as producer:
        receipts = producer.send_batch(batch)
        producer.flush()
        for receipt in receipts[:5]:
            with pytest.raises(rapidmq.InvalidPriorityError) as err:
                receipt.result()
            assert err.value.code == 3005 and not err.value.retriable
        assert [r.result().offset for r in receipts[5:]] == [0, 1, 2, 3, 4]
        assert producer.stats().messages_failed == 5
    assert [m.value for m in read_log(client, topic)] == [f"m{i}".encode() for i in range(5, 10)]


def test_on_delivery_is_called_for_every_message_of_a_batch_in_batch_order(client, make_topic):
    topic = make_topic(1, max_message_bytes=1024)
    outcomes = []
    all_arrived = threading.Event()

    def on_delivery(delivery, error):  # type: ignore[no-untyped-def]
        outcomes.append((delivery.offset if delivery else None, type(error)))
        if len(outcomes) == 1_001:
            all_arrived.set()

    with client.producer(topic, max_buffered_messages=100) as producer:
        producer.send_batch((str(i) for i in range(1_000)), on_delivery=on_delivery)
        producer.flush()
        producer.send_batch([b"\0" * 4096], on_delivery=on_delivery)
    assert all_arrived.wait(GUARD), f"{len(outcomes)} callbacks"
    assert outcomes[:1_000] == [(i, type(None)) for i in range(1_000)]
    assert outcomes[1_000] == (None, rapidmq.MessageTooLargeError)


def test_a_closed_producer_refuses_a_batch_with_closed_error(client, make_topic):
    topic = make_topic(1)
    producer = client.producer(topic)
    producer.close()
    with pytest.raises(rapidmq.ClosedError):
        producer.send_batch([b"late"])


@pytest.mark.asyncio
async def test_asyncio_send_batch_queues_in_order_and_waits_for_room_without_blocking_the_loop(
    broker,
):
    async with aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        await client.admin().create_topic(topic, 1)
        async with client.producer(topic, max_buffered_messages=10) as producer:
            small = await producer.send_batch([b"a", rapidmq.Message("b", key="k")])
            assert [(await r).offset for r in small] == [0, 1]
            with pytest.raises(rapidmq.InvalidArgumentError):
                await producer.send_batch([b"ok", object()])
            # The loop keeps running while the batch waits for room.
            ticks = 0

            async def tick() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            ticker = asyncio.ensure_future(tick())
            receipts = await producer.send_batch(str(i) for i in range(1_000))
            ticker.cancel()
            offsets = [(await r).offset for r in receipts]
        assert offsets == list(range(2, 1_002))
        assert ticks > 0
        with pytest.raises(rapidmq.ClosedError):
            await producer.send_batch([b"closed"])
