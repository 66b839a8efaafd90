"""Consumes a topic as a member of a subscription, acknowledging what it processed.

    RAPIDMQ_URL=http://127.0.0.1:7420 python examples/python/consumer.py [topic] [count]

Stops after `count` messages, or after 5 quiet seconds. Ctrl-C interrupts a waiting poll.
"""

import os
import sys

import rapidmq

url = os.environ.get("RAPIDMQ_URL", "http://127.0.0.1:7420")
topic = sys.argv[1] if len(sys.argv) > 1 else "orders"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10

with rapidmq.Client(url) as client:
    with client.consumer(topic, "billing", start=rapidmq.StartPosition.EARLIEST) as consumer:
        seen = 0
        while seen < count:
            messages = consumer.poll(100, timeout=5.0)
            if not messages:
                break
            for message in messages:
                print(f"{message.partition}:{message.offset} {message.key!r} {message.value!r}")
                consumer.ack(message)  # committed on an interval and on close
                seen += 1
    print(f"consumed {seen}; lag now {client.admin().lag(topic, 'billing')}")
