"""A message to publish. ``Producer.send`` also takes the same fields as keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Optional, Tuple, Union

#: ``bytes``, ``bytearray``, ``memoryview`` or ``str`` (sent as UTF-8).
Payload = Union[bytes, bytearray, memoryview, str]
#: A mapping or a sequence of ``(name, value)`` pairs; names may repeat in a sequence.
Headers = Union[Mapping[str, Payload], Iterable[Tuple[str, Payload]]]


@dataclass(frozen=True)
class Message:
    """A message to publish.

    Attributes:
        value: the payload.
        key: messages with the same key go to the same partition (``xxh3_64(key) % partitions``).
        headers: ordered application headers.
        timestamp_ms: producer timestamp; the current time when ``None``.
        delay: seconds the broker holds the message in its persisted schedule before appending it.
        deliver_at_ms: deliver at this time (ms since the epoch) instead.
        ttl: seconds to live after the broker appended it; an expired message is never delivered.
        priority: 0 (default) to 9; queue subscriptions deliver higher priorities first.
    """

    value: Payload
    key: Optional[Payload] = None
    headers: Optional[Headers] = None
    timestamp_ms: Optional[int] = None
    delay: Optional[float] = None
    deliver_at_ms: Optional[int] = None
    ttl: Optional[float] = None
    priority: Optional[int] = None
