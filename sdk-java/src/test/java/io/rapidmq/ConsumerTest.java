package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.ConsumerStats;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.SubscriptionInfo;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import net.openhft.hashing.LongHashFunction;
import org.junit.jupiter.api.Test;

/** Consumer conformance (C01, C09-C12) against a real broker. */
class ConsumerTest extends BrokerTest {
    private ConsumerConfig.Builder earliest(String topic, String subscription) {
        return ConsumerConfig.builder(topic, subscription).start(StartPosition.earliest());
    }

    @Test
    void tenThousandKeyedMessagesArriveInOrderPerKey() {
        // C01 publish-consume-10k-order-per-key
        String topic = makeTopic(4);
        try (Producer producer = client.producer(topic)) {
            List<CompletableFuture<?>> sends = new ArrayList<>();
            for (int i = 0; i < 10_000; i++) {
                sends.add(producer.sendAsync(Message.builder(Integer.toString(i)).key("k" + (i % 10)).build()));
            }
            sends.forEach(CompletableFuture::join);
        }
        try (Consumer consumer = client.consumer(earliest(topic, "order").autoCommit(true).build())) {
            Map<String, Integer> last = new HashMap<>();
            for (ReceivedMessage m : pollUntil(consumer, 10_000)) {
                long hash = LongHashFunction.xx3().hashBytes(m.key());
                assertEquals(Long.remainderUnsigned(hash, 4), m.partition(), "key on its partition");
                int value = Integer.parseInt(text(m.value()));
                String key = text(m.key());
                assertTrue(last.getOrDefault(key, -1) < value, "out of order");
                last.put(key, value);
            }
            assertEquals(10, last.size());
        }
    }

    @Test
    void prefetch100NeverBuffersMoreThan100MessagesAheadOfPoll() {
        // C09 prefetch-bound
        String topic = makeTopic(2);
        try (Producer producer = client.producer(topic)) {
            publishValues(producer, 1000);
        }
        try (Consumer consumer = client.consumer(earliest(topic, "prefetch").prefetch(100).build())) {
            int received = 0;
            while (received < 1000) {
                List<ReceivedMessage> messages = consumer.poll(7, Duration.ofSeconds(10));
                assertFalse(messages.isEmpty(), "stalled at " + received);
                received += messages.size();
                assertTrue(consumer.stats().buffered() <= 100);
                messages.forEach(consumer::ack);
            }
            ConsumerStats stats = consumer.stats();
            assertTrue(7 < stats.maxBuffered() && stats.maxBuffered() <= 100, stats.toString());
            assertEquals(1000, stats.received());
        }
    }

    @Test
    void prefetchBytesBoundTheBufferAndEveryMessageStillArrives() throws InterruptedException {
        // C31 prefetch-bytes-bound: 1,000 messages of 1 kB pass through a 64 KiB window again and
        // again; a byte credit never granted back would stall the consumer before the end
        String topic = makeTopic(1);
        byte[] value = new byte[1000];
        try (Producer producer = client.producer(ProducerConfig.builder(topic).maxBatchMessages(50).build())) {
            List<CompletableFuture<Delivery>> sends = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                sends.add(producer.sendAsync(Message.of(value)));
            }
            sends.forEach(CompletableFuture::join);
        }
        try (Consumer consumer = client.consumer(earliest(topic, "bytes").prefetchBytes(64 * 1024).build())) {
            eventually("the window filled", () -> consumer.stats().buffered() > 50);
            int received = 0;
            while (received < 1000) {
                List<ReceivedMessage> messages = consumer.poll(7, Duration.ofSeconds(10));
                assertFalse(messages.isEmpty(), "stalled at " + received);
                received += messages.size();
            }
            ConsumerStats stats = consumer.stats();
            assertEquals(1000, stats.received());
            // the window plus the one batch of 50 that may pass it
            assertTrue(stats.maxBuffered() <= 64 * 1024 / 1000 + 50, stats.toString());
        }
    }

    @Test
    void ackedMessagesAreCommittedOnCloseAndANewMemberResumesAfterThem() {
        // C10 commit-and-resume (and C14: nack in stream mode is unsupported)
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            publishValues(producer, 100);
        }
        try (Consumer consumer = client.consumer(earliest(topic, "resume").prefetch(10).build())) {
            int acked = 0;
            while (acked < 60) {
                for (ReceivedMessage m : consumer.poll(60 - acked, Duration.ofSeconds(10))) {
                    assertEquals(acked, m.offset());
                    consumer.ack(m);
                    acked++;
                }
            }
        }
        SubscriptionInfo info = client.admin().describeSubscription(topic, "resume");
        assertEquals(60, info.cursors().get(0).committedOffset());
        assertEquals(40, info.totalLag());

        try (Consumer following = client.consumer(topic, "resume")) {
            ReceivedMessage first = following.poll(1, Duration.ofSeconds(10)).get(0);
            assertEquals(60, first.offset());
            UnsupportedException err = assertThrows(UnsupportedException.class,
                    () -> following.nack(first, Duration.ofSeconds(1)));
            assertEquals(1001, err.code());
            assertFalse(err.isRetriable());
        }
    }

    @Test
    void outOfOrderAcksCommitOnlyUpToTheFirstUnackedMessage() {
        // C11 contiguous-commits
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            publishValues(producer, 10);
        }
        try (Consumer consumer = client.consumer(earliest(topic, "gaps").build())) {
            for (ReceivedMessage m : pollUntil(consumer, 10, 10)) {
                if (m.offset() != 4) {
                    consumer.ack(m);
                }
            }
        }
        assertEquals(4, client.admin().describeSubscription(topic, "gaps").cursors().get(0).committedOffset());
    }

    @Test
    void subscribingToAnUnknownTopicFailsWithTopicNotFound() {
        // C12 bad-input-errors (consumer side)
        TopicNotFoundException err = assertThrows(TopicNotFoundException.class,
                () -> client.consumer("missing-topic", "s"));
        assertEquals(2001, err.code());
        InvalidArgumentException bad = assertThrows(InvalidArgumentException.class,
                () -> client.consumer("bad/name", ""));
        assertEquals(1001, bad.code());
    }

    @Test
    void membersOfOneSubscriptionSplitThePartitionsAndTogetherSeeEverything() {
        String topic = makeTopic(2);
        try (Producer producer = client.producer(topic)) {
            publishValues(producer, 200);
        }
        ConsumerConfig config = earliest(topic, "group").prefetch(10).autoCommit(true).build();
        try (Consumer a = client.consumer(config); Consumer b = client.consumer(config)) {
            Set<String> seen = new HashSet<>();
            int rounds = 0;
            while (seen.size() < 200 || a.assignment().size() != 1 || b.assignment().size() != 1) {
                rounds++;
                assertTrue(rounds < 10_000, seen.size() + " " + a.assignment() + " " + b.assignment());
                for (Consumer member : List.of(a, b)) {
                    member.poll(50, Duration.ofMillis(200)).forEach(m -> seen.add(text(m.value())));
                }
            }
            assertNotEquals(a.assignment(), b.assignment());
        }
    }

    @Test
    void anEphemeralConsumerTailsNewMessagesOnly() {
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            publishValues(producer, 5);
            try (Consumer tail = client.consumer(topic, "")) {
                assertEquals("", tail.subscription());
                producer.send(Message.of("new"));
                assertEquals(List.of("new"), pollUntil(tail, 1).stream().map(m -> text(m.value())).toList());
            }
        }
    }
}
