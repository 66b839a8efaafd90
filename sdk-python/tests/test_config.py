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
    # 0: the mode's default window (10,000 messages and 1 MiB streaming, 1,000 in queue mode)
    assert c.prefetch == 0 and c.prefetch_bytes == 0
    assert c.auto_commit is False and c.commit_interval == 0.5
    assert c.start == rapidmq.StartPosition.LATEST
    assert rapidmq.ClientConfig().endpoints == ("http://127.0.0.1:7420",)
    assert "linger=0.005" in repr(p)


def test_credentials_are_passed_through_and_never_printed():
    """C14: credentials are no longer UNSUPPORTED; they reach the connect (nothing on port 1)."""
    with pytest.raises(rapidmq.UnavailableError) as err:
        rapidmq.Client("http://127.0.0.1:1", token="secret")
    assert err.value.retriable
    with pytest.raises(rapidmq.UnavailableError):
        rapidmq.Client("http://127.0.0.1:1", user="alice", password="secret")
    assert "secret" not in repr(rapidmq.ClientConfig(token="secret"))
    assert "secret" not in repr(rapidmq.ClientConfig(user="alice", password="secret"))


def test_tls_settings_are_checked_before_connecting():
    """TLS with an http:// endpoint would silently not be used; a PEM given twice is ambiguous."""
    with pytest.raises(rapidmq.InvalidArgumentError) as err:
        rapidmq.Client("http://127.0.0.1:1", tls=rapidmq.TlsConfig())
    assert type(err.value) is rapidmq.InvalidArgumentError and not err.value.retriable
    with pytest.raises(rapidmq.InvalidArgumentError):
        rapidmq.Client(
            "https://127.0.0.1:1",
            tls=rapidmq.TlsConfig(ca_cert_path="ca.pem", ca_cert_pem="-----BEGIN"),
        )
    with pytest.raises(rapidmq.InvalidArgumentError):
        rapidmq.Client("https://127.0.0.1:1", tls=rapidmq.TlsConfig(client_cert_path="c.pem"))
    key = "-----BEGIN PRIVATE KEY-----"
    assert key not in repr(rapidmq.TlsConfig(client_key_pem=key))


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
        client.consumer(topic, "s", commit_interval=0)
