"""Request/reply (conformance C27) against a real broker: a responder on a queue subscription
answers concurrent requests, each gets its own reply; no responder is a timeout; a message that
is no request cannot be replied to; closing the requester deletes its inbox."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import rapidmq
from conftest import GUARD


def _header(message: rapidmq.ReceivedMessage, name: str) -> bytes:
    return next(value for key, value in message.headers if key == name)


def _respond(url: str, topic: str, count: int) -> None:
    """Answers ``count`` requests on ``topic`` with their value upper-cased and the request's
    ``n`` header echoed back, from a client of its own."""
    with rapidmq.Client(url) as responder:
        with responder.queue_consumer(topic, "responders", start="earliest") as consumer:
            answered = 0
            while answered < count:
                for delivery in consumer.poll(count - answered, 30.0):
                    n = _header(delivery.message, "n")
                    # The reply as a Message; the delivery itself is the request it answers.
                    reply = rapidmq.Message(delivery.value.upper(), headers=[("n", n)])
                    responder.reply(delivery, reply)
                    consumer.ack(delivery)
                    answered += 1


def test_concurrent_requests_each_get_their_own_reply(broker, client, make_topic):
    requests = 20
    topic = make_topic(2)
    with ThreadPoolExecutor(requests + 1) as pool:
        answering = pool.submit(_respond, broker.url, topic, requests)

        def ask(i: int) -> rapidmq.ReceivedMessage:
            return client.request(topic, f"ask-{i}", headers={"n": str(i)}, timeout=30.0)

        asks = [pool.submit(ask, i) for i in range(requests)]
        replies = [a.result(timeout=GUARD) for a in asks]
        answering.result(timeout=GUARD)
    for i, reply in enumerate(replies):
        assert reply.value == f"ASK-{i}".encode()
        assert _header(reply, "n") == str(i).encode(), f"reply {i} went to the wrong request"
        assert any(key == rapidmq.CORRELATION_ID_HEADER for key, _ in reply.headers)
        assert reply.topic.startswith("_inbox."), f"replies come through the inbox: {reply.topic}"


def test_a_request_nobody_answers_times_out_and_a_late_reply_is_dropped(broker, client, make_topic):
    topic = make_topic(1)
    started = time.monotonic()
    with pytest.raises(rapidmq.TimeoutError) as err:
        client.request(topic, "anyone?", timeout=0.3)
    assert time.monotonic() - started >= 0.3
    assert isinstance(err.value, TimeoutError), "also the builtin TimeoutError"
    assert err.value.name == "TIMEOUT"

    # The unanswered request is still on the topic; answering it now reaches nobody, and the
    # requester's next request gets its own reply, not the late one.
    with rapidmq.Client(broker.url) as responder:
        late = client.fetch(topic, 0, 0, 1, max_wait=30.0).messages[0]
        responder.reply(late, "late")

        def answer_the_next() -> None:
            with responder.consumer(topic, "s", start=rapidmq.StartPosition.offset(1)) as c:
                got: list = []
                deadline = time.monotonic() + GUARD
                while not got:
                    assert time.monotonic() < deadline, "the second request never came"
                    got = c.poll(1, 30.0)
                responder.reply(got[0], "on time")

        with ThreadPoolExecutor(1) as pool:
            answering = pool.submit(answer_the_next)
            reply = client.request(topic, "again", timeout=30.0)
            answering.result(timeout=GUARD)
    assert reply.value == b"on time"


def test_a_message_that_is_no_request_cannot_be_replied_to(client, make_topic):
    topic = make_topic(1)
    with client.producer(topic) as producer:
        producer.send("plain").result()
    plain = client.fetch(topic, 0, 0, 1).messages[0]
    with pytest.raises(rapidmq.InvalidArgumentError) as err:
        client.reply(plain, "x")
    assert type(err.value) is rapidmq.InvalidArgumentError, repr(err.value)

    with pytest.raises(rapidmq.InvalidArgumentError) as err:
        client.request(topic, "q", timeout=0.0)
    assert type(err.value) is rapidmq.InvalidArgumentError, repr(err.value)
    with pytest.raises(rapidmq.InvalidArgumentError):
        client.request(topic, "q", timeout=-1.0)

    with pytest.raises(rapidmq.TopicNotFoundError):
        client.request("no-such-topic", "q", timeout=5.0)


def test_closing_the_requester_deletes_its_inbox(broker, client, make_topic):
    topic = make_topic(1)
    requester = rapidmq.Client(broker.url)
    with pytest.raises(rapidmq.TimeoutError):
        requester.request(topic, "q", timeout=0.1)
    request = client.fetch(topic, 0, 0, 1, max_wait=30.0).messages[0]
    inbox = _header(request, rapidmq.REPLY_TO_HEADER).decode()
    admin = client.admin()
    assert admin.describe_topic(inbox).name == inbox, "the inbox exists while in use"

    requester.close()
    with pytest.raises(rapidmq.TopicNotFoundError):
        admin.describe_topic(inbox)
    with pytest.raises(rapidmq.TopicNotFoundError):
        client.reply(request, "too late")
