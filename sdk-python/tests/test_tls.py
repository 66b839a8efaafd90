"""C17 tls (docs/sdk-conformance.md) against real brokers: a custom CA given as a file or as PEM,
a wrong CA, an ``https://`` endpoint at a plaintext broker, and mutual TLS. Certificates come
from ``rapidmq tls dev-certs``, as in the other SDKs' suites."""

from __future__ import annotations

import pathlib
import subprocess
from typing import Optional

import pytest

import rapidmq
from conftest import broker_binary, unique_topic


class Certs:
    """A fresh development CA with a server certificate for localhost and 127.0.0.1 and a client
    certificate for alice."""

    def __init__(self, dir: pathlib.Path) -> None:
        self.dir = dir
        subprocess.run(
            [broker_binary(), "tls", "dev-certs", "--client", "alice", "--out", str(dir)],
            check=True,
            capture_output=True,
        )

    def file(self, name: str) -> str:
        return str(self.dir / name)

    def read(self, name: str) -> str:
        return (self.dir / name).read_text()

    def serve_args(self, client_auth: Optional[str] = None) -> list:
        args = ["--tls-cert-file", self.file("server.pem"), "--tls-key-file", self.file("server.key")]
        if client_auth is not None:
            args += ["--tls-client-ca-file", self.file("ca.pem"), "--tls-client-auth", client_auth]
        return args


@pytest.fixture
def certs(tmp_path: pathlib.Path) -> Certs:
    return Certs(tmp_path / "certs")


@pytest.fixture
def other_certs(tmp_path: pathlib.Path) -> Certs:
    return Certs(tmp_path / "other")


def https(broker) -> str:  # type: ignore[no-untyped-def]
    return f"https://{broker.grpc}"


def round_trip(client: rapidmq.Client, value: str) -> None:
    """Publishes one message on a new topic and consumes it back."""
    topic = unique_topic()
    client.admin().create_topic(topic, 1)
    with client.producer(topic) as producer:
        producer.send(value).result()
    with client.consumer(topic, "tls", start="earliest") as consumer:
        messages = consumer.poll(1, 10.0)
        assert [m.value for m in messages] == [value.encode()]


def assert_handshake_failed(err: rapidmq.RapidMQError, hint: str) -> None:
    message = str(err)
    assert type(err) is rapidmq.TlsHandshakeFailedError, message
    assert err.code == 6010 and not err.retriable, message
    assert "TLS handshake" in message and hint in message, message


def test_c17_a_custom_ca_given_as_a_file_or_as_pem_is_trusted(certs, start_broker):
    """C17 tls: custom CA."""
    broker = start_broker(*certs.serve_args())
    tls = rapidmq.TlsConfig(ca_cert_path=certs.file("ca.pem"))
    with rapidmq.Client(https(broker), tls=tls) as client:
        round_trip(client, "over TLS, CA file")
    tls = rapidmq.TlsConfig(ca_cert_pem=certs.read("ca.pem"), server_name="localhost")
    with rapidmq.Client(https(broker), tls=tls) as client:
        round_trip(client, "over TLS, CA PEM")


def test_c17_a_wrong_ca_fails_clearly_and_is_not_retriable(certs, other_certs, start_broker):
    """C17 tls: wrong CA."""
    broker = start_broker(*certs.serve_args())
    with pytest.raises(rapidmq.RapidMQError) as err:
        rapidmq.Client(https(broker), tls=rapidmq.TlsConfig(ca_cert_path=other_certs.file("ca.pem")))
    assert_handshake_failed(err.value, "trusted CA")


def test_c17_https_at_a_plaintext_broker_fails_clearly(certs, start_broker):
    """C17 tls: plaintext broker at an https:// endpoint."""
    broker = start_broker()
    with pytest.raises(rapidmq.RapidMQError) as err:
        rapidmq.Client(https(broker), tls=rapidmq.TlsConfig(ca_cert_path=certs.file("ca.pem")))
    assert_handshake_failed(err.value, "did not answer with TLS")


def test_c17_mutual_tls_presents_the_client_certificate(certs, start_broker):
    """C17 tls: client_auth=required."""
    broker = start_broker(*certs.serve_args("required"))
    tls = rapidmq.TlsConfig(
        ca_cert_path=certs.file("ca.pem"),
        client_cert_path=certs.file("client.pem"),
        client_key_pem=certs.read("client.key"),
    )
    with rapidmq.Client(https(broker), tls=tls) as client:
        round_trip(client, "over mutual TLS")

    # Without a certificate the broker refuses the handshake. With TLS 1.3 the client learns
    # that only after its side of the handshake, so the connect or the first call fails.
    with pytest.raises(rapidmq.RapidMQError):
        with rapidmq.Client(https(broker), tls=rapidmq.TlsConfig(ca_cert_path=certs.file("ca.pem"))) as client:
            client.admin().list_topics()
