"""The asyncio API: send, consume, ack, admin and errors on a running event loop."""

from __future__ import annotations

import asyncio
import collections
import time

import pytest

import rapidmq
from rapidmq import aio
from conftest import unique_topic


@pytest.mark.asyncio
async def test_asyncio_send_consume_and_ack_commit_the_subscription(broker):
    async with await aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        admin = client.admin()
        await admin.create_topic(topic, 2)
        async with await client.producer(topic) as producer:
            receipts = [await producer.send(f"m{i}", key=f"k{i % 3}") for i in range(100)]
            deliveries = [await r for r in receipts]
            assert all(d.status == "appended" for d in deliveries)
            assert sorted(d.partition for d in deliveries) == sorted(
                r.result().partition for r in receipts
            )
        async with await client.consumer(topic, "aio", start="earliest") as consumer:
            got = []
            while len(got) < 100:
                messages = await consumer.poll(50, 10.0)
                assert messages, f"stalled at {len(got)}"
                for m in messages:
                    consumer.ack(m)
                got += messages
            assert sorted(m.value for m in got) == sorted(f"m{i}".encode() for i in range(100))
        assert await admin.lag(topic, "aio") == 0
        info = await admin.describe_subscription(topic, "aio")
        assert sum(c.committed_offset for c in info.cursors) == 100


@pytest.mark.asyncio
async def test_asyncio_errors_are_the_same_subclasses(broker):
    client = await aio.Client.connect(broker.url)
    with pytest.raises(rapidmq.TopicNotFoundError) as err:
        await client.producer("missing")
    assert err.value.code == 2001
    with pytest.raises(rapidmq.TopicNotFoundError):
        await client.admin().describe_topic("missing")
    with pytest.raises(rapidmq.UnavailableError):
        await aio.Client.connect("http://127.0.0.1:1", connect_timeout=0.5)


@pytest.mark.asyncio
async def test_the_event_loop_keeps_running_while_a_poll_waits(broker):
    async with await aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        await client.admin().create_topic(topic, 1)
        consumer = await client.consumer(topic)
        producer = await client.producer(topic)
        polling = asyncio.ensure_future(consumer.poll(10, 30.0))
        # While the poll waits, this coroutine runs on the same loop and sends what it receives.
        receipt = await producer.send("wake up")
        await receipt
        messages = await asyncio.wait_for(polling, 30.0)
        assert [m.value for m in messages] == [b"wake up"]
        await producer.close()
        await consumer.close()


@pytest.mark.asyncio
async def test_asyncio_producer_waits_for_room_when_its_buffer_is_full(broker):
    async with await aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        await client.admin().create_topic(topic, 1)
        async with await client.producer(topic, max_buffered_messages=10) as producer:
            receipts = [await producer.send(str(i)) for i in range(200)]
            offsets = [(await r).offset for r in receipts]
        assert offsets == list(range(200))


@pytest.mark.asyncio
async def test_asyncio_try_send_alter_topic_and_is_closed(broker):
    client = await aio.Client.connect(broker.url)
    topic = unique_topic()
    await client.admin().create_topic(topic, 1)
    info = await client.admin().alter_topic(topic, retention_messages=500)
    assert info.config.retention_messages == 500
    async with await client.producer(topic, linger=3600.0, max_buffered_messages=3) as producer:
        receipts = [producer.try_send(str(i)) for i in range(3)]
        assert None not in receipts
        assert producer.try_send("full") is None
        await producer.flush()
        assert [(await r).offset for r in receipts] == [0, 1, 2]
    assert not client.is_closed()
    await client.close()
    assert client.is_closed()


@pytest.mark.asyncio
async def test_asyncio_opens_in_async_with_without_await_and_iterates_with_async_for(broker):
    async with aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        await client.admin().create_topic(topic, 2)
        async with client.producer(topic) as producer:
            for i in range(20):
                await producer.send(str(i))
        assert producer.stats().messages_acked == 20, "closing the producer flushed it"
        async with client.consumer(topic, "iterate", start="earliest") as consumer:
            seen = []
            async for message in consumer:
                seen.append(int(message.value))
                if len(seen) == 20:
                    break
        assert sorted(seen) == list(range(20))
        assert [m async for m in consumer] == [], "iteration ends once the consumer is closed"
        async with client.queue_consumer(topic, "jobs", start="earliest") as worker:
            done = []
            async for delivery in worker:
                worker.ack(delivery)
                done.append(int(delivery.value))
                if len(done) == 20:
                    break
        assert sorted(done) == list(range(20))
    assert client.is_closed()


@pytest.mark.asyncio
async def test_asyncio_queue_consumer_acks_and_nacks(broker):
    async with await aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        await client.admin().create_topic(topic, 1)
        async with await client.producer(topic) as producer:
            await (await producer.send("job"))
        async with await client.queue_consumer(topic, "w", start="earliest") as worker:
            first = await worker.poll(1, 30.0)
            assert first[0].attempt == 1
            worker.nack(first[0], 0.0)
            again = []
            while not again:
                again = await worker.poll(1, 30.0)
            assert (again[0].value, again[0].attempt) == (b"job", 2)
            worker.ack(again[0])
            await worker.flush()


@pytest.mark.asyncio
async def test_asyncio_dead_letters_are_listed_by_page_and_replayed_with_remaining(broker):
    async with await aio.Client.connect(broker.url) as client:
        topic, admin = unique_topic(), client.admin()
        dlq = f"{topic}.dlq"
        await admin.create_topic(topic, 1)
        async with await client.producer(topic) as producer:
            for value in ("a", "b", "c"):
                await (await producer.send(value))
        async with await client.queue_consumer(
            topic, "w", start="earliest", queue=rapidmq.QueueConfig(max_deliveries=1)
        ) as worker:
            nacked = 0
            while nacked < 3:
                for d in await worker.poll(3 - nacked, 30.0):
                    worker.nack(d, 0.0)
                    nacked += 1

            async def pending() -> int:
                try:
                    return len((await admin.list_dead_letters(dlq, 10)).dead_letters)
                except rapidmq.TopicNotFoundError:
                    return 0

            # Dead-lettering follows the nacks asynchronously: re-check, bounded.
            for _ in range(1500):
                if await pending() == 3:
                    break
                await asyncio.sleep(0.02)
            assert await pending() == 3

            first = await admin.list_dead_letters(dlq, 2)
            second = await admin.list_dead_letters(dlq, 2, first.next_page_token)
            assert first.next_page_token is not None and second.next_page_token is None
            values = sorted(d.message.value for d in first.dead_letters + second.dead_letters)
            assert values == [b"a", b"b", b"c"]
            with pytest.raises(rapidmq.InvalidArgumentError):
                await admin.list_dead_letters(dlq, 2, "not-a-token")

            replay = await admin.replay_dead_letters(dlq, 2)
            assert (replay.replayed, replay.remaining) == (2, 1)
            replay = await admin.replay_dead_letters(dlq)
            assert (replay.replayed, replay.remaining) == (1, 0)
            back = []
            while len(back) < 3:
                back += await worker.poll(3 - len(back), 30.0)
            assert sorted(d.value for d in back) == [b"a", b"b", b"c"]
            for d in back:
                worker.ack(d)


@pytest.mark.asyncio
async def test_asyncio_handler_acks_what_it_handles_and_nacks_failures_with_backoff(broker):
    """C26 queue-handler (the asyncio run)."""
    from test_queue import _check_handled, _handled_messages

    async with aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        admin = client.admin()
        await admin.create_topic(topic, 2)
        async with client.producer(topic) as producer:
            for value in _handled_messages():
                await producer.send(value)
        queue = rapidmq.QueueConfig(max_deliveries=3)
        consumer = await client.queue_consumer(topic, "handled", start="earliest", queue=queue)
        handled: dict = collections.defaultdict(list)
        running = [0, 0]

        async def handler(delivery):  # type: ignore[no-untyped-def]
            value = delivery.value.decode()
            running[0] += 1
            running[1] = max(running)
            handled[value].append((delivery.attempt, time.monotonic()))
            await asyncio.sleep(0)  # let other deliveries start meanwhile
            running[0] -= 1
            if value == "poison" or (value == "flaky" and delivery.attempt == 1):
                raise RuntimeError("fails")

        stop = asyncio.Event()
        settings = {"concurrency": 4, "retry_backoff": 0.2, "max_retry_backoff": 5.0}
        run = asyncio.ensure_future(consumer.run(handler, stop=stop, **settings))
        dlq = f"{topic}.dlq"

        async def dead_lettered() -> bool:
            try:
                return len((await admin.list_dead_letters(dlq, 10)).dead_letters) == 1
            except rapidmq.TopicNotFoundError:
                return False

        deadline = time.monotonic() + 60
        while not (await dead_lettered() and len(handled) == 20 and len(handled["flaky"]) == 2):
            assert time.monotonic() < deadline, f"handled so far: {dict(handled)}"
            await asyncio.sleep(0.02)  # a poll pace: each check observes
        stop.set()
        await asyncio.wait_for(run, 60)
        with rapidmq.Client(broker.url) as checker:
            _check_handled(handled, checker.admin(), dlq, running[1])
        await consumer.close()


@pytest.mark.asyncio
async def test_asyncio_request_and_reply(broker):
    """C27 request-reply on the event loop: concurrent requests, a responder task, a timeout."""
    requests = 10
    async with aio.Client.connect(broker.url) as client, aio.Client.connect(broker.url) as other:
        topic = unique_topic()
        await client.admin().create_topic(topic, 2)

        async def respond() -> list:
            answered = []
            async with other.queue_consumer(topic, "responders", start="earliest") as consumer:
                while len(answered) < requests:
                    for delivery in await consumer.poll(requests - len(answered), 30.0):
                        n = next(v for k, v in delivery.message.headers if k == "n")
                        await other.reply(delivery, delivery.value.upper(), headers=[("n", n)])
                        consumer.ack(delivery)
                        answered.append(delivery.message)
            return answered

        answering = asyncio.ensure_future(respond())
        asks = (
            client.request(topic, f"ask-{i}", headers={"n": str(i)}, timeout=30.0)
            for i in range(requests)
        )
        replies = await asyncio.wait_for(asyncio.gather(*asks), 60)
        answered = await asyncio.wait_for(answering, 60)
        for i, reply in enumerate(replies):
            assert reply.value == f"ASK-{i}".encode()
            assert ("n", str(i).encode()) in reply.headers, f"reply {i} went to the wrong request"
            assert reply.topic.startswith("_inbox.")

        # Answering a request again reaches its inbox (and is dropped there): a Delivery.
        delivery = await other.reply(answered[0], rapidmq.Message("answered twice"))
        assert isinstance(delivery, rapidmq.Delivery) and delivery.status == "appended"
        with pytest.raises(rapidmq.InvalidArgumentError):
            await other.reply(replies[0], "a reply is no request")

        quiet = unique_topic()
        await client.admin().create_topic(quiet, 1)
        with pytest.raises(rapidmq.TimeoutError):
            await client.request(quiet, "anyone?", timeout=0.2)
