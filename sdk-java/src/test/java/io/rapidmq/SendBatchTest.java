package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Delivery;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;

/**
 * Sends cross into the core many at a time (NativeSends): {@code sendBatch} and queued
 * {@code sendAsync} keep the caller's order, give every message its own outcome, and wait while
 * the producer's buffer is full.
 */
class SendBatchTest extends BrokerTest {
    private static List<Message> values(int from, int to) {
        return IntStream.range(from, to).mapToObj(i -> Message.of(Integer.toString(i))).toList();
    }

    @Test
    void sendBatchDeliversEveryMessageInOrderWithItsOwnOffset() {
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            List<CompletableFuture<Delivery>> sends = new ArrayList<>();
            sends.add(producer.sendAsync(Message.of("0")));
            sends.addAll(producer.sendBatch(values(1, 2001)));
            sends.add(producer.sendAsync(Message.of("2001")));
            sends.addAll(producer.sendBatch(values(2002, 2003)));
            assertTrue(producer.sendBatch(List.of()).isEmpty());
            assertEquals(LongStream.range(0, 2003).boxed().toList(),
                    sends.stream().map(s -> s.join().offset()).toList());
        }
        assertEquals(IntStream.range(0, 2003).boxed().toList(),
                readLog(topic).stream().map(m -> Integer.parseInt(text(m.value()))).toList());
    }

    /** Conformance C30: a batch is queued whole or not at all. */
    @Test
    void anInvalidMessageFailsItsBatchWholeWithItsIndexAndNothingIsQueued() {
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            List<Message> batch = new ArrayList<>(values(0, 5));
            // A timestamp 2^62 ms or more from 1970 is one no batch could carry.
            batch.set(2, Message.builder("2").timestampMs(Long.MAX_VALUE).build());
            InvalidArgumentException err = assertThrows(InvalidArgumentException.class, () -> producer.sendBatch(batch));
            assertTrue(err.getMessage().contains("message 2 of the batch"), err.getMessage());

            // The same through sendAsync and trySend: refused at once, nothing queued.
            Message invalid = Message.builder("x").timestampMs(Long.MIN_VALUE).build();
            assertThrows(InvalidArgumentException.class, () -> producer.sendAsync(invalid));
            assertThrows(InvalidArgumentException.class, () -> producer.trySend(invalid));
            assertEquals(0L, producer.sendAsync(Message.of("after")).join().offset());
        }
        assertEquals(List.of("after"), readLog(topic).stream().map(m -> text(m.value())).toList());
    }

    @Test
    void aClosedProducerRefusesEveryFormOfSendAtOnce() {
        String topic = makeTopic(1);
        Producer producer = client.producer(topic);
        producer.sendBatch(values(0, 3)).forEach(CompletableFuture::join);
        producer.close();
        assertThrows(ClosedException.class, () -> producer.sendBatch(values(3, 6)));
        assertThrows(ClosedException.class, () -> producer.sendAsync(Message.of("late")));
        assertThrows(ClosedException.class, () -> producer.trySend(Message.of("late")));
        assertEquals(3, readLog(topic).size());
    }

    @Test
    void sendAsyncWaitsWhileTheBufferAndTheQueueAreFullAndGoesOnAfterAFlush() throws Exception {
        String topic = makeTopic(1);
        int buffered = 100;
        // Nothing leaves the core's buffer before a flush: an hour's linger, batches never full.
        ProducerConfig config = ProducerConfig.builder(topic)
                .linger(Duration.ofHours(1))
                .maxBatchMessages(100_000)
                .maxBufferedMessages(buffered)
                .build();
        int total = buffered + 2 * NativeSends.MAX_QUEUED + 500;
        try (Producer producer = client.producer(config)) {
            AtomicInteger returned = new AtomicInteger();
            List<CompletableFuture<Delivery>> sends = new CopyOnWriteArrayList<>();
            List<Throwable> failures = new CopyOnWriteArrayList<>();
            Thread sender = new Thread(() -> {
                try {
                    for (int i = 0; i < total; i++) {
                        sends.add(producer.sendAsync(Message.of(Integer.toString(i))));
                        returned.incrementAndGet();
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            });
            sender.start();
            // The core takes `buffered`; one batch waits in the hand-over; the queue fills up.
            eventually("the sender waits for room",
                    () -> sender.getState() == Thread.State.WAITING && returned.get() > buffered + NativeSends.MAX_QUEUED);
            assertTrue(returned.get() <= buffered + 2 * NativeSends.MAX_QUEUED, "bounded: " + returned.get());
            assertTrue(sender.isAlive());
            eventually("the core's buffer is full", () -> producer.stats().messagesSent() >= buffered);
            assertEquals(buffered, producer.stats().messagesSent(), "the core holds only its buffer");
            assertFalse(sends.getFirst().isDone(), "nothing was sent yet");

            // Each flush sends what the buffer holds, which lets the waiting sends in.
            while (sender.isAlive()) {
                producer.flush();
            }
            join(sender);
            producer.flush();
            assertTrue(failures.isEmpty(), failures.toString());
            assertEquals(LongStream.range(0, total).boxed().toList(), sends.stream().map(s -> s.join().offset()).toList());
        }
    }

    @Test
    void trySendNeverOvertakesAQueuedSend() {
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            List<CompletableFuture<Delivery>> sends = new ArrayList<>();
            for (int i = 0; i < 1000; i++) {
                if (i % 10 == 0) {
                    producer.trySend(Message.of(Integer.toString(i))).ifPresent(sends::add);
                } else {
                    sends.add(producer.sendAsync(Message.of(Integer.toString(i))));
                }
            }
            producer.flush();
            assertTrue(sends.stream().allMatch(CompletableFuture::isDone), "flush waited for every send");
            List<Integer> log = readLog(topic).stream().map(m -> Integer.parseInt(text(m.value()))).toList();
            assertEquals(log.stream().sorted().toList(), log, "in the order of the calls");
            assertEquals(sends.size(), log.size());
        }
    }
}
