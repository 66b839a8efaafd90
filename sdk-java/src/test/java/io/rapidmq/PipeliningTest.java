package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.ProducerStats;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.SendStatus;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** C18 receipts-scheduled-and-deduplicated and C19 pipelining-order-across-restart. */
class PipeliningTest extends BrokerTest {
    @Test
    void aRepeatedMsgIdWithinTheWindowGetsADeduplicatedReceiptAndOneCopyIsKept() {
        String topic = makeTopic(TopicSettings.partitions(1).withDedupWindow(Duration.ofSeconds(60)));
        try (Producer first = client.producer(topic); Producer second = client.producer(topic)) {
            assertEquals(0L, first.send(Message.builder("a1").msgId("order-1").build()).offset());
            // One batch from another producer: a repeat, a new id, a delayed one and a plain message.
            List<CompletableFuture<Delivery>> sends = List.of(
                    second.sendAsync(Message.builder("a2").msgId("order-1").build()),
                    second.sendAsync(Message.builder("b").msgId("order-2").build()),
                    second.sendAsync(Message.builder("c").delay(Duration.ofHours(1)).build()),
                    second.sendAsync(Message.of("d")));
            second.flush();
            List<Delivery> got = sends.stream().map(CompletableFuture::join).toList();
            assertEquals(List.of(SendStatus.DEDUPLICATED, SendStatus.APPENDED, SendStatus.SCHEDULED, SendStatus.APPENDED),
                    got.stream().map(Delivery::status).toList());
            assertEquals(java.util.Arrays.asList(null, 1L, null, 2L), got.stream().map(Delivery::offset).toList());
        }
        assertEquals(List.of("a1", "b", "d"), readLog(topic).stream().map(m -> text(m.value())).toList());
    }

    @Test
    void afterTheDedupWindowARepeatedMsgIdIsKept() {
        String topic = makeTopic(TopicSettings.partitions(1).withDedupWindow(Duration.ofMillis(500)));
        Delivery again;
        try (Producer producer = client.producer(topic)) {
            producer.send(Message.builder("x").msgId("id").build());
            producer.send(Message.builder("marker").delay(Duration.ofSeconds(1)).build());
            // The broker's schedule is the clock: the marker appears a second later, past the window.
            try (Consumer clock = client.consumer(
                    ConsumerConfig.builder(topic, "clock").start(StartPosition.earliest()).build())) {
                List<String> values = new ArrayList<>();
                while (!values.contains("marker")) {
                    pollUntil(clock, 1).forEach(m -> values.add(text(m.value())));
                }
            }
            again = producer.send(Message.builder("x").msgId("id").build());
        }
        assertEquals(SendStatus.APPENDED, again.status());
        assertEquals(2, readLog(topic).stream().filter(m -> text(m.value()).equals("x")).count());
    }

    @Test
    void pipelinedBatchesKeepOrderPerKeyAcrossLostAcksAndABrokerCrash() throws Exception {
        int total = 20_000;
        int keys = 16;
        String topic = makeTopic(2);
        Producer producer = client.producer(ProducerConfig.builder(topic).maxBatchMessages(50)
                .linger(Duration.ofMillis(1)).maxInFlightPerPartition(5).build());
        producer.testOnlyLoseAcks(3); // acks lost mid-window: that batch and later ones are resent
        AtomicInteger acked = new AtomicInteger();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> thirdAcked = new CompletableFuture<>();
        Thread produce = new Thread(() -> {
            try {
                List<CompletableFuture<Delivery>> window = new ArrayList<>();
                for (int i = 0; i < total; i++) {
                    window.add(producer.sendAsync(Message.builder(Integer.toString(i)).key("k" + (i % keys)).build()));
                    if (window.size() == 2000 || i + 1 == total) {
                        window.forEach(CompletableFuture::join);
                        if (acked.addAndGet(window.size()) >= total / 3) {
                            thirdAcked.complete(null);
                        }
                        window.clear();
                    }
                }
            } catch (Throwable e) {
                failures.add(e);
                thirdAcked.complete(null);
            }
        });
        produce.start();
        thirdAcked.get(GUARD.toSeconds(), TimeUnit.SECONDS);
        broker.crashAndRestart();
        client.setEndpoints(broker.url());
        join(produce);
        assertTrue(failures.isEmpty(), failures.toString());

        ProducerStats stats = producer.stats();
        assertTrue(stats.maxPartitionInFlight() > 1, "batches were pipelined: " + stats);
        assertTrue(stats.retries() >= 3, stats.toString());
        Set<Integer> seen = new HashSet<>();
        Map<String, Integer> last = new HashMap<>();
        for (ReceivedMessage m : readLog(topic)) {
            int value = Integer.parseInt(text(m.value()));
            assertTrue(seen.add(value), "duplicate " + value);
            String key = text(m.key());
            assertTrue(last.getOrDefault(key, -1) < value, "key " + key + ": " + last.get(key) + " before " + value);
            last.put(key, value);
        }
        assertEquals(total, seen.size(), "nothing acked is missing");
        assertFalse(seen.isEmpty());
        producer.close();
    }

    @Test
    void aRefusedBatchInsideAFullPipelineFailsAloneAndLaterBatchesKeepTheirOrder() {
        String topic = makeTopic(1);
        try (Producer producer = client.producer(
                ProducerConfig.builder(topic).maxBatchMessages(1).maxInFlightPerPartition(5).build())) {
            List<CompletableFuture<Delivery>> sends = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                // Every tenth message is refused by the broker (priority above 9).
                sends.add(producer.sendAsync(Message.builder(Integer.toString(i)).priority(i % 10 == 5 ? 10 : 0).build()));
            }
            List<Long> offsets = new ArrayList<>();
            for (int i = 0; i < 40; i++) {
                try {
                    offsets.add(Native.await(sends.get(i)).offset());
                } catch (InvalidPriorityException e) {
                    assertEquals(5, i % 10, "only the refused messages fail");
                }
            }
            // Later batches were refused as out of sequence, resequenced and resent: dense
            // offsets, and the log in send order.
            assertEquals(java.util.stream.LongStream.range(0, 36).boxed().toList(), offsets);
            List<Integer> expected = java.util.stream.IntStream.range(0, 40).filter(i -> i % 10 != 5).boxed().toList();
            assertEquals(expected, readLog(topic).stream().map(m -> Integer.parseInt(text(m.value()))).toList());
            assertTrue(producer.stats().maxPartitionInFlight() > 1);
        }
    }
}
