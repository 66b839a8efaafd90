"""The Python quickstart run by the install test (tests/dist/python.sh) with the installed wheel:
creates a topic, publishes keyed messages with headers, consumes them back, checks every one, and
prints the version the package reports. Exits non-zero on any mismatch.

    python quickstart.py ENDPOINT VERSION      (ENDPOINT: http://127.0.0.1:PORT)
"""

import sys
import time
import uuid

import rapidmq

COUNT = 5
GUARD = 30.0  # seconds: a hang guard, never a wait that decides anything


def fail(why: str) -> None:
    print(f"quickstart: {why}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    endpoint, version = sys.argv[1], sys.argv[2]
    if rapidmq.__version__ != version:
        fail(f"rapidmq.__version__ is {rapidmq.__version__!r}, the release is {version!r}")
    revision = rapidmq.__git_revision__
    if not isinstance(revision, str) or not revision:
        fail(f"rapidmq.__git_revision__ is {revision!r}")
    print(f"quickstart: rapidmq {rapidmq.__version__} ({revision}) from {rapidmq.__file__}")

    topic = f"quickstart-{uuid.uuid4().hex[:8]}"
    # value -> (key, headers)
    sent = {
        b"order %d" % i: (b"customer-%d" % (i % 2), {"source": b"quickstart", "n": b"%d" % i})
        for i in range(COUNT)
    }
    with rapidmq.Client(endpoint) as client:
        client.admin().create_topic(topic, partitions=2)
        with client.producer(topic) as producer:  # closing flushes
            receipts = [
                producer.send(value, key=key, headers=headers)
                for value, (key, headers) in sent.items()
            ]
            for receipt in receipts:
                delivery = receipt.result()  # raises the RapidMQError subclass of a failure
                if delivery.offset is None:
                    fail(f"a send was not stored: {delivery!r}")
        print(f"quickstart: published {COUNT} messages to {topic}")

        received = {}
        deadline = time.monotonic() + GUARD
        with client.consumer(topic, "quickstart", start=rapidmq.StartPosition.EARLIEST) as consumer:
            while len(received) < COUNT and time.monotonic() < deadline:
                for message in consumer.poll(100, timeout=1.0):
                    received[message.value] = (message.key, dict(message.headers))
                    consumer.ack(message)
        for value, (key, headers) in sent.items():
            if value not in received:
                fail(f"{value!r} was not consumed in {GUARD:.0f} s (got {sorted(received)})")
            got_key, got_headers = received[value]
            if got_key != key:
                fail(f"{value!r} came back with key {got_key!r}, sent {key!r}")
            for name, header in headers.items():
                if got_headers.get(name) != header:
                    fail(f"{value!r} came back with headers {got_headers!r}, sent {headers!r}")
        if len(received) != COUNT:
            fail(f"consumed {len(received)} distinct messages, published {COUNT}")
        print(f"quickstart: consumed {COUNT} messages with their keys and headers")


if __name__ == "__main__":
    main()
