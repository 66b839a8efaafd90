"""Type stubs of the private native module (PyO3 over rapidmq-core). Use the public classes of
``rapidmq`` and ``rapidmq.aio``; these are their building blocks."""

from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    Generator,
    Iterable,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    TypeVar,
    Union,
    overload,
)

_T = TypeVar("_T")

__version__: str
__git_revision__: str
REPLY_TO_HEADER: str
CORRELATION_ID_HEADER: str
CONTENT_TYPE_HEADER: str
JSON_CONTENT_TYPE: str

def connect(config: Dict[str, Any], asyncio: bool = False) -> Any: ...
def defaults() -> Dict[str, Dict[str, Any]]: ...
def error_codes() -> List[Tuple[int, str, bool, int, int]]: ...
def retry_delay(attempt: int, retry_backoff: float, max_retry_backoff: float) -> float: ...
def shutdown() -> None: ...

class Delivery:
    """What happened to a sent message."""

    partition: int
    offset: Optional[int]
    durability: str
    status: str

class SendReceipt:
    """The eventual result of one send: ``result()`` blocks, ``await receipt`` in asyncio."""

    def done(self) -> bool: ...
    def result(self) -> Delivery: ...
    def result_async(self) -> Awaitable[Delivery]: ...
    def __await__(self) -> Generator[Any, None, Delivery]: ...
    def add_done_callback(self, callback: Callable[[Optional[Delivery], Optional[BaseException]], Any]) -> None: ...

class PublishAck:
    partition: int
    base_offset: int
    count: int
    durability: str
    duplicate: bool
    append_time_ms: int
    scheduled: int
    deduplicated: List[int]

class ReceivedMessage:
    """A consumed message."""

    topic: str
    partition: int
    offset: int
    key: Optional[bytes]
    value: bytes
    headers: List[Tuple[str, bytes]]
    timestamp_ms: int
    append_time_ms: int
    deliver_at_ms: Optional[int]
    ttl: Optional[float]
    priority: int
    @overload
    def json(self) -> Any:
        """The value parsed as JSON. Raises ``InvalidArgumentError`` when it is not JSON."""
    @overload
    def json(self, cls: Type[_T]) -> _T:
        """The dataclass ``cls`` built from the value parsed as JSON. Raises
        ``InvalidArgumentError`` when it is not JSON or ``cls`` cannot be built from it."""

class TopicSettings:
    partitions: int
    retention_ms: Optional[int]
    retention_bytes: Optional[int]
    retention_messages: Optional[int]
    max_message_bytes: Optional[int]
    storage: str
    durability: str
    dedup_window_ms: Optional[int]
    replication_factor: Optional[int]

class PartitionInfo:
    partition: int
    log_start_offset: int
    high_watermark: int
    bytes: int
    replicas: List[int]
    leader: Optional[int]

class TopicInfo:
    name: str
    config: TopicSettings
    partitions: List[PartitionInfo]
    created_at_ms: int

class PartitionCursor:
    partition: int
    committed_offset: int
    high_watermark: int
    lag: int

class MemberInfo:
    member_id: str
    consumer_name: str
    partitions: List[int]

class QueueSettings:
    ack_deadline: Optional[float]
    max_deliveries: Optional[int]
    dead_letter_topic: Optional[str]

class QueueStats:
    in_flight: int
    redeliveries: int
    dead_lettered: int
    expired: int

class SubscriptionInfo:
    topic: str
    name: str
    mode: str
    cursors: List[PartitionCursor]
    members: List[MemberInfo]
    total_lag: int
    created_at_ms: int
    queue: Optional[QueueSettings]
    queue_stats: Optional[QueueStats]

class DeadLetter:
    partition: int
    offset: int
    original_topic: str
    original_partition: int
    original_offset: int
    reason: str
    attempts: int
    message: ReceivedMessage

class DeadLetterPage:
    dead_letters: List[DeadLetter]
    next_page_token: Optional[str]

class DeadLetterReplay:
    replayed: int
    remaining: int

class Identity:
    tenant: str
    user: str

class UserInfo:
    tenant: str
    name: str
    has_password: bool
    created_at_ms: int

class TokenInfo:
    id: str
    tenant: str
    user: str
    kind: str
    description: str
    created_at_ms: int
    expires_at_ms: Optional[int]

class CreatedToken:
    token: str
    info: TokenInfo

class RoleInfo:
    name: str
    builtin: bool
    permissions: List[str]

class RoleBinding:
    tenant: str
    user: str
    role: str
    scope: str

class TenantQuotas:
    NAMES: Tuple[str, ...]
    publish_bytes_per_sec: Optional[int]
    publish_msgs_per_sec: Optional[int]
    consume_bytes_per_sec: Optional[int]
    storage_bytes: Optional[int]
    max_topics: Optional[int]
    max_partitions: Optional[int]
    max_connections: Optional[int]
    def __init__(self, *, publish_bytes_per_sec: Optional[int] = None, publish_msgs_per_sec: Optional[int] = None, consume_bytes_per_sec: Optional[int] = None, storage_bytes: Optional[int] = None, max_topics: Optional[int] = None, max_partitions: Optional[int] = None, max_connections: Optional[int] = None) -> None: ...

class TenantUsage:
    topics: int
    partitions: int
    storage_bytes: int
    connections: int
    users: int

class TenantInfo:
    name: str
    quotas: TenantQuotas
    usage: TenantUsage
    created_at_ms: int

class AuditEvent:
    id: str
    ts_ms: int
    node: int
    tenant: str
    actor: str
    source_addr: str
    transport: str
    action: str
    target: str
    outcome: str
    detail: str
    count: int

class AuditPage:
    events: List[AuditEvent]
    next_page_token: Optional[str]

class BrokerStatus:
    version: str
    uptime_ms: int
    topics: int
    subscriptions: int
    node_id: str

class ClusterNode:
    id: int
    cluster_addr: str
    grpc_addr: str
    http_addr: str
    reachable: bool
    role: str
    matched: Optional[int]

class ClusterStatus:
    mode: str
    node_id: int
    leader_id: Optional[int]
    term: int
    last_applied: Optional[int]
    membership: str
    nodes: List[ClusterNode]
    moving_partitions: int
    cluster_id: str

class MembershipChange:
    voters: List[int]
    note: str

class LeaderRebalance:
    transfers: int
    unreachable: List[int]

class ReplicaMove:
    tenant: str
    topic: str
    partition: int
    from_: List[int]
    to: List[int]

class ProducerStats:
    messages_sent: int
    messages_acked: int
    messages_failed: int
    batches: int
    requests: int
    retries: int
    duplicates: int
    max_partition_in_flight: int

class ConsumerStats:
    received: int
    polled: int
    buffered: int
    max_buffered: int
    commits: int
    reconnects: int
    dropped_on_revoke: int
    generation: int

class FetchResult:
    messages: List[ReceivedMessage]
    high_watermark: int
    log_start_offset: int

class Client:
    def close(self, asyncio: bool = False) -> Any: ...
    def endpoints(self) -> List[str]: ...
    def is_closed(self) -> bool: ...
    def set_endpoints(self, endpoints: List[str]) -> None: ...
    def admin(self) -> Admin: ...
    def producer(self, topic: str, config: Dict[str, Any], asyncio: bool = False) -> Any: ...
    def subscribe(
        self, topic: str, subscription: str, config: Dict[str, Any], asyncio: bool = False
    ) -> Any: ...
    def subscribe_queue(
        self, topic: str, subscription: str, config: Dict[str, Any], asyncio: bool = False
    ) -> Any: ...
    def publish_batch(
        self,
        topic: str,
        partition: int,
        producer_id: int,
        base_sequence: int,
        messages: List[Any],
        asyncio: bool = False,
    ) -> Any: ...
    def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        max_messages: int,
        max_wait: float,
        asyncio: bool = False,
    ) -> Any: ...
    def request(
        self,
        topic: str,
        timeout: float,
        value: Any,
        key: Any = None,
        headers: Any = None,
        timestamp_ms: Optional[int] = None,
        delay: Optional[float] = None,
        deliver_at_ms: Optional[int] = None,
        ttl: Optional[float] = None,
        priority: Optional[int] = None,
        *,
        asyncio: bool = False,
    ) -> Any: ...
    def reply(
        self,
        request: ReceivedMessage,
        value: Any,
        key: Any = None,
        headers: Any = None,
        timestamp_ms: Optional[int] = None,
        delay: Optional[float] = None,
        deliver_at_ms: Optional[int] = None,
        ttl: Optional[float] = None,
        priority: Optional[int] = None,
        *,
        asyncio: bool = False,
    ) -> Any: ...

class Producer:
    topic: str
    partitions: int
    def send(self, value: Any, key: Any = None, headers: Any = None, timestamp_ms: Optional[int] = None, delay: Optional[float] = None, deliver_at_ms: Optional[int] = None, ttl: Optional[float] = None, priority: Optional[int] = None) -> SendReceipt: ...
    def try_send(self, value: Any, key: Any = None, headers: Any = None, timestamp_ms: Optional[int] = None, delay: Optional[float] = None, deliver_at_ms: Optional[int] = None, ttl: Optional[float] = None, priority: Optional[int] = None) -> Optional[SendReceipt]: ...
    def send_async(self, value: Any, key: Any = None, headers: Any = None, timestamp_ms: Optional[int] = None, delay: Optional[float] = None, deliver_at_ms: Optional[int] = None, ttl: Optional[float] = None, priority: Optional[int] = None) -> Awaitable[SendReceipt]: ...
    def send_batch(self, messages: Iterable[Any], on_delivery: Optional[Callable[[Optional[Delivery], Optional[BaseException]], Any]] = None, asyncio: bool = False) -> Union[List[SendReceipt], Awaitable[List[SendReceipt]]]: ...
    def flush(self, asyncio: bool = False) -> Any: ...
    def close(self, asyncio: bool = False) -> Any: ...
    def stats(self) -> ProducerStats: ...
    def _lose_acks(self, n: int) -> None: ...

class Consumer:
    topic: str
    subscription: str
    start: Tuple[str, int]
    def poll(self, max: int, timeout: float, asyncio: bool = False) -> Any: ...
    def ack(self, message: ReceivedMessage) -> None: ...
    def ack_offset(self, partition: int, offset: int) -> None: ...
    def nack(self, message: ReceivedMessage, delay: float) -> None: ...
    def commit(self, asyncio: bool = False) -> Any: ...
    def close(self, asyncio: bool = False) -> Any: ...
    def assignment(self) -> List[int]: ...
    def stats(self) -> ConsumerStats: ...

class Admin:
    def create_topic(self, name: str, partitions: int = 0, retention_ms: Optional[int] = None, retention_bytes: Optional[int] = None, retention_messages: Optional[int] = None, max_message_bytes: Optional[int] = None, storage: str = "default", durability: str = "unspecified", dedup_window_ms: Optional[int] = None, replication_factor: Optional[int] = None, asyncio: bool = False) -> Any: ...
    def list_topics(self, asyncio: bool = False) -> Any: ...
    def describe_topic(self, name: str, asyncio: bool = False) -> Any: ...
    def alter_topic(self, name: str, retention_ms: Optional[int] = None, retention_bytes: Optional[int] = None, retention_messages: Optional[int] = None, max_message_bytes: Optional[int] = None, durability: str = "unspecified", dedup_window_ms: Optional[int] = None, asyncio: bool = False) -> Any: ...
    def delete_topic(self, name: str, asyncio: bool = False) -> Any: ...
    def create_subscription(self, topic: str, name: str, start: Tuple[str, int], asyncio: bool = False) -> Any: ...
    def create_queue_subscription(self, topic: str, name: str, start: Tuple[str, int], ack_deadline: Optional[float] = None, max_deliveries: Optional[int] = None, dead_letter_topic: Optional[str] = None, asyncio: bool = False) -> Any: ...
    def list_subscriptions(self, topic: Optional[str] = None, asyncio: bool = False) -> Any: ...
    def describe_subscription(self, topic: str, name: str, asyncio: bool = False) -> Any: ...
    def lag(self, topic: str, name: str, asyncio: bool = False) -> Any: ...
    def seek_subscription(self, topic: str, name: str, position: Tuple[str, int], partition: Optional[int] = None, asyncio: bool = False) -> Any: ...
    def delete_subscription(self, topic: str, name: str, asyncio: bool = False) -> Any: ...
    def list_dead_letters(self, dead_letter_topic: str, max: int = 0, page_token: Optional[str] = None, asyncio: bool = False) -> Any: ...
    def replay_dead_letters(self, dead_letter_topic: str, max: Optional[int] = None, asyncio: bool = False) -> Any: ...
    def status(self, asyncio: bool = False) -> Any: ...
    def cluster_status(self, asyncio: bool = False) -> Any: ...
    def add_node(self, id: int, cluster_addr: str, asyncio: bool = False) -> Any: ...
    def remove_node(self, id: int, asyncio: bool = False) -> Any: ...
    def rebalance_leaders(self, asyncio: bool = False) -> Any: ...
    def rebalance_replicas(self, exclude: List[int] = ..., dry_run: bool = False, asyncio: bool = False) -> Any: ...
    def whoami(self, asyncio: bool = False) -> Any: ...
    def create_user(self, name: str, password: Optional[str] = None, asyncio: bool = False) -> Any: ...
    def delete_user(self, name: str, asyncio: bool = False) -> Any: ...
    def list_users(self, asyncio: bool = False) -> Any: ...
    def set_password(self, name: str, password: str, asyncio: bool = False) -> Any: ...
    def create_token(self, user: Optional[str] = None, description: str = "", ttl: Optional[float] = None, asyncio: bool = False) -> Any: ...
    def list_tokens(self, user: Optional[str] = None, asyncio: bool = False) -> Any: ...
    def revoke_tokens(self, ids: List[str], asyncio: bool = False) -> Any: ...
    def create_role(self, name: str, permissions: List[str], asyncio: bool = False) -> Any: ...
    def delete_role(self, name: str, asyncio: bool = False) -> Any: ...
    def list_roles(self, asyncio: bool = False) -> Any: ...
    def bind_role(self, user: str, role: str, scope: str = "tenant", asyncio: bool = False) -> Any: ...
    def unbind_role(self, user: str, role: str, asyncio: bool = False) -> Any: ...
    def list_role_bindings(self, user: Optional[str] = None, asyncio: bool = False) -> Any: ...
    def create_tenant(self, name: str, quotas: Optional[TenantQuotas] = None, asyncio: bool = False) -> Any: ...
    def delete_tenant(self, name: str, asyncio: bool = False) -> Any: ...
    def list_tenants(self, asyncio: bool = False) -> Any: ...
    def describe_tenant(self, name: Optional[str] = None, asyncio: bool = False) -> Any: ...
    def set_tenant_quotas(self, name: str, quotas: Optional[TenantQuotas] = None, reset: List[str] = ..., asyncio: bool = False) -> Any: ...
    def list_audit_events(self, since_ms: Optional[int] = None, until_ms: Optional[int] = None, actor: Optional[str] = None, action_prefix: Optional[str] = None, outcome: Optional[str] = None, limit: Optional[int] = None, page_token: Optional[str] = None, asyncio: bool = False) -> Any: ...

class QueueMessage:
    """One delivery of a queue message."""

    message: ReceivedMessage
    attempt: int
    value: bytes
    key: Optional[bytes]
    partition: int
    offset: int
    @overload
    def json(self) -> Any:
        """``message.json()``: the value parsed as JSON."""
    @overload
    def json(self, cls: Type[_T]) -> _T:
        """``message.json(cls)``: the dataclass ``cls`` built from the value parsed as JSON."""

class QueueConsumerStats:
    received: int
    polled: int
    buffered: int
    max_buffered: int
    acked: int
    nacked: int
    extended: int
    ack_requests: int
    stale_receipts: int
    stream_errors: int
    reconnects: int

class QueueConsumer:
    topic: str
    subscription: str
    def poll(self, max: int, timeout: float, asyncio: bool = False) -> Any: ...
    def ack(self, message: QueueMessage) -> None: ...
    def nack(self, message: QueueMessage, delay: float) -> None: ...
    def extend_deadline(self, message: QueueMessage, extension: float) -> None: ...
    def flush(self, asyncio: bool = False) -> Any: ...
    def close(self, asyncio: bool = False) -> Any: ...
    def take_stream_errors(self) -> List[Any]: ...
    def stats(self) -> QueueConsumerStats: ...
