"""The synchronous API: :class:`Client`, :class:`Producer`, :class:`Consumer`, :class:`Admin`.

Every blocking call releases the GIL while it waits, so other Python threads keep running, and
Ctrl-C interrupts it with ``KeyboardInterrupt``. All client behaviour (batching, retries,
idempotence, flow control, commits, reconnects) runs in the shared Rust core; these classes only
convert arguments and results.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import Any, Callable, Iterable, Iterator, List, Optional, Sequence, Type, Union

from . import _native
from .admin import Admin
from .config import (
    RUN_DEFAULTS,
    ClientConfig,
    ConsumerConfig,
    ProducerConfig,
    _merge,
    _to_native,
)
from .errors import ClosedError, RapidMQError
from .message import Headers, Message, Payload
from ._native import (
    ConsumerStats,
    Delivery,
    FetchResult,
    ProducerStats,
    PublishAck,
    QueueConsumerStats,
    QueueMessage,
    ReceivedMessage,
    SendReceipt,
)

Endpoints = Union[str, Sequence[str]]

# ``on_delivery(delivery, error)``: called once a send's outcome is known (exactly one is None).
OnDelivery = Callable[[Optional[Delivery], Optional[RapidMQError]], Any]


def _notify(receipt: Optional[SendReceipt], on_delivery: Optional[OnDelivery]) -> Any:
    """Registers ``on_delivery`` on a receipt (when there is one) and returns the receipt."""
    if receipt is not None and on_delivery is not None:
        receipt.add_done_callback(on_delivery)
    return receipt


def _client_config(
    endpoints: Optional[Endpoints], config: Optional[ClientConfig], options: Any
) -> ClientConfig:
    if endpoints is not None:
        options["endpoints"] = (endpoints,) if isinstance(endpoints, str) else tuple(endpoints)
    return _merge(config, ClientConfig, options)


def _one_at_a_time(native: Any) -> Iterator[Any]:
    """What iterating a consumer yields: one message (or delivery) per poll, waiting as long as
    it takes, until the consumer is closed."""
    while True:
        try:
            taken = native.poll(1, _ITERATION_WAIT)
        except ClosedError:
            return
        if taken:
            yield taken[0]


def _send_args(value: Any, fields: Sequence[Any]) -> Sequence[Any]:
    """The native send's arguments: a :class:`Message`'s, or the value and its keyword fields
    (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)."""
    if isinstance(value, Message):
        return _message_args(value, {})
    return (value, *fields)


def _request_message(request: Union[ReceivedMessage, QueueMessage]) -> ReceivedMessage:
    """The message a reply answers: a received message as it is, a queue delivery's message."""
    if isinstance(request, QueueMessage):
        return request.message
    return request


def retry_delay(attempt: int, retry_backoff: float, max_retry_backoff: float) -> float:
    """The delay, in seconds, before a delivery whose handler failed at ``attempt`` comes back:
    ``retry_backoff`` doubled per earlier attempt, at most ``max_retry_backoff``. The core's, so
    every SDK backs off the same way."""
    return _native.retry_delay(attempt, retry_backoff, max_retry_backoff)


# How long one poll of QueueConsumer.run waits before it checks again whether to stop.
_RUN_WAIT = 1.0

# How long one wait of an iterating consumer lasts before it waits again (it never ends an
# iteration by itself; Ctrl-C interrupts a wait within about 50 ms).
_ITERATION_WAIT = 60.0


def _message_args(message: Message, _options: Any) -> Any:
    return (
        message.value,
        message.key,
        message.headers,
        message.timestamp_ms,
        message.delay,
        message.deliver_at_ms,
        message.ttl,
        message.priority,
    )


class _Closeable:
    def close(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()


class Client(_Closeable):
    """A connection to a RapidMQ broker; connects on construction.

    >>> with rapidmq.Client("http://127.0.0.1:7420") as client:
    ...     producer = client.producer("orders")

    Args:
        endpoints: one ``http://host:port`` (``https://`` for TLS, see :class:`TlsConfig`) or
            several, tried in order (default ``ClientConfig().endpoints``).
        config: a :class:`ClientConfig`; keyword ``options`` override its fields.

    Raises:
        UnavailableError: no endpoint answered (retriable).
        UnauthenticatedError: the broker refused the credentials (not retried).
    """

    def __init__(
        self,
        endpoints: Optional[Endpoints] = None,
        *,
        config: Optional[ClientConfig] = None,
        **options: Any,
    ) -> None:
        self.config = _client_config(endpoints, config, options)
        self._native: Optional[_native.Client] = _native.connect(_to_native(self.config))

    @classmethod
    def _wrap(cls, native: _native.Client, config: ClientConfig) -> "Client":
        client = cls.__new__(cls)
        client.config = config
        client._native = native
        return client

    @property
    def native(self) -> _native.Client:
        if self._native is None:
            raise _closed("client")
        return self._native

    @property
    def endpoints(self) -> List[str]:
        """The endpoints in use."""
        return self.native.endpoints()

    def set_endpoints(self, endpoints: Endpoints) -> None:
        """Replaces the endpoints; producers and consumers follow on their next reconnect."""
        self.native.set_endpoints([endpoints] if isinstance(endpoints, str) else list(endpoints))

    def is_closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._native is None or self._native.is_closed()

    def producer(
        self, topic: str, config: Optional[ProducerConfig] = None, **options: Any
    ) -> "Producer":
        """A producer for ``topic`` (looked up first). Keyword ``options`` override fields of
        ``config`` (default :class:`ProducerConfig`).

        Raises:
            TopicNotFoundError: the topic does not exist.
            InvalidArgumentError: a bad setting.
        """
        config = _merge(config, ProducerConfig, options)
        return Producer(self.native.producer(topic, _to_native(config)), config)

    def consumer(
        self,
        topic: str,
        subscription: str = "",
        config: Optional[ConsumerConfig] = None,
        **options: Any,
    ) -> "Consumer":
        """Subscribes to ``topic`` (stream mode) as a member of ``subscription`` (created on first
        use; ``""`` is an ephemeral live tail with nothing committed). Returns once the broker
        confirmed. Keyword ``options`` override fields of ``config`` (default
        :class:`ConsumerConfig`).

        Raises:
            TopicNotFoundError, InvalidNameError, SubscriptionModeMismatchError,
            InvalidArgumentError.
        """
        config = _merge(config, ConsumerConfig, options)
        return Consumer(self.native.subscribe(topic, subscription, _to_native(config)), config)

    def queue_consumer(
        self,
        topic: str,
        subscription: str,
        config: Optional[ConsumerConfig] = None,
        **options: Any,
    ) -> "QueueConsumer":
        """Joins the queue-mode ``subscription`` of ``topic`` (created with ``config.queue`` if it
        does not exist): messages go one by one to any member and are acked individually.

        Raises:
            TopicNotFoundError, SubscriptionModeMismatchError (a stream subscription of that name
            exists), InvalidArgumentError (e.g. ``max_deliveries=0`` or no subscription name).
        """
        config = _merge(config, ConsumerConfig, options)
        native = self.native.subscribe_queue(topic, subscription, _to_native(config))
        return QueueConsumer(native, config)

    def admin(self) -> "Admin":
        """The admin API."""
        return Admin(self.native.admin())

    def publish_batch(
        self,
        topic: str,
        partition: int,
        messages: Sequence[Union[Payload, Message]],
        *,
        producer_id: int = 0,
        base_sequence: int = 0,
    ) -> PublishAck:
        """Publishes ``messages`` to one partition in one request: no batching, no retries (the
        raw path for tools and tests). ``producer_id`` 0 disables idempotence."""
        return self.native.publish_batch(
            topic, partition, producer_id, base_sequence, _raw_batch(messages)
        )

    def fetch(
        self,
        topic: str,
        partition: int,
        offset: int,
        max_messages: int = 1000,
        max_wait: float = 0.0,
    ) -> FetchResult:
        """Reads up to ``max_messages`` from ``partition`` starting at ``offset``, waiting up to
        ``max_wait`` seconds when there is nothing yet."""
        return self.native.fetch(topic, partition, offset, max_messages, max_wait)

    def request(
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
        """Sends a message (a payload plus keyword fields, or a :class:`Message`, as
        :meth:`Producer.send` takes it) to ``topic`` as a request and returns the first reply,
        waiting at most ``timeout`` seconds for the send and the reply together.

        The message goes out with two headers, replacing any of the same names it has:
        ``reply-to`` (this client's inbox topic, ``_inbox.<hex>``, made by the first request and
        deleted by :meth:`close`) and a unique ``correlation-id``. A responder answers with
        :meth:`reply`. Any number of threads may wait on requests of one client at once; each
        gets the reply to its own. Blocks with the GIL released; Ctrl-C interrupts.

        >>> reply = client.request("prices", "EURUSD", timeout=2.0)
        >>> reply.value
        b'1.0842'

        Raises:
            TimeoutError: no reply came within ``timeout`` (a late reply is dropped).
            InvalidArgumentError: ``timeout`` is not above zero.
            TopicNotFoundError: ``topic`` does not exist.
        """
        fields = (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)
        return self.native.request(topic, timeout, *_send_args(value, fields))

    def reply(
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
        """Answers ``request`` (a message sent with :meth:`request`, as a consumer received it:
        a :class:`ReceivedMessage` or a queue consumer's :class:`QueueMessage`) with a message
        (a payload plus keyword fields, or a :class:`Message`): sends it to the request's
        ``reply-to`` topic with its ``correlation-id``, and returns the :class:`Delivery` once
        the broker stored it.

        >>> for job in responders.poll(10, timeout=1.0):
        ...     client.reply(job, "1.0842")
        ...     responders.ack(job)

        Raises:
            InvalidArgumentError: ``request`` was not sent as a request (it lacks the
                ``reply-to`` or ``correlation-id`` header).
            TopicNotFoundError: the requester's inbox is gone (it closed).
        """
        fields = (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)
        return self.native.reply(_request_message(request), *_send_args(value, fields))

    def close(self) -> None:
        """Closes every producer (flushing what is buffered) and every consumer (sending final
        commits and acks) made from this client, then the connection. Idempotent; afterwards
        the client, its producers and its consumers raise :class:`ClosedError`."""
        native, self._native = self._native, None
        if native is not None:
            native.close()

    def __repr__(self) -> str:
        return f"Client(endpoints={list(self.config.endpoints)!r})"


def _raw_batch(messages: Sequence[Union[Payload, Message]]) -> List[Any]:
    out = []
    for m in messages:
        if isinstance(m, Message):
            out.append((m.value, m.key, m.headers, m.timestamp_ms))
        else:
            out.append((m, None, None, None))
    return out


def _closed(what: str) -> Exception:
    from .errors import ClosedError

    return ClosedError(f"the {what} is closed", code=1001, retriable=False)


class Producer(_Closeable):
    """Publishes to one topic. Sends are batched per partition by the core (linger, count,
    bytes), pipelined, idempotent and retried. Closing flushes.

    >>> with client.producer("orders") as producer:
    ...     receipt = producer.send(b"hello", key="customer-7")
    ...     print(receipt.result())   # Delivery(partition=.., offset=.., ...)
    """

    def __init__(self, native: _native.Producer, config: ProducerConfig) -> None:
        self._native = native
        self.config = config

    @property
    def topic(self) -> str:
        return self._native.topic

    @property
    def partitions(self) -> int:
        """The topic's partition count."""
        return self._native.partitions

    def send(
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
        """Queues a message (a payload plus keyword fields, or a :class:`Message`) and returns
        its :class:`SendReceipt` at once; ``receipt.result()`` waits for the
        :class:`Delivery`. Blocks only while ``max_buffered_messages`` are already buffered.
        ``on_delivery(delivery, error)`` is called once the outcome is known (exactly one of
        them is None), on one of the core's threads: keep it short.

        Raises:
            ClosedError: after :meth:`close`. Broker refusals (``MessageTooLargeError``,
            ``TopicNotFoundError`` ...) come out of ``receipt.result()``.
        """
        fields = (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)
        return _notify(self._native.send(*_send_args(value, fields)), on_delivery)

    def send_batch(
        self,
        messages: Iterable[Union[Payload, Message]],
        *,
        on_delivery: Optional[OnDelivery] = None,
    ) -> List[SendReceipt]:
        """Queues ``messages`` (payloads, or :class:`Message` objects for keys, headers and the
        other fields) in order, in one native call, and returns their receipts in the same
        order. The messages go into the producer's batches like :meth:`send`'s: this saves the
        per-call overhead, not a request per message.

        Blocks (GIL released, Ctrl-C interrupts) only while ``max_buffered_messages`` are
        already buffered, as often as it takes: a batch larger than the buffer is queued as room
        frees up, never dropped or reordered. ``on_delivery(delivery, error)`` is called for each
        message, in batch order, on one of the core's threads.

        >>> receipts = producer.send_batch([b"a", b"b", rapidmq.Message(b"c", key="k")])
        >>> [r.result().offset for r in receipts]
        [0, 1, 2]

        Raises:
            InvalidArgumentError: a message could not be converted (say, a value that is not
                bytes or str) or is invalid (a ``timestamp_ms`` 2**62 ms or more from 1970); it
                names the message's index, and nothing of the batch was queued.
            ClosedError: after :meth:`close`. When the producer closes, or Ctrl-C interrupts a
                wait for room, part-way through the batch, the messages before stay queued and
                are sent (with ``on_delivery`` after a close, without receipts).

            Broker refusals come out of each receipt, as for :meth:`send`: a message the broker
            refuses (say ``priority=99``: ``InvalidPriorityError``) fails the producer batch it
            went in, so the messages batched with it fail with the same error.
        """
        return self._native.send_batch(messages, on_delivery)

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
        """Like :meth:`send`, but never blocks: returns ``None`` (and queues nothing) when
        ``max_buffered_messages`` are already buffered."""
        fields = (key, headers, timestamp_ms, delay, deliver_at_ms, ttl, priority)
        return _notify(self._native.try_send(*_send_args(value, fields)), on_delivery)

    def flush(self) -> None:
        """Sends every batch now and waits until every message sent before completed."""
        self._native.flush()

    def close(self) -> None:
        """Flushes, then stops the producer; later sends raise :class:`ClosedError`."""
        self._native.close()

    def stats(self) -> ProducerStats:
        """Counters: messages sent/acked/failed, batches, requests, retries, duplicates."""
        return self._native.stats()

    def __repr__(self) -> str:
        return repr(self._native)


class Consumer(_Closeable):
    """A member of a stream-mode subscription: ordered per partition, partitions shared among
    the members, offsets committed. ``poll`` returns what the core prefetched; ``ack`` marks
    messages done and the core commits contiguous positions on an interval and on close.

    >>> with client.consumer("orders", "billing", start="earliest") as consumer:
    ...     for message in consumer.poll(100, timeout=1.0):
    ...         consumer.ack(message)
    """

    def __init__(self, native: _native.Consumer, config: ConsumerConfig) -> None:
        self._native = native
        self.config = config

    @property
    def topic(self) -> str:
        return self._native.topic

    @property
    def subscription(self) -> str:
        return self._native.subscription

    def poll(self, max_messages: int, timeout: float) -> List[ReceivedMessage]:
        """Up to ``max_messages`` messages, waiting up to ``timeout`` seconds for the first one;
        an empty list when none arrived. Releases the GIL while waiting; Ctrl-C interrupts.

        Raises:
            the error that ended the subscription (e.g. ``TopicNotFoundError``), or
            :class:`ClosedError` after :meth:`close`.
        """
        return self._native.poll(max_messages, timeout)

    def __iter__(self) -> Iterator[ReceivedMessage]:
        """``for message in consumer:`` — each message as it comes, waiting as long as it takes;
        the loop ends once the consumer is closed, and raises the error that ends the
        subscription. Messages are taken one at a time, as they are yielded (with auto-commit,
        one counts as acknowledged then), so leaving the loop leaves the rest for the next
        poll."""
        return _one_at_a_time(self._native)

    def ack(self, message: ReceivedMessage) -> None:
        """Acknowledges a polled message."""
        self._native.ack(message)

    def ack_offset(self, partition: int, offset: int) -> None:
        """Acknowledges the message at ``offset`` on ``partition``."""
        self._native.ack_offset(partition, offset)

    def nack(self, message: ReceivedMessage, delay: float = 0.0) -> None:
        """Asks for redelivery after ``delay`` seconds: a queue-mode operation; a stream-mode
        consumer raises :class:`UnsupportedError`."""
        self._native.nack(message, delay)

    def commit(self) -> None:
        """Sends the acknowledged positions now."""
        self._native.commit()

    def close(self) -> None:
        """Commits what was acknowledged and leaves the subscription."""
        self._native.close()

    def assignment(self) -> List[int]:
        """The partitions this member owns now."""
        return self._native.assignment()

    def stats(self) -> ConsumerStats:
        """Counters: received, polled, buffered, max_buffered, commits, reconnects, ..."""
        return self._native.stats()

    def __repr__(self) -> str:
        return repr(self._native)


class QueueConsumer(_Closeable):
    """A member of a queue-mode subscription: each delivery has an attempt count and is acked,
    nacked (redelivered after a delay) or extended one by one. Unacked deliveries come back after
    the ack deadline; after ``max_deliveries`` a message moves to the dead-letter topic.

    >>> with client.queue_consumer("jobs", "workers") as worker:
    ...     for job in worker.poll(10, timeout=1.0):
    ...         try:
    ...             run(job.value)
    ...             worker.ack(job)
    ...         except Exception:
    ...             worker.nack(job, delay=5.0)
    """

    def __init__(self, native: _native.QueueConsumer, config: ConsumerConfig) -> None:
        self._native = native
        self.config = config

    @property
    def topic(self) -> str:
        return self._native.topic

    @property
    def subscription(self) -> str:
        return self._native.subscription

    def poll(self, max_messages: int, timeout: float) -> List[QueueMessage]:
        """Up to ``max_messages`` deliveries, waiting up to ``timeout`` seconds for the first."""
        return self._native.poll(max_messages, timeout)

    def __iter__(self) -> Iterator[QueueMessage]:
        """``for delivery in consumer:`` — each delivery as it comes, waiting as long as it
        takes; ends once the consumer is closed (see :meth:`Consumer.__iter__`). Ack, nack or
        extend each."""
        return _one_at_a_time(self._native)

    def ack(self, message: QueueMessage) -> None:
        """Acknowledges a delivery (batched: sent on the ack interval, once 256 are
        pending, on :meth:`flush` and close)."""
        self._native.ack(message)

    def nack(self, message: QueueMessage, delay: float = 0.0) -> None:
        """Asks for redelivery after ``delay`` seconds."""
        self._native.nack(message, delay)

    def extend_deadline(self, message: QueueMessage, extension: float) -> None:
        """Pushes the delivery's ack deadline ``extension`` seconds out."""
        self._native.extend_deadline(message, extension)

    def flush(self) -> None:
        """Sends the pending acks now."""
        self._native.flush()

    def run(
        self,
        handler: Callable[[QueueMessage], Any],
        *,
        concurrency: int = RUN_DEFAULTS["concurrency"],
        retry_backoff: float = RUN_DEFAULTS["retry_backoff"],
        max_retry_backoff: float = RUN_DEFAULTS["max_retry_backoff"],
        stop: Optional[threading.Event] = None,
    ) -> None:
        """Calls ``handler(delivery)`` on each delivery, at most ``concurrency`` at once (in a
        thread pool): a return acks it, an exception nacks it with :func:`retry_delay` of its
        attempt (``retry_backoff`` seconds, doubled per earlier attempt, at most
        ``max_retry_backoff``), so it comes back later and, after the subscription's
        ``max_deliveries``, is dead-lettered. The semantics are every SDK's
        (docs/sdk-conformance.md, C26).

        Returns once ``stop`` is set or the consumer is closed, after the deliveries being
        handled finished and pending acks were flushed; raises the error that ended the
        subscription."""
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        slots = threading.BoundedSemaphore(concurrency)
        failures: List[RapidMQError] = []

        def handle(delivery: QueueMessage) -> None:
            try:
                try:
                    handler(delivery)
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

        with ThreadPoolExecutor(concurrency, thread_name_prefix="rapidmq-handler") as pool:
            while not (stop is not None and stop.is_set()) and not failures:
                slots.acquire()
                free = 1
                while free < concurrency and slots.acquire(blocking=False):
                    free += 1
                try:
                    deliveries = self._native.poll(free, _RUN_WAIT)
                except RapidMQError as err:
                    deliveries = []
                    if not isinstance(err, ClosedError):
                        failures.append(err)
                    stop_polling = True
                else:
                    stop_polling = False
                for _ in range(free - len(deliveries)):
                    slots.release()
                for delivery in deliveries:
                    pool.submit(handle, delivery)
                if stop_polling:
                    break
        try:
            self.flush()
        except ClosedError:
            pass
        if failures:
            raise failures[0]

    def close(self) -> None:
        """Sends the pending acks and leaves the subscription."""
        self._native.close()

    def take_stream_errors(self) -> List[RapidMQError]:
        """Errors the broker reported about single requests (e.g. ``ReceiptUnknownError``),
        oldest first; they do not end the subscription."""
        return self._native.take_stream_errors()

    def stats(self) -> QueueConsumerStats:
        return self._native.stats()

    def __repr__(self) -> str:
        return repr(self._native)
