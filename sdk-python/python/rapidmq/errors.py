"""The RapidMQ exception hierarchy, generated from the error-code table.

Every exception is a :class:`RapidMQError` with ``.code`` (the stable number), ``.name``,
``.retriable`` and ``.message`` (not API). Subclasses follow the code ranges::

    RapidMQError
    ├── RequestError        1000-1999  InvalidArgumentError, MalformedRequestError, InvalidNameError, ...
    │   └── InvalidArgumentError
    │       ├── UnsupportedError   an option or operation this version does not have (nack in stream mode)
    │       └── ClosedError        the producer, consumer or client was closed
    │           └── ForkError      an object used in a child process after fork()
    ├── TopicError          2000-2999  TopicNotFoundError, TopicAlreadyExistsError, ...
    ├── PublishError        3000-3999  MessageTooLargeError, OutOfOrderSequenceError, ...
    ├── SubscriptionError   4000-4999  SubscriptionNotFoundError, ...
    ├── BrokerError         5000-5999  UnavailableError, TimeoutError (also a builtin TimeoutError), ...
    └── AuthError           6000-6999  UnauthenticatedError, PermissionDeniedError, TlsHandshakeFailedError

``UnsupportedError``, ``ClosedError`` and ``ForkError`` carry code ``INVALID_ARGUMENT`` (1001), the
code the core gives them; they only refine it.
"""

from __future__ import annotations

from typing import Dict, Type

from ._error_classes import *  # noqa: F401,F403  (generated: one class per code)
from ._error_classes import BY_CODE, InvalidArgumentError
from ._error_classes import __all__ as _generated
from ._errors_base import (
    RANGES,
    AuthError,
    BrokerError,
    PublishError,
    RapidMQError,
    RequestError,
    SubscriptionError,
    TopicError,
)


class UnsupportedError(InvalidArgumentError):
    """The option or operation is not supported (yet) in this mode or version."""


class ClosedError(InvalidArgumentError):
    """The producer, consumer, client or runtime has been closed; create a new one."""


class ForkError(ClosedError):
    """A RapidMQ object created before ``fork()`` was used in the child process. Create a new
    ``Client`` in the child instead (or use the ``spawn`` start method of multiprocessing)."""


_BY_KIND: Dict[str, Type[RapidMQError]] = {
    "unsupported": UnsupportedError,
    "closed": ClosedError,
    "forked": ForkError,
}


def error_class(code: int) -> Type[RapidMQError]:
    """The class of ``code``: its own, else its range's (a code newer than this package)."""
    cls = BY_CODE.get(code)
    if cls is not None:
        return cls
    return RANGES.get(code // 1000, (RapidMQError, ""))[0]


def _from_native(code: int, kind: str, message: str, retriable: bool) -> RapidMQError:
    """Called by the native module to build the exception for a core error."""
    cls = _BY_KIND.get(kind) or error_class(code)
    return cls(message, code=code, retriable=retriable)


__all__ = [
    "RapidMQError",
    "RequestError",
    "TopicError",
    "PublishError",
    "SubscriptionError",
    "BrokerError",
    "AuthError",
    "UnsupportedError",
    "ClosedError",
    "ForkError",
    "error_class",
    *_generated,
]
