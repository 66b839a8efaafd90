package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.SendStatus;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * C16 delay-and-ttl: delayed messages arrive when due; expired ones never. The broker's own delay
 * schedule is the clock here: no test sleeps.
 */
class SchedulingTest extends BrokerTest {
    @Test
    void aDelayedMessageGetsAScheduledReceiptAndIsConsumedOnlyAfterItsDelay() {
        String topic = makeTopic(1);
        long sentAt;
        Delivery delayed;
        Delivery now;
        try (Producer producer = client.producer(topic)) {
            sentAt = System.nanoTime();
            delayed = producer.send(Message.builder("later").delay(Duration.ofMillis(1500)).build());
            now = producer.send(Message.of("now"));
        }
        assertEquals(SendStatus.SCHEDULED, delayed.status());
        assertNull(delayed.offset());
        assertEquals(SendStatus.APPENDED, now.status());
        assertEquals(0L, now.offset());
        try (Consumer consumer = client.consumer(
                ConsumerConfig.builder(topic, "delay").start(StartPosition.earliest()).build())) {
            List<ReceivedMessage> first = pollUntil(consumer, 1);
            assertEquals(List.of("now"), first.stream().map(m -> text(m.value())).toList());
            List<ReceivedMessage> second = pollUntil(consumer, 1);
            assertEquals(List.of("later"), second.stream().map(m -> text(m.value())).toList());
            assertTrue(System.nanoTime() - sentAt >= Duration.ofMillis(1500).toNanos());
            assertEquals(1, second.get(0).offset());
            assertNotNull(second.get(0).deliverAtMs());
        }
    }

    @Test
    void anExpiredMessageIsNeverDelivered() {
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            producer.send(Message.builder("expires").ttl(Duration.ofMillis(300)).build());
            producer.send(Message.builder("lives").ttl(Duration.ofSeconds(600)).build());
            producer.send(Message.builder("marker").delay(Duration.ofSeconds(1)).build());
        }
        // The marker becomes visible a second after it was sent, well past the 0.3 s TTL.
        try (Consumer clock = client.consumer(
                ConsumerConfig.builder(topic, "clock").start(StartPosition.earliest()).build())) {
            List<String> values = new ArrayList<>();
            while (!values.contains("marker")) {
                pollUntil(clock, 1).forEach(m -> values.add(text(m.value())));
            }
        }
        try (Consumer late = client.consumer(
                ConsumerConfig.builder(topic, "late").start(StartPosition.earliest()).build())) {
            List<ReceivedMessage> got = pollUntil(late, 2);
            assertEquals(List.of("lives", "marker"), got.stream().map(m -> text(m.value())).toList());
            assertEquals(Duration.ofSeconds(600), got.get(0).ttl());
        }
    }
}
