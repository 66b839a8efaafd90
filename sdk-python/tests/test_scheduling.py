"""C16 delay-and-ttl: delayed messages arrive when due; expired ones never. The broker's own
delay schedule is the clock here: no test sleeps."""

from __future__ import annotations

import time

from test_consumer import poll_until


def test_a_delayed_message_gets_a_scheduled_receipt_and_is_consumed_only_after_its_delay(
    client, make_topic
):
    topic = make_topic(1)
    with client.producer(topic) as producer:
        sent_at = time.monotonic()
        delayed = producer.send("later", delay=1.5).result()
        now = producer.send("now").result()
    assert (delayed.status, delayed.offset) == ("scheduled", None)
    assert (now.status, now.offset) == ("appended", 0)
    with client.consumer(topic, "delay", start="earliest") as consumer:
        first = poll_until(consumer, 1)
        assert [m.value for m in first] == [b"now"]
        second = poll_until(consumer, 1)
        assert [m.value for m in second] == [b"later"]
        assert time.monotonic() - sent_at >= 1.5
        assert second[0].offset == 1 and second[0].deliver_at_ms is not None


def test_an_expired_message_is_never_delivered(client, make_topic):
    topic = make_topic(1)
    with client.producer(topic) as producer:
        producer.send("expires", ttl=0.3).result()
        producer.send("lives", ttl=600.0).result()
        producer.send("marker", delay=1.0).result()
    # The marker becomes visible a second after it was sent, well past the 0.3 s TTL.
    with client.consumer(topic, "clock", start="earliest") as clock:
        values = []
        while b"marker" not in values:
            values += [m.value for m in poll_until(clock, 1)]
    with client.consumer(topic, "late", start="earliest") as late:
        got = poll_until(late, 2)
    assert [m.value for m in got] == [b"lives", b"marker"]
    assert got[0].ttl == 600.0
