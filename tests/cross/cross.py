"""The Python side of the cross-language fidelity check (tests/cross/run.sh): publishes the
messages of a fixture, or reads a topic back and checks it holds exactly those messages, byte for
byte (key presence, value, headers in order) and at offsets 0, 1, 2, ...

    python cross.py publish|verify <endpoint> <topic> <fixture>

The fixture format is described at the top of tests/cross/messages.txt.
"""

from __future__ import annotations

import base64
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
    with client.producer(topic) as producer:
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


def main() -> int:
    if len(sys.argv) != 5 or sys.argv[1] not in ("publish", "verify"):
        print("usage: cross.py publish|verify <endpoint> <topic> <fixture>", file=sys.stderr)
        return 2
    command, endpoint, topic, path = sys.argv[1:]
    messages = fixture(path)
    try:
        with rapidmq.Client(endpoint) as client:
            (publish if command == "publish" else verify)(client, topic, messages)
    except (AssertionError, rapidmq.RapidMQError) as err:
        print(f"python {command} {topic}: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
