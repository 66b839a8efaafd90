"""Publishes keyed messages and prints where each landed.

    RAPIDMQ_URL=http://127.0.0.1:7420 python examples/python/producer.py [topic] [count]
"""

import os
import sys

import rapidmq

url = os.environ.get("RAPIDMQ_URL", "http://127.0.0.1:7420")
topic = sys.argv[1] if len(sys.argv) > 1 else "orders"
count = int(sys.argv[2]) if len(sys.argv) > 2 else 10

with rapidmq.Client(url) as client:
    try:
        client.admin().create_topic(topic, partitions=4)
    except rapidmq.TopicAlreadyExistsError:
        pass
    with client.producer(topic) as producer:  # closing flushes
        receipts = [
            producer.send(f"order {i}", key=f"customer-{i % 3}", headers={"source": "example"})
            for i in range(count)
        ]
        for receipt in receipts:
            delivery = receipt.result()  # raises the RapidMQError subclass of a failure
            print(f"stored at partition {delivery.partition}, offset {delivery.offset}")
