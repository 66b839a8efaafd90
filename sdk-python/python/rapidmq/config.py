"""Configuration objects. Every default comes from the client core (``rapidmq_core::defaults``),
read from the native module at import, so a Python producer batches exactly like a Rust one.

Durations are float seconds. ``repr(ProducerConfig())`` shows the effective defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple, Union

from . import _native

#: The core's defaults: ``{"client": {...}, "producer": {...}, "consumer": {...}, "run": {...}}``.
DEFAULTS: Dict[str, Dict[str, Any]] = _native.defaults()

_C = DEFAULTS["client"]
_P = DEFAULTS["producer"]
_S = DEFAULTS["consumer"]
#: The core's queue-handler defaults (``QueueConsumer.run``): concurrency and retry backoff.
RUN_DEFAULTS: Dict[str, Any] = DEFAULTS["run"]


@dataclass(frozen=True)
class StartPosition:
    """Where a new subscription (or a seek) starts: ``StartPosition.LATEST`` (the default),
    ``StartPosition.EARLIEST``, ``StartPosition.offset(n)`` or ``StartPosition.timestamp(ms)``.
    The strings ``"latest"`` and ``"earliest"`` are accepted wherever a position is."""

    kind: str
    value: int = 0

    LATEST = None  # type: StartPosition  # set below
    EARLIEST = None  # type: StartPosition  # set below

    @classmethod
    def offset(cls, offset: int) -> "StartPosition":
        """This offset, clamped to the retained range."""
        return cls("offset", offset)

    @classmethod
    def timestamp(cls, timestamp_ms: int) -> "StartPosition":
        """The first message appended at or after this time (ms since the epoch)."""
        return cls("timestamp", timestamp_ms)

    @classmethod
    def of(cls, position: "StartPositionLike") -> "StartPosition":
        """Normalises a position given as a ``StartPosition`` or ``"latest"``/``"earliest"``."""
        if isinstance(position, StartPosition):
            return position
        if position in ("latest", "earliest"):
            return cls(position)
        raise ValueError(f"not a start position: {position!r}")

    def _native(self) -> Tuple[str, int]:
        return (self.kind, self.value)


StartPosition.LATEST = StartPosition("latest")
StartPosition.EARLIEST = StartPosition("earliest")

StartPositionLike = Union[StartPosition, str]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by ``max_retries`` and ``delivery_timeout``.
    Only retriable codes are retried (by the core)."""

    initial_backoff: float = _P["retry"]["initial_backoff"]
    max_backoff: float = _P["retry"]["max_backoff"]
    max_retries: int = _P["retry"]["max_retries"]
    delivery_timeout: float = _P["retry"]["delivery_timeout"]


@dataclass(frozen=True)
class TlsConfig:
    """TLS settings for ``https://`` endpoints (TLS is on exactly for them).

    Each PEM is given as a file (``*_path``, read again at every reconnect, so rotated files are
    picked up) or inline (``*_pem``), not both. With no CA the system roots are trusted. A client
    certificate needs its key. A failed handshake raises ``TlsHandshakeFailedError`` (not
    retriable).
    """

    ca_cert_path: Optional[str] = None
    ca_cert_pem: Optional[str] = field(default=None, repr=False)
    client_cert_path: Optional[str] = None
    client_cert_pem: Optional[str] = field(default=None, repr=False)
    client_key_path: Optional[str] = None
    client_key_pem: Optional[str] = field(default=None, repr=False)
    server_name: Optional[str] = None


@dataclass(frozen=True)
class ClientConfig:
    """How to reach the broker. ``endpoints`` (``http://host:port``, or ``https://host:port`` for
    TLS) are tried in order.

    ``tls`` applies to ``https://`` endpoints; set with an ``http://`` endpoint it is an
    ``InvalidArgumentError``, so TLS is never silently off. ``token`` (an API token) is sent
    on every call; ``user``/``password`` log in at connect and the session is renewed before it
    expires. Secrets never appear in the repr.

    ``tenant`` is the tenant to act in, sent as ``rapidmq-tenant`` with every request (``None``:
    the credentials' tenant). Only a cluster admin may name a tenant other than its own; for
    anyone else, and for a tenant that does not exist, requests raise ``TenantNotFoundError``.
    Connecting raises ``InvalidArgumentError`` for a name that is not a tenant name
    (``[A-Za-z0-9._-]{1,64}``)."""

    endpoints: Tuple[str, ...] = tuple(_C["endpoints"])
    connect_timeout: float = _C["connect_timeout"]
    request_timeout: float = _C["request_timeout"]
    tls: Optional[TlsConfig] = None
    token: Optional[str] = field(default=None, repr=False)
    user: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)
    tenant: Optional[str] = None


@dataclass(frozen=True)
class ProducerConfig:
    """Producer settings: batching per partition (``linger``, ``max_batch_messages``,
    ``max_batch_bytes``), pipelining, buffering, idempotence, retries and compression."""

    linger: float = _P["linger"]
    max_batch_messages: int = _P["max_batch_messages"]
    max_batch_bytes: int = _P["max_batch_bytes"]
    max_in_flight_requests: int = _P["max_in_flight_requests"]
    max_in_flight_per_partition: int = _P["max_in_flight_per_partition"]
    max_buffered_messages: int = _P["max_buffered_messages"]
    idempotence: bool = _P["idempotence"]
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: How each batch's messages are packed: ``"none"``, ``"lz4"`` or ``"zstd"``. The broker
    #: stores them as sent and consumers unpack them; a batch that would not shrink goes plain.
    compression: str = _P["compression"]


@dataclass(frozen=True)
class QueueConfig:
    """Queue-mode settings, used when subscribing creates the subscription; ``None`` takes the
    broker default (ack deadline 30 s, 5 deliveries, dead letters to ``<topic>.dlq``)."""

    ack_deadline: Optional[float] = None
    max_deliveries: Optional[int] = None
    dead_letter_topic: Optional[str] = None


@dataclass(frozen=True)
class ConsumerConfig:
    """Consumer settings: start position of a new subscription, prefetch (credits), commit
    interval (queue mode: the ack interval), auto-commit, a display name, the reconnect backoff
    and, for queue mode, the subscription's :class:`QueueConfig`.

    ``prefetch`` is the most messages buffered ahead of ``poll``; 0, the default, means 10,000
    in stream mode and 1,000 in queue mode (where each buffered delivery holds a lease).
    ``prefetch_bytes`` bounds a stream consumer's buffer in bytes of delivered batches (passed
    by one batch at most); 0, the default, means 1 MiB. Queue mode ignores it."""

    start: StartPositionLike = StartPosition.LATEST
    prefetch: int = _S["prefetch"]
    prefetch_bytes: int = _S["prefetch_bytes"]
    commit_interval: float = _S["commit_interval"]
    auto_commit: bool = _S["auto_commit"]
    consumer_name: str = _S["consumer_name"]
    reconnect: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(**_S["reconnect"])
    )
    queue: QueueConfig = field(default_factory=QueueConfig)


def _merge(config: Any, cls: type, options: Dict[str, Any]) -> Any:
    base = config if config is not None else cls()
    return dataclasses.replace(base, **options) if options else base


def _to_native(config: Any) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, StartPosition):
            value = dataclasses.asdict(value)
        elif f.name == "start":
            value = StartPosition.of(value)._native()
        elif f.name == "endpoints":
            value = [value] if isinstance(value, str) else list(value)
        out[f.name] = value
    return out


__all__ = [
    "DEFAULTS",
    "ClientConfig",
    "ConsumerConfig",
    "ProducerConfig",
    "QueueConfig",
    "RetryPolicy",
    "StartPosition",
    "TlsConfig",
]
