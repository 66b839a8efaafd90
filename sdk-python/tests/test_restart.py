"""C08 retry-across-restart-no-duplicates: a broker crash (or graceful restart) mid-run."""

from __future__ import annotations

import threading

import pytest

from conftest import GUARD, read_log

TOTAL = 3000


@pytest.mark.parametrize("how", ["crash", "graceful"])
def test_producer_and_consumer_carry_on_across_a_broker_restart_without_loss_or_duplicates(
    broker, client, make_topic, how
):
    topic = make_topic(2)
    producer = client.producer(topic)
    consumer = client.consumer(
        topic, "restart", start="earliest", prefetch=100, commit_interval=0.05
    )
    progress = threading.Condition()
    acked = set()
    seen = set()
    failures = []

    def produce():
        try:
            window = []
            for i in range(TOTAL):
                window.append((i, producer.send(str(i), key=f"k{i % 7}")))
                if len(window) == 100 or i + 1 == TOTAL:
                    for value, receipt in window:
                        receipt.result()
                        acked.add(value)
                    window.clear()
                    with progress:
                        progress.notify_all()
        except BaseException as e:  # surfaced by the main thread
            failures.append(e)

    def consume():
        try:
            while len(seen) < TOTAL:
                messages = consumer.poll(500, 30.0)
                assert messages, f"consumer stalled at {len(seen)}"
                for m in messages:
                    seen.add(int(m.value))
                    consumer.ack(m)
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=produce), threading.Thread(target=consume)]
    for t in threads:
        t.start()
    with progress:
        assert progress.wait_for(lambda: len(acked) >= TOTAL // 3 or failures, GUARD)
    if how == "crash":
        broker.crash_and_restart()
    else:
        broker.restart()
    client.set_endpoints(broker.url)
    for t in threads:
        t.join(GUARD)
        assert not t.is_alive(), "did not finish in time"
    assert not failures, failures
    assert len(acked) == TOTAL and len(seen) == TOTAL
    assert consumer.stats().reconnects >= 1
    consumer.close()
    producer.close()

    values = [int(m.value) for m in read_log(client, topic)]
    assert len(values) == len(set(values)), "duplicates in the log"
    assert acked <= set(values), "an acked message is missing"
