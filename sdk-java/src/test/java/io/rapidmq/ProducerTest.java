package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.Durability;
import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.ProducerStats;
import io.rapidmq.ffi.PublishAck;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.SendStatus;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.stream.LongStream;
import net.openhft.hashing.LongHashFunction;
import org.junit.jupiter.api.Test;

/** Producer conformance (C02-C07) against a real broker. */
class ProducerTest extends BrokerTest {
    @Test
    void aNegativeDelayOrTtlIsRefusedWhenTheMessageIsBuilt() {
        IllegalArgumentException delay = assertThrows(IllegalArgumentException.class,
                () -> Message.builder("x").delay(Duration.ofMillis(-1)));
        assertTrue(delay.getMessage().contains("delay"), delay.getMessage());
        IllegalArgumentException ttl = assertThrows(IllegalArgumentException.class,
                () -> Message.builder("x").ttl(Duration.ofSeconds(-5)));
        assertTrue(ttl.getMessage().contains("ttl"), ttl.getMessage());
    }

    @Test
    void tenThousandSendsWith5msLingerMakeFarFewerRequestsThanMessages() {
        // C02 batching-by-linger
        String topic = makeTopic(1);
        try (Producer producer = client.producer(ProducerConfig.builder(topic).linger(Duration.ofMillis(5)).build())) {
            List<Delivery> deliveries = publishValues(producer, 10_000);
            assertEquals(LongStream.range(0, 10_000).boxed().toList(), deliveries.stream().map(Delivery::offset).toList());
            ProducerStats stats = producer.stats();
            assertEquals(10_000, stats.messagesAcked());
            assertEquals(0, stats.retries());
            assertTrue(stats.requests() * 10 <= 10_000, stats.toString());
        }
    }

    @Test
    void aFullBatchIsSentWithoutWaitingForLinger() {
        // C03 batching-by-size
        String topic = makeTopic(1);
        ProducerConfig config = ProducerConfig.builder(topic).linger(Duration.ofHours(1)).maxBatchMessages(100).build();
        try (Producer producer = client.producer(config)) {
            List<CompletableFuture<Delivery>> sends = new ArrayList<>();
            for (int i = 0; i < 150; i++) {
                sends.add(producer.sendAsync(Message.of(Integer.toString(i))));
            }
            for (CompletableFuture<Delivery> send : sends.subList(0, 100)) {
                assertEquals(SendStatus.APPENDED, send.join().status());
            }
            assertEquals(1, producer.stats().batches());
            assertFalse(sends.get(100).isDone(), "the partial batch waits for the hour-long linger");
            producer.flush();
            assertTrue(sends.subList(100, 150).stream().allMatch(CompletableFuture::isDone));
            assertEquals(LongStream.range(0, 150).boxed().toList(), sends.stream().map(s -> s.join().offset()).toList());
            assertEquals(2, producer.stats().batches());
        }
    }

    @Test
    void keyedMessagesLandOnThePartitionOfTheSharedFunction() {
        // C04 partition-function: xxh3_64(key) % partitions, checked against an independent XXH3
        // implementation (zero-allocation-hashing).
        String topic = makeTopic(8);
        try (Producer producer = client.producer(topic)) {
            for (String key : List.of("order-42", "user:7", "a", "", "ключ")) {
                Delivery delivery = producer.send(Message.builder("v").key(key).build());
                long hash = LongHashFunction.xx3().hashBytes(utf8(key));
                assertEquals(Long.remainderUnsigned(hash, 8), delivery.partition(), key);
            }
        }
    }

    @Test
    void trySendIsEmptyWhenTheBufferIsFullAndQueuesNothing() {
        String topic = makeTopic(1);
        ProducerConfig config = ProducerConfig.builder(topic)
                .linger(Duration.ofHours(1))
                .maxBufferedMessages(10)
                .build();
        try (Producer producer = client.producer(config)) {
            List<CompletableFuture<Delivery>> sent = new ArrayList<>();
            for (int i = 0; i < 10; i++) {
                sent.add(producer.trySend(Message.of("m" + i)).orElseThrow());
            }
            assertTrue(producer.trySend(Message.of("no room")).isEmpty());
            producer.flush();
            for (int i = 0; i < 10; i++) {
                assertTrue(sent.get(i).isDone(), "flush waited for it");
                assertEquals((long) i, sent.get(i).join().offset());
            }
            CompletableFuture<Delivery> late = producer.trySend(Message.of("room again")).orElseThrow();
            producer.flush();
            assertEquals(10L, late.join().offset());
        }
        assertEquals(11, readLog(topic).size());
    }

    @Test
    void anEmptyKeyIsAKeyAndStaysApartFromNoKey() {
        // C25 empty-key-round-trip: an empty key hashes like any key and is read back empty; no
        // key is read back as null.
        String topic = makeTopic(8);
        try (Producer producer = client.producer(topic)) {
            Delivery delivery = producer.send(Message.builder("empty").key(new byte[0]).build());
            long hash = LongHashFunction.xx3().hashBytes(new byte[0]);
            assertEquals(Long.remainderUnsigned(hash, 8), delivery.partition());
            producer.send(Message.of("none"));
        }
        Map<String, byte[]> keys = new HashMap<>();
        for (ReceivedMessage m : readLog(topic)) {
            keys.put(new String(m.value(), StandardCharsets.UTF_8), m.key());
        }
        assertArrayEquals(new byte[0], keys.get("empty"));
        assertTrue(keys.containsKey("none"));
        assertNull(keys.get("none"));
    }

    @Test
    void messageTooLargeFailsAtOnceWithItsCodeAndNoRetries() {
        // C05 non-retriable-errors-at-once (size)
        String topic = makeTopic(TopicSettings.partitions(1).withMaxMessageBytes(1024));
        try (Producer producer = client.producer(topic)) {
            CompletableFuture<Delivery> send = producer.sendAsync(Message.of(new byte[4096]));
            MessageTooLargeException err = assertThrows(MessageTooLargeException.class, () -> Native.await(send));
            assertEquals(3001, err.code());
            assertInstanceOf(PublishException.class, err);
            assertFalse(err.isRetriable());
            ProducerStats stats = producer.stats();
            assertEquals(1, stats.requests());
            assertEquals(0, stats.retries());
            // The rejected batch did not consume sequence numbers.
            assertEquals(0L, producer.send(Message.of("small")).offset());
        }
    }

    @Test
    void unknownTopicFailsAtOnceWithTopicNotFound() {
        // C05 non-retriable-errors-at-once (unknown and deleted topic)
        TopicNotFoundException err = assertThrows(TopicNotFoundException.class, () -> client.producer("no-such-topic"));
        assertEquals(2001, err.code());
        assertFalse(err.isRetriable());

        String topic = makeTopic(1);
        Producer producer = client.producer(topic);
        client.admin().deleteTopic(topic);
        assertThrows(TopicNotFoundException.class, () -> producer.send(Message.of("x")));
        assertEquals(0, producer.stats().retries());
    }

    @Test
    void aLostAckIsRetriedAndTheBrokerReturnsTheOriginalOffsets() {
        // C06 idempotent-resend-after-lost-ack
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            producer.testOnlyLoseAcks(1);
            List<Delivery> deliveries = publishValues(producer, 10);
            assertEquals(LongStream.range(0, 10).boxed().toList(), deliveries.stream().map(Delivery::offset).toList());
            ProducerStats stats = producer.stats();
            assertTrue(stats.retries() >= 1 && stats.duplicates() >= 1, stats.toString());
        }
        assertEquals(10, readLog(topic).size(), "the log holds one copy");
    }

    @Test
    void aResentBatchIsDeduplicatedAcrossABrokerRestart() {
        // C07 idempotent-resend-across-restart
        String topic = makeTopic(1);
        List<Message> batch = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            batch.add(Message.of("m" + i));
        }
        long producerId = 0x5EED;
        PublishAck first = client.publishBatch(topic, 0, producerId, 0, batch);
        assertEquals(0, first.baseOffset());
        assertFalse(first.duplicate());

        broker.crashAndRestart();
        client.setEndpoints(broker.url());

        PublishAck again = client.publishBatch(topic, 0, producerId, 0, batch);
        assertTrue(again.duplicate());
        assertEquals(0, again.baseOffset());
        assertEquals(5, again.count());
        assertEquals(5, readLog(topic).size());

        PublishAck following = client.publishBatch(topic, 0, producerId, 5, batch);
        assertEquals(5, following.baseOffset());
        assertFalse(following.duplicate());
        OutOfOrderSequenceException err = assertThrows(OutOfOrderSequenceException.class,
                () -> client.publishBatch(topic, 0, producerId, 20, batch));
        assertEquals(3003, err.code());
    }

    @Test
    void messagesKeepTheirKeysHeadersAndTimestamps() {
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            producer.send(Message.builder("text").header("h", "v").build());
            producer.send(Message.builder(utf8("bytes")).key("k").header("a", "1").header("a", "2").build());
            producer.send(Message.builder("msg").timestampMs(1234).build());
        }
        List<ReceivedMessage> log = readLog(topic);
        assertEquals(List.of("text", "bytes", "msg"), log.stream().map(m -> text(m.value())).toList());
        assertEquals(List.of(new Header("h", utf8("v"))), log.get(0).headers());
        assertEquals(List.of(new Header("a", utf8("1")), new Header("a", utf8("2"))), log.get(1).headers());
        assertEquals("k", text(log.get(1).key()));
        assertEquals(1234, log.get(2).timestampMs());
    }

    @Test
    void everyFieldCrossesThePackedSendAndPollPaths() {
        String topic = makeTopic(TopicSettings.partitions(1).withDurability(Durability.BUFFERED));
        try (Producer producer = client.producer(topic)) {
            CompletableFuture<Delivery> full = producer.sendAsync(Message.builder("full").key("k")
                    .header("名前", "ü").header("empty", new byte[0]).timestampMs(4321)
                    .ttl(Duration.ofHours(1).plusNanos(5_000_000)).priority(7).build());
            Delivery plain = producer.sendAsync(Message.of("plain")).join();
            assertEquals(new Delivery(0, 0L, Durability.BUFFERED, SendStatus.APPENDED), full.join());
            assertEquals(new Delivery(0, 1L, Durability.BUFFERED, SendStatus.APPENDED), plain);
        }
        try (Consumer consumer = client.consumer(
                ConsumerConfig.builder(topic, "fields").start(StartPosition.earliest()).build())) {
            List<ReceivedMessage> got = pollUntil(consumer, 2);
            ReceivedMessage full = got.get(0);
            assertEquals(topic, full.topic());
            assertEquals("full", text(full.value()));
            assertEquals("k", text(full.key()));
            assertEquals(List.of(new Header("名前", utf8("ü")), new Header("empty", new byte[0])), full.headers());
            assertEquals(4321, full.timestampMs());
            assertEquals(Duration.ofHours(1).plusMillis(5), full.ttl());
            assertEquals(7, full.priority());
            assertNull(full.deliverAtMs());
            ReceivedMessage plain = got.get(1);
            assertEquals(topic, plain.topic());
            assertEquals(List.of(0L, 1L), got.stream().map(ReceivedMessage::offset).toList());
            assertNull(plain.key());
            assertEquals(List.of(), plain.headers());
            assertNull(plain.ttl());
            assertEquals(0, plain.priority());
        }
    }

    @Test
    void aClosedProducerRefusesSendsWithClosedException() {
        String topic = makeTopic(1);
        Producer producer = client.producer(topic);
        producer.close();
        ClosedException err = assertThrows(ClosedException.class, () -> producer.send(Message.of("late")));
        assertInstanceOf(InvalidArgumentException.class, err);
        assertEquals(1001, err.code());
    }
}
