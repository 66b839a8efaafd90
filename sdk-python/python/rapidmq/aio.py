"""The asyncio API: the same classes as :mod:`rapidmq`, with coroutine methods.

Core futures resolve on the running event loop (pyo3-async-runtimes over the core's runtime);
nothing blocks the loop.

>>> async with await rapidmq.aio.Client.connect("http://127.0.0.1:7420") as client:
...     async with await client.producer("orders") as producer:
...         receipt = await producer.send(b"hello")
...         delivery = await receipt
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import (
    Any,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Generic,
    Iterable,
    List,
    Optional,
    Sequence,
    Type,
    TypeVar,
    Union,
)

from . import _native
from .client import (
    _ITERATION_WAIT,
    _RUN_WAIT,
    retry_delay,
    Endpoints,
    OnDelivery,
    _client_config,
    _closed,
    _notify,
    _raw_batch,
    _request_message,
    _send_args,
)
from .config import (
    RUN_DEFAULTS,
    ClientConfig,
    ConsumerConfig,
    ProducerConfig,
    StartPosition,
    StartPositionLike,
    _merge,
    _to_native,
)
from .audit import AuditQuery, _audit_filters
from .errors import ClosedError, RapidMQError
from .message import Headers, Message, Payload
from ._native import (
    AuditPage,
    BrokerStatus,
    ClusterStatus,
    ConsumerStats,
    CreatedToken,
    DeadLetterPage,
    DeadLetterReplay,
    Delivery,
    FetchResult,
    Identity,
    LeaderRebalance,
    MembershipChange,
    ProducerStats,
    PublishAck,
    QueueConsumerStats,
    QueueMessage,
    ReceivedMessage,
    ReplicaMove,
    RoleBinding,
    RoleInfo,
    SendReceipt,
    SubscriptionInfo,
    TenantInfo,
    TenantQuotas,
    TokenInfo,
    TopicInfo,
    UserInfo,
)


class _AsyncCloseable:
    async def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def __aenter__(self):  # type: ignore[no-untyped-def]
        return self

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.close()


async def _next_one(native: Any) -> Any:
    """The next item of ``async for`` over a consumer: one message (or delivery) per poll,
    waiting as long as it takes; ``StopAsyncIteration`` once the consumer is closed."""
    while True:
        try:
            taken = await native.poll(1, _ITERATION_WAIT, asyncio=True)
        except ClosedError:
            raise StopAsyncIteration from None
        if taken:
            return taken[0]


_Opened = TypeVar("_Opened", bound=_AsyncCloseable)


class _Opening(Generic[_Opened]):
    """What ``connect``, ``producer``, ``consumer`` and ``queue_consumer`` return: ``await`` it for
    the object, or open it in ``async with`` directly, which closes the object on exit::

        async with client.producer("orders") as producer: ...
        producer = await client.producer("orders")
    """

    def __init__(self, opening: Coroutine[Any, Any, _Opened]) -> None:
        self._opening = opening
        self._opened: Optional[_Opened] = None

    def __await__(self) -> Generator[Any, None, _Opened]:
        return self._opening.__await__()

    async def __aenter__(self) -> _Opened:
        self._opened = await self._opening
        return self._opened

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if self._opened is not None:
            await self._opened.close()


class Client(_AsyncCloseable):
    """A connection to a broker; create it with ``await Client.connect(...)``."""

    def __init__(self, native: _native.Client, config: ClientConfig) -> None:
        self._native: Optional[_native.Client] = native
        self.config = config

    @classmethod
    def connect(
        cls,
        endpoints: Optional[Endpoints] = None,
        *,
        config: Optional[ClientConfig] = None,
        **options: Any,
    ) -> "_Opening[Client]":
        """Connects (see :class:`rapidmq.Client` for the arguments and errors): ``await`` it, or
        ``async with Client.connect(...) as client``."""
        return _Opening(cls._connect(_client_config(endpoints, config, options)))

    @classmethod
    async def _connect(cls, config: ClientConfig) -> "Client":
        native = await _native.connect(_to_native(config), asyncio=True)
        return cls(native, config)

    @property
    def native(self) -> _native.Client:
        if self._native is None:
            raise _closed("client")
        return self._native

    @property
    def endpoints(self) -> List[str]:
        return self.native.endpoints()

    def set_endpoints(self, endpoints: Endpoints) -> None:
        """Replaces the endpoints; producers and consumers follow on their next reconnect."""
        self.native.set_endpoints([endpoints] if isinstance(endpoints, str) else list(endpoints))

    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native is None or self._native.is_closed()

    def producer(
        self, topic: str, config: Optional[ProducerConfig] = None, **options: Any
    ) -> "_Opening[Producer]":
        """A producer for ``topic`` (see :meth:`rapidmq.Client.producer`): ``await`` it, or
        ``async with client.producer(...) as producer``."""
        return _Opening(self._producer(topic, _merge(config, ProducerConfig, options)))

    async def _producer(self, topic: str, config: ProducerConfig) -> "Producer":
        native = await self.native.producer(topic, _to_native(config), asyncio=True)
        return Producer(native, config)

    def consumer(
        self,
        topic: str,
        subscription: str = "",
        config: Optional[ConsumerConfig] = None,
        **options: Any,
    ) -> "_Opening[Consumer]":
        """Subscribes (see :meth:`rapidmq.Client.consumer`): ``await`` it, or ``async with``."""
        config = _merge(config, ConsumerConfig, options)
        return _Opening(self._consumer(topic, subscription, config))

    async def _consumer(self, topic: str, subscription: str, config: ConsumerConfig) -> "Consumer":
        native = await self.native.subscribe(
            topic, subscription, _to_native(config), asyncio=True
        )
        return Consumer(native, config)

    def queue_consumer(
        self,
        topic: str,
        subscription: str,
        config: Optional[ConsumerConfig] = None,
        **options: Any,
    ) -> "_Opening[QueueConsumer]":
        """Joins a queue-mode subscription (see :meth:`rapidmq.Client.queue_consumer`):
        ``await`` it, or ``async with``."""
        return _Opening(
            self._queue_consumer(topic, subscription, _merge(config, ConsumerConfig, options))
        )

    async def _queue_consumer(
        self, topic: str, subscription: str, config: ConsumerConfig
    ) -> "QueueConsumer":
        native = await self.native.subscribe_queue(
            topic, subscription, _to_native(config), asyncio=True
        )
        return QueueConsumer(native, config)

    def admin(self) -> "Admin":
        """The admin API."""
        return Admin(self.native.admin())

    async def publish_batch(
        self,
        topic: str,
        partition: int,
        messages: Sequence[Union[Payload, Message]],
        *,
        producer_id: int = 0,
        base_sequence: int = 0,
    ) -> PublishAck:
        """One raw publish request (see :meth:`rapidmq.Client.publish_batch`)."""
        return await self.native.publish_batch(
            topic, partition, producer_id, base_sequence, _raw_batch(messages), asyncio=True
        )

    async def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        max_messages: int = 1000,
        max_wait: float = 0.0,
    ) -> FetchResult:
        """Reads from one partition (see :meth:`rapidmq.Client.fetch`)."""
        return await self.native.fetch(
            topic, partition, offset, max_messages, max_wait, asyncio=True
        )

    async def request(
        self,
        topic: str,
        value: Union[Payload, Message],
        *,
        timeout: float,
        key: Optional[Payload] = None,
        headers: Optional[Headers] = None,
        timestamp_ms: Optional[int] = None,
        delay: Optional[float] = None,
        deliver_at_ms: Optional[int] = None,
        ttl: Optional[float] = None,
        priority: Optional[int] = None,
    ) -> ReceivedMessage:
        """Sends a request to ``topic`` and returns the first reply, waiting at most ``timeout``
        seconds (see :meth:`rapidmq.Client.request`); nothing blocks the loop, and any number
        of requests may be awaited at once.

        >>> reply = await client.request("prices", "EURUSD", timeout=2.0)

        Raises:
            TimeoutError: no reply came within ``timeout``.
            InvalidArgumentError: ``timeout`` is not above zero.
            TopicNotFoundError: ``topic`` does not exist.
        """
        fields = (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)
        return await self.native.request(topic, timeout, *_send_args(value, fields), asyncio=True)

    async def reply(
        self,
        request: Union[ReceivedMessage, QueueMessage],
        value: Union[Payload, Message],
        *,
        key: Optional[Payload] = None,
        headers: Optional[Headers] = None,
        timestamp_ms: Optional[int] = None,
        delay: Optional[float] = None,
        deliver_at_ms: Optional[int] = None,
        ttl: Optional[float] = None,
        priority: Optional[int] = None,
    ) -> Delivery:
        """Answers ``request`` (a message sent with :meth:`request`; a
        :class:`ReceivedMessage` or a :class:`QueueMessage`) and returns the
        :class:`Delivery` once the broker stored the reply (see
        :meth:`rapidmq.Client.reply`).

        Raises:
            InvalidArgumentError: ``request`` was not sent as a request.
            TopicNotFoundError: the requester's inbox is gone (it closed).
        """
        fields = (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)
        return await self.native.reply(
            _request_message(request), *_send_args(value, fields), asyncio=True
        )

    async def close(self) -> None:
        """Closes every producer (flushing) and consumer (final commits and acks) made from
        this client, then the connection. Idempotent; afterwards they raise
        :class:`ClosedError`."""
        native, self._native = self._native, None
        if native is not None:
            await native.close(asyncio=True)


class Producer(_AsyncCloseable):
    """Publishes to one topic (see :class:`rapidmq.Producer`)."""

    def __init__(self, native: _native.Producer, config: ProducerConfig) -> None:
        self._native = native
        self.config = config

    @property
    def topic(self) -> str:
        return self._native.topic

    @property
    def partitions(self) -> int:
        return self._native.partitions

    async def send(
        self,
        value: Union[Payload, Message],
        *,
        key: Optional[Payload] = None,
        headers: Optional[Headers] = None,
        timestamp_ms: Optional[int] = None,
        delay: Optional[float] = None,
        deliver_at_ms: Optional[int] = None,
        ttl: Optional[float] = None,
        priority: Optional[int] = None,
        on_delivery: Optional[OnDelivery] = None,
    ) -> SendReceipt:
        """Queues a message and returns its receipt; ``await receipt`` gives the
        :class:`Delivery`. Waits (without blocking the loop) only while the buffer is full.
        ``on_delivery(delivery, error)`` runs on one of the core's threads once the outcome is
        known (use ``loop.call_soon_threadsafe`` to reach the loop)."""
        fields = (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)
        args = _send_args(value, fields)
        receipt = self._native.try_send(*args)
        if receipt is None:
            receipt = await self._native.send_async(*args)
        return _notify(receipt, on_delivery)

    async def send_batch(
        self,
        messages: Iterable[Union[Payload, Message]],
        *,
        on_delivery: Optional[OnDelivery] = None,
    ) -> List[SendReceipt]:
        """Queues ``messages`` in order in one native call and returns their receipts in the
        same order (see :meth:`rapidmq.Producer.send_batch`); ``await receipt`` gives each
        :class:`Delivery`. Waits (without blocking the loop) only while the buffer is full; a
        batch larger than the buffer is queued as room frees up. ``on_delivery`` runs on one of
        the core's threads (use ``loop.call_soon_threadsafe`` to reach the loop)."""
        receipts = self._native.send_batch(messages, on_delivery, asyncio=True)
        if isinstance(receipts, list):
            return receipts
        return await receipts

    def try_send(
        self,
        value: Union[Payload, Message],
        *,
        key: Optional[Payload] = None,
        headers: Optional[Headers] = None,
        timestamp_ms: Optional[int] = None,
        delay: Optional[float] = None,
        deliver_at_ms: Optional[int] = None,
        ttl: Optional[float] = None,
        priority: Optional[int] = None,
        on_delivery: Optional[OnDelivery] = None,
    ) -> Optional[SendReceipt]:
        """Like :meth:`send`, but returns ``None`` at once (and queues nothing) when the buffer
        is full."""
        fields = (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)
        return _notify(self._native.try_send(*_send_args(value, fields)), on_delivery)

    async def flush(self) -> None:
        """Sends every batch now and waits for everything sent before."""
        await self._native.flush(asyncio=True)

    async def close(self) -> None:
        """Flushes, then stops the producer."""
        await self._native.close(asyncio=True)

    def stats(self) -> ProducerStats:
        return self._native.stats()


class Consumer(_AsyncCloseable):
    """A member of a stream-mode subscription (see :class:`rapidmq.Consumer`)."""

    def __init__(self, native: _native.Consumer, config: ConsumerConfig) -> None:
        self._native = native
        self.config = config

    @property
    def topic(self) -> str:
        return self._native.topic

    @property
    def subscription(self) -> str:
        return self._native.subscription

    async def poll(self, max_messages: int, timeout: float) -> List[ReceivedMessage]:
        """Up to ``max_messages`` messages, waiting up to ``timeout`` seconds for the first."""
        return await self._native.poll(max_messages, timeout, asyncio=True)

    def __aiter__(self) -> "Consumer":
        """``async for message in consumer:`` (see :meth:`rapidmq.Consumer.__iter__`)."""
        return self

    async def __anext__(self) -> ReceivedMessage:
        return await _next_one(self._native)

    def ack(self, message: ReceivedMessage) -> None:
        """Acknowledges a polled message (never waits)."""
        self._native.ack(message)

    def ack_offset(self, partition: int, offset: int) -> None:
        self._native.ack_offset(partition, offset)

    def nack(self, message: ReceivedMessage, delay: float = 0.0) -> None:
        """Queue mode only; a stream-mode consumer raises :class:`UnsupportedError`."""
        self._native.nack(message, delay)

    async def commit(self) -> None:
        await self._native.commit(asyncio=True)

    async def close(self) -> None:
        """Commits what was acknowledged and leaves the subscription."""
        await self._native.close(asyncio=True)

    def assignment(self) -> List[int]:
        return self._native.assignment()

    def stats(self) -> ConsumerStats:
        return self._native.stats()


class QueueConsumer(_AsyncCloseable):
    """A member of a queue-mode subscription (see :class:`rapidmq.QueueConsumer`)."""

    def __init__(self, native: _native.QueueConsumer, config: ConsumerConfig) -> None:
        self._native = native
        self.config = config

    @property
    def topic(self) -> str:
        return self._native.topic

    @property
    def subscription(self) -> str:
        return self._native.subscription

    async def poll(self, max_messages: int, timeout: float) -> List[QueueMessage]:
        return await self._native.poll(max_messages, timeout, asyncio=True)

    def __aiter__(self) -> "QueueConsumer":
        """``async for delivery in consumer:`` (see :meth:`rapidmq.QueueConsumer.__iter__`)."""
        return self

    async def __anext__(self) -> QueueMessage:
        return await _next_one(self._native)

    def ack(self, message: QueueMessage) -> None:
        self._native.ack(message)

    def nack(self, message: QueueMessage, delay: float = 0.0) -> None:
        self._native.nack(message, delay)

    def extend_deadline(self, message: QueueMessage, extension: float) -> None:
        self._native.extend_deadline(message, extension)

    async def flush(self) -> None:
        await self._native.flush(asyncio=True)

    async def run(
        self,
        handler: Callable[[QueueMessage], Awaitable[Any]],
        *,
        concurrency: int = RUN_DEFAULTS["concurrency"],
        retry_backoff: float = RUN_DEFAULTS["retry_backoff"],
        max_retry_backoff: float = RUN_DEFAULTS["max_retry_backoff"],
        stop: Optional[asyncio.Event] = None,
    ) -> None:
        """Awaits ``handler(delivery)`` on each delivery, at most ``concurrency`` at once, as
        :meth:`rapidmq.QueueConsumer.run` does (return: ack; exception: nack with
        :func:`rapidmq.retry_delay`). Returns once ``stop`` is set or the consumer is closed,
        after the deliveries being handled finished and pending acks were flushed. Cancelling
        it cancels the handlers running; their deliveries come back after the ack deadline."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        slots = asyncio.Semaphore(concurrency)
        failures: List[RapidMQError] = []
        handling: set = set()

        async def handle(delivery: QueueMessage) -> None:
            try:
                try:
                    await handler(delivery)
                except Exception:
                    delay = retry_delay(delivery.attempt, retry_backoff, max_retry_backoff)
                    self.nack(delivery, delay)
                else:
                    self.ack(delivery)
            except ClosedError:
                pass  # closed meanwhile: the delivery comes back
            except RapidMQError as err:
                failures.append(err)
            finally:
                slots.release()

        try:
            while not (stop is not None and stop.is_set()) and not failures:
                await slots.acquire()
                free = 1
                while free < concurrency and not slots.locked():
                    await slots.acquire()
                    free += 1
                try:
                    deliveries = await self._native.poll(free, _RUN_WAIT, asyncio=True)
                except RapidMQError as err:
                    for _ in range(free):
                        slots.release()
                    if not isinstance(err, ClosedError):
                        failures.append(err)
                    break
                for _ in range(free - len(deliveries)):
                    slots.release()
                for delivery in deliveries:
                    task = asyncio.ensure_future(handle(delivery))
                    handling.add(task)
                    task.add_done_callback(handling.discard)
        except asyncio.CancelledError:
            for task in handling:
                task.cancel()
            raise
        finally:
            if handling:
                await asyncio.gather(*handling, return_exceptions=True)
        try:
            await self.flush()
        except ClosedError:
            pass
        if failures:
            raise failures[0]

    async def close(self) -> None:
        await self._native.close(asyncio=True)

    def take_stream_errors(self) -> List[RapidMQError]:
        return self._native.take_stream_errors()

    def stats(self) -> QueueConsumerStats:
        return self._native.stats()


class Admin:
    """Topics, subscriptions, lag, dead letters and broker status (see :class:`rapidmq.Admin`)."""

    def __init__(self, native: _native.Admin) -> None:
        self._native = native

    async def create_topic(
        self,
        name: str,
        partitions: int = 0,
        *,
        retention_ms: Optional[int] = None,
        retention_bytes: Optional[int] = None,
        retention_messages: Optional[int] = None,
        max_message_bytes: Optional[int] = None,
        storage: str = "default",
        durability: str = "unspecified",
        dedup_window_ms: Optional[int] = None,
        replication_factor: Optional[int] = None,
    ) -> TopicInfo:
        return await self._native.create_topic(
            name,
            partitions,
            retention_ms,
            retention_bytes,
            retention_messages,
            max_message_bytes,
            storage,
            durability,
            dedup_window_ms,
            replication_factor,
            asyncio=True,
        )

    async def list_topics(self) -> List[TopicInfo]:
        return await self._native.list_topics(asyncio=True)

    async def describe_topic(self, name: str) -> TopicInfo:
        return await self._native.describe_topic(name, asyncio=True)

    async def alter_topic(
        self,
        name: str,
        *,
        retention_ms: Optional[int] = None,
        retention_bytes: Optional[int] = None,
        retention_messages: Optional[int] = None,
        max_message_bytes: Optional[int] = None,
        durability: str = "unspecified",
        dedup_window_ms: Optional[int] = None,
    ) -> TopicInfo:
        return await self._native.alter_topic(
            name,
            retention_ms,
            retention_bytes,
            retention_messages,
            max_message_bytes,
            durability,
            dedup_window_ms,
            asyncio=True,
        )

    async def delete_topic(self, name: str) -> None:
        await self._native.delete_topic(name, asyncio=True)

    async def create_subscription(
        self, topic: str, name: str, start: StartPositionLike = StartPosition.LATEST
    ) -> SubscriptionInfo:
        return await self._native.create_subscription(
            topic, name, StartPosition.of(start)._native(), asyncio=True
        )

    async def create_queue_subscription(
        self,
        topic: str,
        name: str,
        start: StartPositionLike = StartPosition.LATEST,
        *,
        ack_deadline: Optional[float] = None,
        max_deliveries: Optional[int] = None,
        dead_letter_topic: Optional[str] = None,
    ) -> SubscriptionInfo:
        return await self._native.create_queue_subscription(
            topic,
            name,
            StartPosition.of(start)._native(),
            ack_deadline,
            max_deliveries,
            dead_letter_topic,
            asyncio=True,
        )

    async def list_subscriptions(self, topic: Optional[str] = None) -> List[SubscriptionInfo]:
        return await self._native.list_subscriptions(topic, asyncio=True)

    async def describe_subscription(self, topic: str, name: str) -> SubscriptionInfo:
        return await self._native.describe_subscription(topic, name, asyncio=True)

    async def lag(self, topic: str, name: str) -> int:
        return await self._native.lag(topic, name, asyncio=True)

    async def seek_subscription(
        self,
        topic: str,
        name: str,
        position: StartPositionLike,
        partition: Optional[int] = None,
    ) -> SubscriptionInfo:
        return await self._native.seek_subscription(
            topic, name, StartPosition.of(position)._native(), partition, asyncio=True
        )

    async def delete_subscription(self, topic: str, name: str) -> None:
        await self._native.delete_subscription(topic, name, asyncio=True)

    async def list_dead_letters(
        self, dead_letter_topic: str, max: int = 0, page_token: Optional[str] = None
    ) -> DeadLetterPage:
        return await self._native.list_dead_letters(
            dead_letter_topic, max, page_token, asyncio=True
        )

    async def replay_dead_letters(
        self, dead_letter_topic: str, max: Optional[int] = None
    ) -> DeadLetterReplay:
        return await self._native.replay_dead_letters(dead_letter_topic, max, asyncio=True)

    async def status(self) -> BrokerStatus:
        return await self._native.status(asyncio=True)

    async def cluster_status(self) -> ClusterStatus:
        return await self._native.cluster_status(asyncio=True)

    async def add_node(self, id: int, cluster_addr: str) -> MembershipChange:
        return await self._native.add_node(id, cluster_addr, asyncio=True)

    async def remove_node(self, id: int) -> MembershipChange:
        return await self._native.remove_node(id, asyncio=True)

    async def rebalance_leaders(self) -> LeaderRebalance:
        return await self._native.rebalance_leaders(asyncio=True)

    async def rebalance_replicas(
        self, exclude: Sequence[int] = (), dry_run: bool = False
    ) -> List[ReplicaMove]:
        return await self._native.rebalance_replicas(list(exclude), dry_run, asyncio=True)

    async def whoami(self) -> Identity:
        return await self._native.whoami(asyncio=True)

    async def create_user(self, name: str, password: Optional[str] = None) -> UserInfo:
        return await self._native.create_user(name, password, asyncio=True)

    async def delete_user(self, name: str) -> None:
        await self._native.delete_user(name, asyncio=True)

    async def list_users(self) -> List[UserInfo]:
        return await self._native.list_users(asyncio=True)

    async def set_password(self, name: str, password: str) -> None:
        await self._native.set_password(name, password, asyncio=True)

    async def create_token(
        self, user: Optional[str] = None, description: str = "", ttl: Optional[float] = None
    ) -> CreatedToken:
        return await self._native.create_token(user, description, ttl, asyncio=True)

    async def list_tokens(self, user: Optional[str] = None) -> List[TokenInfo]:
        return await self._native.list_tokens(user, asyncio=True)

    async def revoke_token(self, id: str) -> None:
        await self._native.revoke_tokens([id], asyncio=True)

    async def revoke_tokens(self, ids: Sequence[str]) -> None:
        await self._native.revoke_tokens(list(ids), asyncio=True)

    async def create_role(self, name: str, permissions: Sequence[str]) -> RoleInfo:
        return await self._native.create_role(name, list(permissions), asyncio=True)

    async def delete_role(self, name: str) -> None:
        await self._native.delete_role(name, asyncio=True)

    async def list_roles(self) -> List[RoleInfo]:
        return await self._native.list_roles(asyncio=True)

    async def bind_role(self, user: str, role: str, scope: str = "tenant") -> RoleBinding:
        return await self._native.bind_role(user, role, scope, asyncio=True)

    async def unbind_role(self, user: str, role: str) -> None:
        await self._native.unbind_role(user, role, asyncio=True)

    async def list_role_bindings(self, user: Optional[str] = None) -> List[RoleBinding]:
        return await self._native.list_role_bindings(user, asyncio=True)


    async def create_tenant(self, name: str, quotas: Optional[TenantQuotas] = None) -> TenantInfo:
        return await self._native.create_tenant(name, quotas, asyncio=True)

    async def delete_tenant(self, name: str) -> None:
        await self._native.delete_tenant(name, asyncio=True)

    async def list_tenants(self) -> List[TenantInfo]:
        return await self._native.list_tenants(asyncio=True)

    async def describe_tenant(self, name: Optional[str] = None) -> TenantInfo:
        return await self._native.describe_tenant(name, asyncio=True)

    async def set_tenant_quotas(
        self, name: str, quotas: Optional[TenantQuotas] = None, reset: Sequence[str] = ()
    ) -> TenantInfo:
        return await self._native.set_tenant_quotas(name, quotas, list(reset), asyncio=True)

    async def list_audit_events(
        self, query: Optional[AuditQuery] = None, **filters: Any
    ) -> AuditPage:
        return await self._native.list_audit_events(**_audit_filters(query, filters), asyncio=True)

__all__ = ["Admin", "Client", "Consumer", "Producer", "QueueConsumer"]
