"""RapidMQ client for Python.

A thin layer over the shared Rust client core (the same engine as the Rust, Go and Java SDKs):
batching, retries, idempotence, flow control, commits and reconnects all run in Rust.

- Sync API: :class:`Client`, :class:`Producer`, :class:`Consumer` (stream mode),
  :class:`QueueConsumer` (queue mode), :class:`Admin` (this module).
  Blocking calls release the GIL and are interruptible by Ctrl-C.
- asyncio API: :mod:`rapidmq.aio`.
- Configuration: :class:`ClientConfig`, :class:`ProducerConfig`, :class:`ConsumerConfig` show
  the core's defaults.
- JSON: :func:`json_message` writes a value (dataclasses too) as a :class:`Message`;
  ``message.json()`` / ``message.json(SomeDataclass)`` reads a received one back.
- Errors: :class:`RapidMQError` and one subclass per stable error code (:mod:`rapidmq.errors`).
- Version: ``__version__`` (the release, the same for every RapidMQ artifact) and
  ``__git_revision__`` (the git revision the native core was built from, or ``"unknown"``).

Objects created before ``fork()`` raise :class:`ForkError` in the child; create a new
:class:`Client` there.
"""

import atexit as _atexit

from . import _native
from ._native import (
    CONTENT_TYPE_HEADER,
    CORRELATION_ID_HEADER,
    JSON_CONTENT_TYPE,
    REPLY_TO_HEADER,
    AuditEvent,
    AuditPage,
    BrokerStatus,
    ClusterNode,
    ClusterStatus,
    ConsumerStats,
    CreatedToken,
    DeadLetter,
    DeadLetterPage,
    DeadLetterReplay,
    Delivery,
    FetchResult,
    Identity,
    LeaderRebalance,
    MembershipChange,
    MemberInfo,
    PartitionCursor,
    PartitionInfo,
    ProducerStats,
    PublishAck,
    QueueConsumerStats,
    QueueMessage,
    QueueSettings,
    QueueStats,
    ReceivedMessage,
    ReplicaMove,
    RoleBinding,
    RoleInfo,
    SendReceipt,
    SubscriptionInfo,
    TenantInfo,
    TenantQuotas,
    TenantUsage,
    TokenInfo,
    TopicInfo,
    TopicSettings,
    UserInfo,
    __git_revision__,
    __version__,
)
from .audit import AuditQuery
from .client import Admin, Client, Consumer, Producer, QueueConsumer, retry_delay
from .config import (
    DEFAULTS,
    ClientConfig,
    ConsumerConfig,
    ProducerConfig,
    QueueConfig,
    RetryPolicy,
    StartPosition,
    TlsConfig,
)
from .errors import *  # noqa: F401,F403
from .errors import __all__ as _errors_all
from .message import Message
from ._json import json_message

from . import aio  # noqa: E402  (after the sync names it re-uses)

__all__ = [
    "Admin",
    "AuditEvent",
    "AuditPage",
    "AuditQuery",
    "BrokerStatus",
    "CONTENT_TYPE_HEADER",
    "CORRELATION_ID_HEADER",
    "Client",
    "ClientConfig",
    "ClusterNode",
    "ClusterStatus",
    "Consumer",
    "ConsumerConfig",
    "ConsumerStats",
    "CreatedToken",
    "DEFAULTS",
    "DeadLetter",
    "DeadLetterPage",
    "DeadLetterReplay",
    "Delivery",
    "FetchResult",
    "Identity",
    "JSON_CONTENT_TYPE",
    "LeaderRebalance",
    "MembershipChange",
    "MemberInfo",
    "Message",
    "PartitionCursor",
    "PartitionInfo",
    "Producer",
    "ProducerConfig",
    "ProducerStats",
    "PublishAck",
    "QueueConfig",
    "QueueConsumer",
    "QueueConsumerStats",
    "QueueMessage",
    "QueueSettings",
    "QueueStats",
    "REPLY_TO_HEADER",
    "ReceivedMessage",
    "ReplicaMove",
    "RetryPolicy",
    "RoleBinding",
    "RoleInfo",
    "SendReceipt",
    "StartPosition",
    "SubscriptionInfo",
    "TenantInfo",
    "TenantQuotas",
    "TenantUsage",
    "TlsConfig",
    "TokenInfo",
    "TopicInfo",
    "TopicSettings",
    "UserInfo",
    "aio",
    "json_message",
    "retry_delay",
    "__git_revision__",
    "__version__",
    *_errors_all,
]


# Stop the core's runtime threads before the interpreter finalizes, so none of them calls into
# Python (completing an asyncio future, dropping an object) while it is being torn down.
_atexit.register(_native.shutdown)
