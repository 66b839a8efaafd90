"""The roots of the RapidMQ exception hierarchy: one base class and one class per code range.

The per-code classes are generated from the error-code table into ``_error_classes.py``;
``rapidmq.errors`` assembles everything.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Type


class RapidMQError(Exception):
    """Base of every RapidMQ error.

    Attributes:
        code: the stable numeric error code (API; see ``docs/errors.md``).
        name: the code's name, e.g. ``"TOPIC_NOT_FOUND"``.
        retriable: whether the same request may succeed later. The client core has already
            retried retriable failures within its budget before raising.
        message: human-readable detail; not API, do not parse it.
    """

    code: int = 0
    name: str = ""
    retriable: bool = False

    def __init__(
        self, message: str = "", *, code: Optional[int] = None, retriable: Optional[bool] = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if retriable is not None:
            self.retriable = retriable

    def __str__(self) -> str:
        if self.name:
            return f"{self.name} ({self.code}): {self.message}"
        return self.message

    def __reduce__(self):  # keep code and retriable across pickling (multiprocessing)
        return (_rebuild, (type(self), self.message, self.code, self.retriable))


def _rebuild(cls: Type[RapidMQError], message: str, code: int, retriable: bool) -> RapidMQError:
    return cls(message, code=code, retriable=retriable)


class RequestError(RapidMQError):
    """Codes 1000-1999: the request itself is invalid (malformed, bad arguments). Fix the call."""


class TopicError(RapidMQError):
    """Codes 2000-2999: topics and partitions."""


class PublishError(RapidMQError):
    """Codes 3000-3999: publishing."""


class SubscriptionError(RapidMQError):
    """Codes 4000-4999: subscriptions and consuming."""


class BrokerError(RapidMQError):
    """Codes 5000-5999: the broker (storage, overload, shutdown, timeouts)."""


class AuthError(RapidMQError):
    """Codes 6000-6999: authentication and authorisation."""


#: The class of each code range, keyed by ``code // 1000``.
RANGES: Dict[int, Tuple[Type[RapidMQError], str]] = {
    1: (RequestError, "the request itself"),
    2: (TopicError, "topics and partitions"),
    3: (PublishError, "publishing"),
    4: (SubscriptionError, "subscriptions and consuming"),
    5: (BrokerError, "the broker"),
    6: (AuthError, "authentication and authorisation"),
}
