"""Configuration shows the core's defaults; unsupported options are explicit (C14)."""

from __future__ import annotations

import pytest

import rapidmq


def test_config_defaults_are_the_cores():
    d = rapidmq.DEFAULTS
    p = rapidmq.ProducerConfig()
    assert p.linger == d["producer"]["linger"] == 0.005
    assert p.max_batch_messages == 1000
    assert p.max_batch_bytes == 1024 * 1024
    assert p.idempotence is True
    c = rapidmq.ConsumerConfig()
    assert c.prefetch == 1000 and c.auto_commit is False and c.commit_interval == 0.5
    assert c.start == rapidmq.StartPosition.LATEST
    assert rapidmq.ClientConfig().endpoints == ("http://127.0.0.1:7420",)
    assert "linger=0.005" in repr(p)


def test_tls_and_credentials_are_rejected_as_unsupported_before_connecting():
    """C14 unsupported-options-are-explicit."""
    with pytest.raises(rapidmq.UnsupportedError) as err:
        rapidmq.Client("http://127.0.0.1:1", tls=rapidmq.TlsConfig())
    assert not err.value.retriable and err.value.code == 1001
    with pytest.raises(rapidmq.UnsupportedError):
        rapidmq.Client("http://127.0.0.1:1", token="secret")
    assert "secret" not in repr(rapidmq.ClientConfig(token="secret"))


def test_unreachable_endpoint_is_a_retriable_unavailable_error():
    """C14: nothing listens on port 1."""
    with pytest.raises(rapidmq.UnavailableError) as err:
        rapidmq.Client("http://127.0.0.1:1", connect_timeout=0.5)
    assert err.value.code == 5003 and err.value.retriable
    assert isinstance(err.value, rapidmq.BrokerError)


def test_bad_settings_are_invalid_arguments():
    with pytest.raises(rapidmq.InvalidArgumentError):
        rapidmq.Client("not-a-url")
    with pytest.raises(rapidmq.InvalidArgumentError):
        rapidmq.Client("http://127.0.0.1:1", connect_timeout=-1.0)


def test_invalid_producer_settings_are_refused(client, make_topic):
    topic = make_topic(1)
    with pytest.raises(rapidmq.InvalidArgumentError):
        client.producer(topic, max_batch_messages=0)
    with pytest.raises(rapidmq.InvalidArgumentError):
        client.consumer(topic, "s", prefetch=0)
