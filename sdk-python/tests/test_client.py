"""Client.close(): flushes producers, commits consumers, and later calls raise ClosedError."""

from __future__ import annotations

import pytest

import rapidmq
from conftest import publish_values


def test_client_close_flushes_producers_commits_consumers_and_later_calls_raise(broker, client, make_topic):
    topic = make_topic(1)
    with client.producer(topic) as setup:
        publish_values(setup, 20)

    other = rapidmq.Client(broker.url)
    assert not other.is_closed()
    producer = other.producer(topic, linger=3600.0)
    consumer = other.consumer(topic, "closing", start="earliest", commit_interval=3600.0)
    polled = []
    while len(polled) < 20:
        polled.extend(consumer.poll(20, 10.0))
    for message in polled:
        consumer.ack(message)
    receipts = [producer.send(str(i)) for i in range(50)]
    assert not any(r.done() for r in receipts), "the hour-long linger holds the batch"

    other.close()

    assert other.is_closed()
    assert all(r.done() for r in receipts), "close flushed the producer"
    assert [r.result().offset for r in receipts] == list(range(20, 70))
    assert client.admin().lag(topic, "closing") == 50, "close committed the 20 acks"
    with pytest.raises(rapidmq.ClosedError):
        producer.send("late")
    with pytest.raises(rapidmq.ClosedError):
        consumer.poll(1, 0.0)
    with pytest.raises(rapidmq.ClosedError):
        other.admin()
    other.close()  # idempotent
