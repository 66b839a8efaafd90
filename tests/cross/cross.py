"""The Python side of the cross-language fidelity check (tests/cross/run.sh): publishes the
messages of a fixture, or reads a topic back and checks it holds exactly those messages, byte for
byte (key presence, value, headers in order) and at offsets 0, 1, 2, ...

Request/reply: ``request`` sends each fixture message as a request and checks that the reply
echoes it byte for byte; ``respond`` answers ``requesters`` times the fixture's requests on a
queue subscription, echoing each (its key, value and headers but reply-to and correlation-id).

    python cross.py publish|verify|request <endpoint> <topic> <fixture>
    python cross.py respond <endpoint> <topic> <fixture> <requesters>

The fixture format is described at the top of tests/cross/messages.txt.
"""

from __future__ import annotations

import base64
import os
import sys

import rapidmq

Expected = tuple[bytes | None, bytes, list[tuple[str, bytes]]]


def parse(line: str) -> Expected:
    tokens = line.split(" ")
    key_token = tokens[0]
    key = None if key_token == "-" else base64.b64decode(key_token.removeprefix("k:"), validate=True)
    assert tokens[1].startswith("v:"), f"no value token in {line!r}"
    value = base64.b64decode(tokens[1][2:], validate=True)
    headers = []
    for token in tokens[2:]:
        tag, name, data = token.split(":")
        assert tag == "h", f"bad header token {token!r}"
        headers.append((base64.b64decode(name).decode(), base64.b64decode(data, validate=True)))
    return key, value, headers


def fixture(path: str) -> list[Expected]:
    with open(path, encoding="ascii") as f:
        return [parse(line) for line in f.read().splitlines() if line and not line.startswith("#")]


def publish(client: rapidmq.Client, topic: str, messages: list[Expected]) -> None:
    compression = os.environ.get("CROSS_COMPRESSION", "none")
    with client.producer(topic, compression=compression) as producer:
        for index, (key, value, headers) in enumerate(messages):
            delivery = producer.send(value, key=key, headers=headers).result()
            assert delivery.offset == index, f"message {index} went to offset {delivery.offset}"


def verify(client: rapidmq.Client, topic: str, messages: list[Expected]) -> None:
    read: list = []
    while len(read) < len(messages):
        fetched = client.fetch(topic, 0, len(read), 1000)
        assert fetched.messages, f"{len(read)} of {len(messages)} messages"
        read.extend(fetched.messages)
    for index, (m, expected) in enumerate(zip(read, messages)):
        assert (m.partition, m.offset) == (0, index), f"message {index} at {m.partition}/{m.offset}"
        seen = (m.key, m.value, [(name, bytes(value)) for name, value in m.headers])
        assert seen == expected, f"message {index}: read {seen!r}, sent {expected!r}"


def echoed(m) -> Expected:
    """``m`` without the headers request/reply adds."""
    added = (rapidmq.REPLY_TO_HEADER, rapidmq.CORRELATION_ID_HEADER)
    headers = [(name, bytes(value)) for name, value in m.headers if name not in added]
    return m.key, m.value, headers


def request(client: rapidmq.Client, topic: str, messages: list[Expected]) -> None:
    for index, (key, value, headers) in enumerate(messages):
        reply = client.request(topic, value, key=key, headers=headers, timeout=30.0)
        seen = echoed(reply)
        assert seen == (key, value, headers), f"request {index}: the reply was {seen!r}"


def respond(client: rapidmq.Client, topic: str, count: int) -> None:
    with client.queue_consumer(topic, "responders", start=rapidmq.StartPosition.EARLIEST) as consumer:
        answered = 0
        while answered < count:
            deliveries = consumer.poll(count - answered, timeout=60.0)
            assert deliveries, f"answered {answered} of {count} requests"
            for delivery in deliveries:
                key, value, headers = echoed(delivery.message)
                client.reply(delivery, value, key=key, headers=headers)
                consumer.ack(delivery)
                answered += 1


def main() -> int:
    args = sys.argv[1:]
    respond_args = len(args) == 5 and args[0] == "respond" and args[4].isdigit()
    if not respond_args and (len(args) != 4 or args[0] not in ("publish", "verify", "request")):
        print("usage: cross.py publish|verify|request <endpoint> <topic> <fixture>", file=sys.stderr)
        print("       cross.py respond <endpoint> <topic> <fixture> <requesters>", file=sys.stderr)
        return 2
    command, endpoint, topic, path = args[:4]
    messages = fixture(path)
    try:
        with rapidmq.Client(endpoint) as client:
            if command == "respond":
                respond(client, topic, int(args[4]) * len(messages))
            else:
                {"publish": publish, "verify": verify, "request": request}[command](client, topic, messages)
    except (AssertionError, rapidmq.RapidMQError) as err:
        print(f"python {command} {topic}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
