package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.FfiProbe;
import io.rapidmq.ffi.ReceivedMessage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * A cancelled or timed-out {@link CompletableFuture} leaks nothing and hangs nothing: the native
 * call is cancelled (its Rust task aborted), the bindings' bookkeeping returns to zero, no
 * message is lost from the consumer's buffer, and the client still works and closes.
 */
class CancellationTest extends BrokerTest {
    private static void awaitQuiescence() throws InterruptedException {
        eventually("every native call finished", () -> Native.inFlight() == 0 && FfiProbe.pendingContinuations() == 0);
    }

    @Test
    void cancelledAndTimedOutPollsLeakNothingAndLoseNoMessage() throws Exception {
        String topic = makeTopic(1);
        try (Consumer consumer = client.consumer(
                ConsumerConfig.builder(topic, "cancel").start(StartPosition.earliest()).build())) {
            List<CompletableFuture<List<ReceivedMessage>>> polls = new ArrayList<>();
            for (int i = 0; i < 500; i++) {
                polls.add(consumer.pollAsync(10, Duration.ofSeconds(30)));
            }
            for (CompletableFuture<List<ReceivedMessage>> poll : polls) {
                assertTrue(poll.cancel(true));
            }
            List<CompletableFuture<List<ReceivedMessage>>> timed = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                timed.add(consumer.pollAsync(10, Duration.ofSeconds(30)).orTimeout(50, TimeUnit.MILLISECONDS));
            }
            for (CompletableFuture<List<ReceivedMessage>> poll : timed) {
                CompletionException err = assertThrows(CompletionException.class, poll::join);
                assertTrue(err.getCause() instanceof java.util.concurrent.TimeoutException, err.toString());
            }
            awaitQuiescence();

            // Nothing was taken out of the buffer by the abandoned polls.
            try (Producer producer = client.producer(topic)) {
                publishValues(producer, 10);
            }
            List<ReceivedMessage> got = pollUntil(consumer, 10);
            assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L),
                    got.stream().map(ReceivedMessage::offset).toList());
        }
        awaitQuiescence();
    }

    @Test
    void anInterruptedPollThrowsKeepsTheFlagAndLosesNoMessage() throws Exception {
        String topic = makeTopic(1);
        try (Consumer consumer = client.consumer(
                ConsumerConfig.builder(topic, "interrupt").start(StartPosition.earliest()).build())) {
            CompletableFuture<Throwable> thrown = new CompletableFuture<>();
            CompletableFuture<Boolean> flagAfter = new CompletableFuture<>();
            Thread poller = Thread.ofPlatform().start(() -> {
                try {
                    consumer.poll(10, Duration.ofMinutes(5));
                    thrown.complete(null);
                } catch (Throwable t) {
                    thrown.complete(t);
                }
                flagAfter.complete(Thread.currentThread().isInterrupted());
            });
            poller.interrupt();
            Throwable t = thrown.get(GUARD.toSeconds(), TimeUnit.SECONDS);
            assertTrue(t instanceof CancellationException, String.valueOf(t));
            assertTrue(flagAfter.get(GUARD.toSeconds(), TimeUnit.SECONDS), "the interrupt flag stays set");
            poller.join();

            try (Producer producer = client.producer(topic)) {
                publishValues(producer, 3);
            }
            assertEquals(List.of(0L, 1L, 2L), pollUntil(consumer, 3).stream().map(ReceivedMessage::offset).toList());
        }
    }

    @Test
    void cancelledQueuePollsLeakNothingAndLeaseNoMessage() throws Exception {
        String topic = makeTopic(1);
        try (QueueConsumer worker = client.queueConsumer(
                ConsumerConfig.builder(topic, "cancel-queue").start(StartPosition.earliest()).build())) {
            List<CompletableFuture<List<QueueMessage>>> polls = new ArrayList<>();
            for (int i = 0; i < 200; i++) {
                polls.add(worker.pollAsync(10, Duration.ofMinutes(5)));
            }
            for (CompletableFuture<List<QueueMessage>> poll : polls) {
                assertTrue(poll.cancel(true));
            }
            awaitQuiescence();

            // An abandoned poll still running would take these deliveries and hold their leases.
            try (Producer producer = client.producer(topic)) {
                publishValues(producer, 10);
            }
            List<QueueMessage> got = new ArrayList<>();
            while (got.size() < 10) {
                List<QueueMessage> more = worker.poll(10, Duration.ofSeconds(10));
                assertTrue(!more.isEmpty(), "stalled at " + got.size());
                got.addAll(more);
            }
            assertEquals(List.of(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L, 8L, 9L),
                    got.stream().map(m -> m.message().offset()).sorted().toList());
        }
        awaitQuiescence();
    }

    @Test
    void cancelledSendsStillDeliverAndLeakNothing() throws Exception {
        String topic = makeTopic(2);
        try (Producer producer = client.producer(
                ProducerConfig.builder(topic).linger(Duration.ofHours(1)).maxBatchMessages(10_000).build())) {
            List<CompletableFuture<Delivery>> sends = new ArrayList<>();
            for (int i = 0; i < 2000; i++) {
                sends.add(producer.sendAsync(Message.of(Integer.toString(i))));
            }
            sends.forEach(s -> assertTrue(s.cancel(true)));
            sends.forEach(s -> assertThrows(CancellationException.class, s::join));
            // Cancelling stopped the waiting, not the sending: a flush delivers every message.
            producer.flush();
            assertEquals(2000, producer.stats().messagesAcked());
            assertEquals(2000, readLog(topic).size());
            eventually("every outcome reached Java", () -> producer.outstandingSends() == 0);
        }
        awaitQuiescence();
    }

    @Test
    void aClientWithAbandonedCallsStillWorksAndClosesPromptly() throws Exception {
        String topic = makeTopic(1);
        Consumer consumer = client.consumer(ConsumerConfig.builder(topic, "s").build());
        Producer producer = client.producer(topic);
        List<CompletableFuture<?>> abandoned = new ArrayList<>();
        for (int i = 0; i < 100; i++) {
            abandoned.add(consumer.pollAsync(1, Duration.ofMinutes(5)).orTimeout(10, TimeUnit.MILLISECONDS));
        }
        abandoned.forEach(f -> assertThrows(CompletionException.class, f::join));
        assertEquals(0L, producer.send(Message.of("still works")).offset());
        assertEquals(List.of("still works"), pollUntil(consumer, 1).stream().map(m -> text(m.value())).toList());
        // A long poll in flight when the client closes ends instead of hanging.
        CompletableFuture<List<ReceivedMessage>> pending = consumer.pollAsync(1, Duration.ofMinutes(5));
        client.closeAsync().get(GUARD.toSeconds(), TimeUnit.SECONDS);
        ExecutionExceptionCheck.assertFailsWith(ClosedException.class, pending);
        awaitQuiescence();
    }
}
