package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.DeadLetter;
import io.rapidmq.ffi.DeadLetterPage;
import io.rapidmq.ffi.DeadLetterReplay;
import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.QueueSettings;
import io.rapidmq.ffi.SubscriptionInfo;
import io.rapidmq.ffi.SubscriptionMode;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Queue mode (C15, C20, C21, C22, C26): per-message acks, nack with delay, deadlines, dead letters,
 * priority, restarts and bad input. Waiting for a delay or a deadline is time passing by design.
 */
class QueueTest extends BrokerTest {
    private void sendAll(String topic, List<Message> messages) {
        try (Producer producer = client.producer(topic)) {
            messages.stream().map(producer::sendAsync).toList().forEach(f -> f.join());
        }
    }

    private void sendAllValues(String topic, String... values) {
        sendAll(topic, java.util.Arrays.stream(values).map(Message::of).toList());
    }

    private static List<QueueMessage> receive(QueueConsumer worker, int n) {
        List<QueueMessage> out = new ArrayList<>();
        while (out.size() < n) {
            List<QueueMessage> got = worker.poll(n - out.size(), Duration.ofSeconds(30));
            assertFalse(got.isEmpty(), "stalled after " + out.size() + " deliveries");
            out.addAll(got);
        }
        return out;
    }

    private ConsumerConfig.Builder worker(String topic, String subscription) {
        return ConsumerConfig.builder(topic, subscription).start(StartPosition.earliest())
                .commitInterval(Duration.ofMillis(20));
    }

    @Test
    void competingConsumersShareTheWorkAndEachMessageIsDeliveredOnce() throws Exception {
        // C15 (competing consumers)
        String topic = makeTopic(2);
        int total = 400;
        List<Message> messages = new ArrayList<>();
        for (int i = 0; i < total; i++) {
            messages.add(Message.of(Integer.toString(i)));
        }
        sendAll(topic, messages);
        Map<String, AtomicInteger> counts = new ConcurrentHashMap<>();
        AtomicInteger delivered = new AtomicInteger();
        int[] perWorker = new int[2];
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        List<QueueConsumer> workers = List.of(client.queueConsumer(worker(topic, "pool").prefetch(10).build()),
                client.queueConsumer(worker(topic, "pool").prefetch(10).build()));
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            int index = i;
            QueueConsumer q = workers.get(i);
            threads.add(new Thread(() -> {
                try {
                    while (delivered.get() < total) {
                        for (QueueMessage d : q.poll(50, Duration.ofMillis(200))) {
                            assertEquals(1, d.attempt());
                            q.ack(d);
                            counts.computeIfAbsent(d.partition() + ":" + d.offset(), k -> new AtomicInteger())
                                    .incrementAndGet();
                            synchronized (perWorker) {
                                perWorker[index]++;
                            }
                            delivered.incrementAndGet();
                        }
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            }));
        }
        threads.forEach(Thread::start);
        for (Thread t : threads) {
            join(t);
        }
        assertTrue(failures.isEmpty(), failures.toString());
        assertEquals(total, counts.size());
        assertTrue(counts.values().stream().allMatch(c -> c.get() == 1), "a message came twice");
        assertTrue(perWorker[0] > 0 && perWorker[1] > 0, perWorker[0] + " / " + perWorker[1]);
        workers.forEach(QueueConsumer::close);
        SubscriptionInfo info = client.admin().describeSubscription(topic, "pool");
        assertEquals(SubscriptionMode.QUEUE, info.mode());
        assertEquals(0, info.queueStats().inFlight());
    }

    @Test
    void aListenerAcksWhatItHandlesAndNacksFailuresWithBackoffUntilDeadLettered() throws Exception {
        // C26 queue-handler
        String topic = makeTopic(2);
        List<String> values = new ArrayList<>();
        for (int i = 0; i < 18; i++) {
            values.add("ok-" + i);
        }
        values.add("flaky");
        values.add("poison");
        sendAllValues(topic, values.toArray(String[]::new));
        QueueConsumer q = client.queueConsumer(worker(topic, "handled").maxDeliveries(3).build());
        record Attempt(int n, long at) {}
        Map<String, List<Attempt>> handled = new ConcurrentHashMap<>();
        AtomicInteger running = new AtomicInteger();
        AtomicInteger most = new AtomicInteger();
        RunSettings settings = RunSettings.defaults().withConcurrency(4)
                .withRetryBackoff(Duration.ofMillis(200), Duration.ofSeconds(5));
        Admin admin = client.admin();
        String dlq = topic + ".dlq";
        try (var executor = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            Listening listening = q.listen(message -> {
                int now = running.incrementAndGet();
                most.accumulateAndGet(now, Math::max);
                try {
                    String value = text(message.value());
                    handled.computeIfAbsent(value, v -> new CopyOnWriteArrayList<>())
                            .add(new Attempt(message.attempt(), System.nanoTime()));
                    if (value.equals("poison") || (value.equals("flaky") && message.attempt() == 1)) {
                        throw new IllegalStateException("fails");
                    }
                } finally {
                    running.decrementAndGet();
                }
            }, executor, settings);
            eventually("the poison message is dead-lettered", () -> {
                try {
                    return admin.listDeadLetters(dlq, 10).deadLetters().size() == 1;
                } catch (TopicNotFoundException e) {
                    return false;
                }
            });
            eventually("everything else is handled",
                    () -> handled.size() == 20 && handled.get("flaky").size() == 2);
            listening.close();
            assertTrue(listening.done().isDone());
        }
        for (int i = 0; i < 18; i++) {
            assertEquals(List.of(1), handled.get("ok-" + i).stream().map(Attempt::n).toList(), "ok-" + i);
        }
        List<Attempt> flaky = handled.get("flaky");
        assertEquals(List.of(1, 2), flaky.stream().map(Attempt::n).toList());
        assertTrue(flaky.get(1).at() - flaky.get(0).at() >= Duration.ofMillis(200).toNanos());
        List<Attempt> poison = handled.get("poison");
        assertEquals(List.of(1, 2, 3), poison.stream().map(Attempt::n).toList());
        assertTrue(poison.get(1).at() - poison.get(0).at() >= Duration.ofMillis(200).toNanos());
        assertTrue(poison.get(2).at() - poison.get(1).at() >= Duration.ofMillis(400).toNanos());
        DeadLetter letter = admin.listDeadLetters(dlq, 10).deadLetters().get(0);
        assertEquals("poison", text(letter.message().value()));
        assertEquals(3, letter.attempts());
        assertTrue(most.get() <= 4, "at most 4 at once, saw " + most.get());
        assertEquals(Duration.ofMillis(800), settings.retryDelay(3));
        assertEquals(0, admin.describeSubscription(topic, "handled").queueStats().inFlight());
        q.close();
    }

    @Test
    void nackedMessageIsRedeliveredThenDeadLetteredAfterMaxDeliveriesAndReplayed() throws Exception {
        // C15 (nack, dead letters, replay)
        String topic = makeTopic(1);
        sendAllValues(topic, "poison");
        QueueConsumer q = client.queueConsumer(worker(topic, "w").maxDeliveries(2).build());
        List<QueueMessage> first = receive(q, 1);
        assertEquals(1, first.get(0).attempt());
        long nackedAt = System.nanoTime();
        q.nack(first.get(0), Duration.ofMillis(1500));
        List<QueueMessage> second = receive(q, 1);
        assertTrue(System.nanoTime() - nackedAt >= Duration.ofMillis(1500).toNanos());
        assertEquals(2, second.get(0).attempt());
        assertEquals("poison", text(second.get(0).value()));
        q.nack(second.get(0), Duration.ZERO);

        Admin admin = client.admin();
        String dlq = topic + ".dlq";
        java.util.function.IntPredicate pending = n -> {
            try {
                return admin.listDeadLetters(dlq, 10).deadLetters().size() == n;
            } catch (TopicNotFoundException e) {
                return false;
            }
        };
        eventually("the message is dead-lettered", () -> pending.test(1));
        DeadLetterPage page = admin.listDeadLetters(dlq, 10);
        assertNull(page.nextPageToken(), "one letter is one page");
        List<DeadLetter> letters = page.deadLetters();
        assertEquals(1, letters.size());
        DeadLetter letter = letters.get(0);
        assertEquals(0, letter.partition());
        assertEquals(0, letter.offset());
        assertEquals(topic, letter.originalTopic());
        assertEquals(0, letter.originalOffset());
        assertEquals(2, letter.attempts());
        assertEquals("poison", text(letter.message().value()));
        assertTrue(letter.message().headers().contains(new Header("rapidmq-dlq-topic", utf8(topic))));
        assertEquals(1, admin.describeSubscription(topic, "w").queueStats().deadLettered());

        // Two more letters: pages of two follow the token, and replay counts down what remains.
        sendAllValues(topic, "p1", "p2");
        for (int round = 0; round < 2; round++) {
            for (QueueMessage m : receive(q, 2)) {
                q.nack(m, Duration.ZERO);
            }
        }
        eventually("three letters are pending", () -> pending.test(3));
        DeadLetterPage pageOne = admin.listDeadLetters(dlq, 2);
        assertNotNull(pageOne.nextPageToken());
        DeadLetterPage pageTwo = admin.listDeadLetters(dlq, 2, pageOne.nextPageToken());
        assertNull(pageTwo.nextPageToken());
        List<Long> offsets = new ArrayList<>();
        pageOne.deadLetters().forEach(d -> offsets.add(d.offset()));
        pageTwo.deadLetters().forEach(d -> offsets.add(d.offset()));
        assertEquals(List.of(0L, 1L, 2L), offsets, "each letter once, in order");
        assertThrows(InvalidArgumentException.class, () -> admin.listDeadLetters(dlq, 2, "not-a-token"));
        assertThrows(InvalidArgumentException.class, () -> admin.listDeadLetters(dlq, 1001));

        DeadLetterReplay replay = admin.replayDeadLetters(dlq, 2);
        assertEquals(2, replay.replayed());
        assertEquals(1, replay.remaining());
        replay = admin.replayDeadLetters(dlq);
        assertEquals(1, replay.replayed());
        assertEquals(0, replay.remaining());
        Map<String, Integer> back = new HashMap<>();
        for (QueueMessage m : receive(q, 3)) {
            back.put(text(m.value()), m.attempt());
            q.ack(m);
        }
        assertEquals(Map.of("poison", 1, "p1", 1, "p2", 1), back,
                "each replayed message comes back once and starts over");
        q.close();
        DeadLetterPage after = admin.listDeadLetters(dlq, 10);
        assertTrue(after.deadLetters().isEmpty());
        assertNull(after.nextPageToken());
    }

    @Test
    void anUnackedDeliveryComesBackAfterItsDeadlineUnlessExtended() throws Exception {
        // C15 (deadline, extension) and C22 (RECEIPT_UNKNOWN surfaces without ending the consumer)
        String topic = makeTopic(1);
        sendAllValues(topic, "slow", "stuck");
        QueueConsumer q = client.queueConsumer(worker(topic, "w").ackDeadline(Duration.ofMillis(800)).build());
        Map<String, QueueMessage> got = new HashMap<>();
        receive(q, 2).forEach(d -> got.put(text(d.value()), d));
        QueueMessage slow = got.get("slow");
        QueueMessage stuck = got.get("stuck");
        q.extendDeadline(slow, Duration.ofSeconds(30));
        long started = System.nanoTime();
        List<QueueMessage> again = receive(q, 1);
        assertTrue(System.nanoTime() - started >= Duration.ofMillis(500).toNanos());
        assertEquals("stuck", text(again.get(0).value()));
        assertEquals(2, again.get(0).attempt());
        q.ack(again.get(0));
        q.ack(slow);
        q.ack(stuck); // the timed-out first delivery: the broker refuses its receipt
        q.flush();
        eventually("the stale ack is reported", () -> q.stats().streamErrors() >= 1);
        List<RapidMQException> errors = q.takeStreamErrors();
        assertEquals(1, errors.size());
        assertInstanceOf(ReceiptUnknownException.class, errors.get(0));
        assertEquals(4007, errors.get(0).code());
        q.close();
        assertEquals(0, client.admin().describeSubscription(topic, "w").queueStats().inFlight());
    }

    @Test
    void aBacklogOfMixedPrioritiesIsDeliveredHighestFirst() {
        // C20 queue-priority
        String topic = makeTopic(1);
        int[] priorities = {3, 9, 0, 5, 9, 1, 7};
        List<Message> messages = new ArrayList<>();
        for (int p : priorities) {
            messages.add(Message.builder("p" + p).priority(p).build());
        }
        sendAll(topic, messages);
        try (QueueConsumer q = client.queueConsumer(worker(topic, "pager").build())) {
            List<Integer> got = receive(q, priorities.length).stream().map(QueueMessage::priority).toList();
            assertEquals(List.of(9, 9, 7, 5, 3, 1, 0), got);
        }
    }

    @Test
    void afterABrokerRestartTheUnackedMessageReturnsAndStaleReceiptsAreDropped() throws Exception {
        // C21 queue-restart-stale-receipts
        String topic = makeTopic(1);
        sendAllValues(topic, "a", "b");
        QueueConsumer q = client.queueConsumer(worker(topic, "w").ackDeadline(Duration.ofSeconds(60)).build());
        List<QueueMessage> both = receive(q, 2);
        QueueMessage acked = both.get(0);
        QueueMessage held = both.get(1);
        q.ack(acked);
        q.flush();
        Admin admin = client.admin();
        eventually("the ack is recorded", () -> admin.describeSubscription(topic, "w").totalLag() == 1);
        broker.restart();
        client.setEndpoints(broker.url());

        QueueMessage again = receive(q, 1).get(0);
        assertEquals(text(held.value()), text(again.value()));
        assertEquals(2, again.attempt(), "the attempt count survives the restart");
        assertTrue(q.stats().reconnects() >= 1);
        q.ack(held);
        assertEquals(1, q.stats().staleReceipts(), "the old receipt is dropped locally");
        q.ack(again);
        q.close();
        assertTrue(q.takeStreamErrors().isEmpty());
        assertEquals(0, admin.describeSubscription(topic, "w").queueStats().inFlight());
    }

    @Test
    void queueSettingsAreCreatedAndDescribedAndBadOnesGetTheirCodes() {
        // C22 queue-and-message-bad-input
        String topic = makeTopic(1);
        Admin admin = client.admin();
        SubscriptionInfo info = admin.createQueueSubscription(topic, "jobs", StartPosition.earliest(),
                Duration.ofSeconds(12), 7, topic + "-dead");
        assertEquals(SubscriptionMode.QUEUE, info.mode());
        QueueSettings described = admin.describeSubscription(topic, "jobs").queue();
        assertEquals(new QueueSettings(Duration.ofSeconds(12), 7, topic + "-dead"), described);
        assertThrows(InvalidArgumentException.class,
                () -> client.queueConsumer(worker(topic, "zero").maxDeliveries(0).build()));
        assertThrows(InvalidArgumentException.class,
                () -> client.queueConsumer(ConsumerConfig.builder(topic, "").build()));
        admin.createSubscription(topic, "stream", StartPosition.earliest());
        SubscriptionModeMismatchException err = assertThrows(SubscriptionModeMismatchException.class,
                () -> client.queueConsumer(worker(topic, "stream").build()));
        assertEquals(4003, err.code());
        try (Producer producer = client.producer(topic)) {
            InvalidPriorityException priority = assertThrows(InvalidPriorityException.class,
                    () -> producer.send(Message.builder("too high").priority(10).build()));
            assertEquals(3005, priority.code());
            assertThrows(DeliverAtOutOfRangeException.class, () -> producer.send(Message.builder("far")
                    .deliverAt(Instant.now().plus(Duration.ofDays(3650))).build()));
        }
    }
}
