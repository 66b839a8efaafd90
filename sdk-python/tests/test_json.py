"""JSON helpers (conformance C28) against a real broker: ``rapidmq.json_message`` writes a value
(a dataclass too) as compact UTF-8 JSON with ``content-type: application/json`` after the
caller's headers; ``message.json()`` / ``message.json(cls)`` reads it back, with or without that
header; a value that is not JSON, or cannot be written as JSON, is ``InvalidArgumentError``."""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Dict, List, Optional

import pytest

import rapidmq
from rapidmq import aio
from conftest import GUARD, unique_topic


@dataclass
class Order:
    id: int
    name: str
    tags: List[str]
    price: float
    note: Optional[str]


@dataclass
class Line:
    sku: str
    count: int


@dataclass
class Basket:
    owner: str
    lines: List[Line]
    by_sku: Dict[str, Line]
    first: Optional[Line] = None


ORDER = Order(id=7, name="café ☕", tags=["a", "b"], price=12.5, note=None)


def test_a_value_sent_as_json_is_read_back_as_the_same_object(client, make_topic):
    topic = make_topic(1)
    with client.producer(topic) as producer:
        message = rapidmq.json_message(ORDER, key="k", headers={"source": "test"})
        producer.send(message).result()
        # JSON bytes published without the helper: no content-type header.
        producer.send(b'{"id": 8, "name": "plain", "tags": [], "price": 1, "note": "n"}').result()

    sent, plain = client.fetch(topic, 0, 0, 10).messages
    assert sent.json(Order) == ORDER
    assert sent.key == b"k"
    assert sent.headers == [("source", b"test"), ("content-type", b"application/json")]
    assert (rapidmq.CONTENT_TYPE_HEADER, rapidmq.JSON_CONTENT_TYPE) == (
        "content-type",
        "application/json",
    )
    assert json.loads(sent.value) == dataclasses.asdict(ORDER)
    assert sent.value == json.dumps(
        dataclasses.asdict(ORDER), separators=(",", ":"), ensure_ascii=False
    ).encode(), "compact UTF-8 JSON"
    assert sent.json() == {
        "id": 7,
        "name": "café ☕",
        "tags": ["a", "b"],
        "price": 12.5,
        "note": None,
    }

    assert plain.headers == []
    assert plain.json() == {"id": 8, "name": "plain", "tags": [], "price": 1, "note": "n"}
    assert plain.json(Order) == Order(id=8, name="plain", tags=[], price=1, note="n")

    # A queue delivery decodes the same way (it delegates to its message).
    with client.queue_consumer(topic, "json", start="earliest") as queue:
        deliveries = []
        while len(deliveries) < 2:
            taken = queue.poll(2 - len(deliveries), GUARD)
            assert taken, "the queue delivers both messages"
            deliveries += taken
        deliveries.sort(key=lambda d: d.offset)
        assert deliveries[0].json(Order) == ORDER
        assert deliveries[1].json() == plain.json()
        for d in deliveries:
            queue.ack(d)


def test_a_value_that_is_not_json_fails_with_invalid_argument(client, make_topic):
    topic = make_topic(1)
    with client.producer(topic) as producer:
        for value in (b"not json", b"[1, 2]", b'{"id": 1}', b"\xff\xfe", b"NaN"):
            producer.send(value).result()
    not_json, array, partial, not_utf8, nan = client.fetch(topic, 0, 0, 10).messages

    with pytest.raises(rapidmq.InvalidArgumentError) as err:
        not_json.json()
    assert err.value.code == 1001 and err.value.name == "INVALID_ARGUMENT"
    assert isinstance(err.value.__cause__, json.JSONDecodeError)
    with pytest.raises(rapidmq.InvalidArgumentError):
        not_json.json(Order)
    for value in (not_utf8, nan):
        with pytest.raises(rapidmq.InvalidArgumentError) as err:
            value.json()
        assert isinstance(err.value.__cause__, ValueError)

    # JSON, but no Order can be built from it: not an object; a required field missing.
    assert array.json() == [1, 2]
    for value in (array, partial):
        with pytest.raises(rapidmq.InvalidArgumentError) as err:
            value.json(Order)
        assert isinstance(err.value.__cause__, TypeError)
    with pytest.raises(TypeError):
        partial.json(dict)  # not a dataclass: a wrong call, not a wrong value

    with pytest.raises(rapidmq.InvalidArgumentError) as err:
        rapidmq.json_message(object())
    assert err.value.code == 1001
    assert isinstance(err.value.__cause__, TypeError)
    with pytest.raises(rapidmq.InvalidArgumentError) as err:
        rapidmq.json_message({"price": float("nan")})
    assert isinstance(err.value.__cause__, ValueError)
    with pytest.raises(rapidmq.InvalidArgumentError):
        rapidmq.json_message([ORDER, {"other": object()}])


def test_json_requests_and_replies_carry_nested_dataclasses(broker, client, make_topic):
    topic = make_topic(1)
    basket = Basket(
        owner="ada",
        lines=[Line("x-1", 2), Line("y-2", 1)],
        by_sku={"x-1": Line("x-1", 2)},
        first=Line("x-1", 2),
    )

    def respond() -> Basket:
        with rapidmq.Client(broker.url) as responder:
            with responder.queue_consumer(topic, "responders", start="earliest") as consumer:
                while True:
                    for job in consumer.poll(1, GUARD):
                        asked = job.json(Basket)
                        total = sum(line.count for line in asked.lines)
                        responder.reply(job, rapidmq.json_message({"total": total}))
                        consumer.ack(job)
                        return asked

    with ThreadPoolExecutor(1) as pool:
        answering = pool.submit(respond)
        reply = client.request(topic, rapidmq.json_message(basket), timeout=GUARD)
        asked = answering.result(timeout=GUARD)
    assert asked == basket
    assert isinstance(asked.lines[0], Line) and isinstance(asked.by_sku["x-1"], Line)
    assert reply.json() == {"total": 3}
    assert (rapidmq.CONTENT_TYPE_HEADER, b"application/json") in reply.headers


@pytest.mark.asyncio
async def test_asyncio_json_send_and_consume(broker):
    async with aio.Client.connect(broker.url) as client:
        topic = unique_topic()
        await client.admin().create_topic(topic, 1)
        async with client.producer(topic) as producer:
            receipt = await producer.send(
                rapidmq.json_message(ORDER, key="k", headers=[("source", "test")])
            )
            await receipt
        async with client.consumer(topic, "json", start="earliest") as consumer:
            messages = await consumer.poll(1, GUARD)
            assert len(messages) == 1
            assert messages[0].json(Order) == ORDER
            assert messages[0].headers[-1] == ("content-type", b"application/json")
            consumer.ack(messages[0])
