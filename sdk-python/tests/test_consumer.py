"""Consumer conformance (C01, C09-C12) against a real broker."""

from __future__ import annotations

import pytest
import xxhash

import rapidmq
from conftest import eventually, publish_values


def poll_until(consumer, n, max_messages=1000):
    """Polls until ``n`` messages arrived; a 10 s silence fails the test."""
    out = []
    while len(out) < n:
        messages = consumer.poll(max_messages, 10.0)
        assert messages, f"stalled at {len(out)}"
        out += messages
    return out


def test_ten_thousand_keyed_messages_arrive_in_order_per_key(client, make_topic):
    """C01 publish-consume-10k-order-per-key."""
    topic = make_topic(4)
    with client.producer(topic) as producer:
        receipts = [producer.send(str(i), key=f"k{i % 10}") for i in range(10_000)]
        for r in receipts:
            r.result()
    with client.consumer(topic, "order", start="earliest", auto_commit=True) as consumer:
        last = {}
        for m in poll_until(consumer, 10_000):
            assert m.partition == xxhash.xxh3_64_intdigest(m.key) % 4, "key on its partition"
            value = int(m.value)
            assert last.get(m.key, -1) < value, "out of order"
            last[m.key] = value
        assert len(last) == 10


def test_prefetch_100_never_buffers_more_than_100_messages_ahead_of_poll(client, make_topic):
    """C09 prefetch-bound."""
    topic = make_topic(2)
    with client.producer(topic) as producer:
        publish_values(producer, 1000)
    with client.consumer(topic, "prefetch", start="earliest", prefetch=100) as consumer:
        received = 0
        while received < 1000:
            messages = consumer.poll(7, 10.0)
            assert messages, f"stalled at {received}"
            received += len(messages)
            assert consumer.stats().buffered <= 100
            for m in messages:
                consumer.ack(m)
        stats = consumer.stats()
        assert 7 < stats.max_buffered <= 100, stats
        assert stats.received == 1000


def test_prefetch_bytes_bound_the_buffer_and_every_message_still_arrives(client, make_topic):
    """C31 prefetch-bytes-bound: 1,000 messages of 1 kB pass through a 64 KiB window again and
    again; a byte credit never granted back would stall the consumer before the end."""
    topic = make_topic(1)
    with client.producer(topic, max_batch_messages=50) as producer:
        receipts = [producer.send(b"v" * 1000) for _ in range(1000)]
        for r in receipts:
            r.result()
    with client.consumer(topic, "bytes", start="earliest", prefetch_bytes=64 * 1024) as consumer:
        eventually("the window filled", lambda: consumer.stats().buffered > 50)
        received = 0
        while received < 1000:
            messages = consumer.poll(7, 10.0)
            assert messages, f"stalled at {received}"
            received += len(messages)
        stats = consumer.stats()
        assert stats.received == 1000
        # the window plus the one batch of 50 that may pass it
        assert stats.max_buffered <= 64 * 1024 // 1000 + 50, stats


def test_acked_messages_are_committed_on_close_and_a_new_member_resumes_after_them(client, make_topic):
    """C10 commit-and-resume (and C14: nack in stream mode is unsupported)."""
    topic = make_topic(1)
    with client.producer(topic) as producer:
        publish_values(producer, 100)
    with client.consumer(topic, "resume", start="earliest", prefetch=10) as consumer:
        acked = 0
        while acked < 60:
            for m in consumer.poll(60 - acked, 10.0):
                assert m.offset == acked
                consumer.ack(m)
                acked += 1
    info = client.admin().describe_subscription(topic, "resume")
    assert info.cursors[0].committed_offset == 60
    assert info.total_lag == 40

    with client.consumer(topic, "resume") as following:
        first = following.poll(1, 10.0)[0]
        assert first.offset == 60
        with pytest.raises(rapidmq.UnsupportedError) as err:
            following.nack(first, 1.0)
        assert err.value.code == 1001 and not err.value.retriable


def test_out_of_order_acks_commit_only_up_to_the_first_unacked_message(client, make_topic):
    """C11 contiguous-commits."""
    topic = make_topic(1)
    with client.producer(topic) as producer:
        publish_values(producer, 10)
    with client.consumer(topic, "gaps", start="earliest") as consumer:
        for m in poll_until(consumer, 10, 10):
            if m.offset != 4:
                consumer.ack(m)
    assert client.admin().describe_subscription(topic, "gaps").cursors[0].committed_offset == 4


def test_subscribing_to_an_unknown_topic_fails_with_topic_not_found(client):
    """C12 bad-input-errors (consumer side)."""
    with pytest.raises(rapidmq.TopicNotFoundError) as err:
        client.consumer("missing-topic", "s")
    assert err.value.code == 2001
    with pytest.raises(rapidmq.InvalidArgumentError) as err:
        client.consumer("bad/name")
    assert err.value.code == 1001


def test_members_of_one_subscription_split_the_partitions_and_together_see_everything(client, make_topic):
    topic = make_topic(2)
    with client.producer(topic) as producer:
        publish_values(producer, 200)
    options = dict(start="earliest", prefetch=10, auto_commit=True)
    with client.consumer(topic, "group", **options) as a, client.consumer(
        topic, "group", **options
    ) as b:
        seen = set()
        rounds = 0
        while len(seen) < 200 or len(a.assignment()) != 1 or len(b.assignment()) != 1:
            rounds += 1
            assert rounds < 10_000, (len(seen), a.assignment(), b.assignment())
            for member in (a, b):
                seen.update(m.value for m in member.poll(50, 0.2))
        assert a.assignment() != b.assignment()


def test_an_ephemeral_consumer_tails_new_messages_only(client, make_topic):
    topic = make_topic(1)
    with client.producer(topic) as producer:
        publish_values(producer, 5)
        with client.consumer(topic) as tail:
            assert tail.subscription == ""
            producer.send("new").result()
            assert [m.value for m in poll_until(tail, 1)] == [b"new"]


def test_iterating_a_consumer_takes_only_what_it_yields_and_ends_on_close(client, make_topic):
    topic = make_topic(1)
    with client.producer(topic) as producer:
        publish_values(producer, 50)
    consumer = client.consumer(topic, "iterate", start="earliest", auto_commit=True)
    seen = []
    for message in consumer:
        seen.append(int(message.value))
        if len(seen) == 20:
            break
    assert seen == list(range(20))
    consumer.close()
    assert list(consumer) == [], "iteration ends once the consumer is closed"
    # Auto-commit counts what the consumer hands out as acknowledged: iteration that took more
    # than it yielded would commit messages the loop never saw.
    assert client.admin().lag(topic, "iterate") == 30


def test_iterating_a_queue_consumer_yields_deliveries_to_ack(client, make_topic):
    topic = make_topic(2)
    with client.producer(topic) as producer:
        publish_values(producer, 10)
    with client.queue_consumer(topic, "iterate-jobs", start="earliest") as worker:
        done = []
        for delivery in worker:
            assert delivery.attempt == 1
            worker.ack(delivery)
            done.append(int(delivery.value))
            if len(done) == 10:
                break
    assert sorted(done) == list(range(10))
