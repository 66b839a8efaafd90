"""Queue worker: takes jobs one by one, acks what succeeded, nacks failures for a retry later.
After `max_deliveries` attempts a job moves to the dead-letter topic `<topic>.dlq`.

    RAPIDMQ_URL=http://127.0.0.1:7420 python examples/python/queue_worker.py [topic] [jobs]

Enqueues `jobs` jobs (one of them failing once), works until they are done, then prints the
subscription's queue stats. Run several workers on one subscription to share the work.
"""

import os
import sys

import rapidmq

url = os.environ.get("RAPIDMQ_URL", "http://127.0.0.1:7420")
topic = sys.argv[1] if len(sys.argv) > 1 else "jobs"
jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 5

with rapidmq.Client(url) as client:
    admin = client.admin()
    try:
        admin.create_topic(topic, partitions=2)
    except rapidmq.TopicAlreadyExistsError:
        pass
    with client.producer(topic) as producer:
        for i in range(jobs):
            producer.send(f"job {i}", priority=9 if i == 0 else 0)  # job 0 jumps the queue
    settings = rapidmq.QueueConfig(ack_deadline=30.0, max_deliveries=5)
    with client.queue_consumer(topic, "workers", start="earliest", queue=settings) as worker:
        done = 0
        while done < jobs:
            for job in worker.poll(10, timeout=5.0):
                if job.value == b"job 1" and job.attempt == 1:
                    print(f"{job.value.decode()} failed on attempt {job.attempt}; retry in 0.2 s")
                    worker.nack(job, delay=0.2)
                    continue
                print(f"{job.value.decode()} done (attempt {job.attempt})")
                worker.ack(job)
                done += 1
    info = admin.describe_subscription(topic, "workers")
    print(f"{info.mode} subscription {info.name}: redeliveries={info.queue_stats.redeliveries}")
