"""Queue worker (queue mode: per-message ack, nack with delay, dead letters).

The broker and the admin API support queue subscriptions, but the shared client core does not
yet expose a queue-mode consumer to bindings, so this worker only sets the subscription up and
shows what is there. It will consume once `rapidmq_core::QueueConsumer` lands and is bound.

    RAPIDMQ_URL=http://127.0.0.1:7420 python examples/python/queue_worker.py [topic]
"""

import os
import sys

import rapidmq

url = os.environ.get("RAPIDMQ_URL", "http://127.0.0.1:7420")
topic = sys.argv[1] if len(sys.argv) > 1 else "jobs"

with rapidmq.Client(url) as client:
    admin = client.admin()
    try:
        admin.create_topic(topic, partitions=2)
    except rapidmq.TopicAlreadyExistsError:
        pass
    try:
        admin.create_queue_subscription(
            topic, "workers", rapidmq.StartPosition.EARLIEST, ack_deadline=30.0, max_deliveries=5
        )
    except rapidmq.SubscriptionAlreadyExistsError:
        pass
    with client.producer(topic) as producer:
        producer.send("resize image 42", priority=5).result()
        print(producer.send("send reminder", delay=60.0).result())  # status 'scheduled'
    info = admin.describe_subscription(topic, "workers")
    print(f"{info.mode} subscription {info.name}: {info.queue_stats}")
