"""Admin conformance (C12, C13) against a real broker."""

from __future__ import annotations

import pytest

import rapidmq
from conftest import publish_values


def test_topics_can_be_created_listed_described_and_deleted(client):
    """C13 admin-topics-subscriptions-lag (topics)."""
    admin = client.admin()
    info = admin.create_topic("admin-topic", 3)
    assert len(info.partitions) == 3
    with pytest.raises(rapidmq.TopicAlreadyExistsError) as err:
        admin.create_topic("admin-topic")
    assert err.value.code == 2002 and isinstance(err.value, rapidmq.TopicError)
    assert any(t.name == "admin-topic" for t in admin.list_topics())
    assert admin.describe_topic("admin-topic").config.partitions == 3
    admin.delete_topic("admin-topic")
    with pytest.raises(rapidmq.TopicNotFoundError):
        admin.describe_topic("admin-topic")
    assert admin.status().topics == 0


def test_alter_topic_changes_what_it_names_and_keeps_the_rest(client, make_topic):
    topic = make_topic(2, retention_ms=60_000, max_message_bytes=4096)
    info = client.admin().alter_topic(topic, retention_ms=120_000, dedup_window_ms=5_000)
    assert (info.config.retention_ms, info.config.dedup_window_ms) == (120_000, 5_000)
    described = client.admin().describe_topic(topic).config
    assert (described.retention_ms, described.dedup_window_ms) == (120_000, 5_000)
    assert (described.partitions, described.max_message_bytes) == (2, 4096), "kept"
    with pytest.raises(rapidmq.TopicNotFoundError):
        client.admin().alter_topic("no-such-topic", retention_ms=1)


def test_bad_names_and_counts_are_rejected_with_stable_codes(client):
    """C12 bad-input-errors."""
    admin = client.admin()
    for name in ["bad name", "x" * 201]:
        with pytest.raises(rapidmq.InvalidNameError) as err:
            admin.create_topic(name)
        assert err.value.code == 1003 and not err.value.retriable
        assert isinstance(err.value, rapidmq.RequestError)
    with pytest.raises(rapidmq.SubscriptionNotFoundError) as err:
        admin.create_topic("exists", 1)
        admin.describe_subscription("exists", "nobody")
    assert err.value.code == 4001 and isinstance(err.value, rapidmq.SubscriptionError)
    with pytest.raises(rapidmq.InvalidPartitionCountError):
        admin.create_topic("too-many", 1_000_000)


def test_subscriptions_report_lag_and_can_be_seeked_and_deleted(client, make_topic):
    """C13 admin-topics-subscriptions-lag (subscriptions)."""
    topic = make_topic(2)
    admin = client.admin()
    sub = admin.create_subscription(topic, "audit", rapidmq.StartPosition.EARLIEST)
    assert sub.total_lag == 0 and sub.mode == "stream"
    with client.producer(topic) as producer:
        publish_values(producer, 50)
    assert admin.lag(topic, "audit") == 50
    assert admin.seek_subscription(topic, "audit", "latest").total_lag == 0
    assert admin.seek_subscription(topic, "audit", rapidmq.StartPosition.EARLIEST).total_lag == 50
    busy = max(admin.describe_topic(topic).partitions, key=lambda p: p.high_watermark)
    seeked = admin.seek_subscription(topic, "audit", rapidmq.StartPosition.offset(10), busy.partition)
    assert seeked.total_lag == 50 - 10
    assert len(admin.list_subscriptions(topic)) == 1
    admin.delete_subscription(topic, "audit")
    with pytest.raises(rapidmq.SubscriptionNotFoundError):
        admin.describe_subscription(topic, "audit")
