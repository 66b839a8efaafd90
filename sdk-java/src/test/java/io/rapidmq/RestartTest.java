package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.ReceivedMessage;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** C08 retry-across-restart-no-duplicates: a broker crash (or graceful restart) mid-run. */
class RestartTest extends BrokerTest {
    private static final int TOTAL = 3000;

    @ParameterizedTest
    @ValueSource(strings = {"crash", "graceful"})
    void producerAndConsumerCarryOnAcrossABrokerRestartWithoutLossOrDuplicates(String how) throws Exception {
        String topic = makeTopic(2);
        Producer producer = client.producer(topic);
        Consumer consumer = client.consumer(ConsumerConfig.builder(topic, "restart").start(StartPosition.earliest())
                .prefetch(100).commitInterval(Duration.ofMillis(50)).build());
        Set<Integer> acked = ConcurrentHashMap.newKeySet();
        Set<Integer> seen = ConcurrentHashMap.newKeySet();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        CompletableFuture<Void> thirdAcked = new CompletableFuture<>();

        Thread produce = new Thread(() -> {
            try {
                List<Map.Entry<Integer, CompletableFuture<Delivery>>> window = new ArrayList<>();
                for (int i = 0; i < TOTAL; i++) {
                    window.add(Map.entry(i, producer.sendAsync(Message.builder(Integer.toString(i)).key("k" + (i % 7)).build())));
                    if (window.size() == 100 || i + 1 == TOTAL) {
                        for (var entry : window) {
                            entry.getValue().join();
                            acked.add(entry.getKey());
                        }
                        window.clear();
                        if (acked.size() >= TOTAL / 3) {
                            thirdAcked.complete(null);
                        }
                    }
                }
            } catch (Throwable e) {
                failures.add(e);
                thirdAcked.complete(null);
            }
        });
        Thread consume = new Thread(() -> {
            try {
                while (seen.size() < TOTAL) {
                    List<ReceivedMessage> messages = consumer.poll(500, Duration.ofSeconds(30));
                    assertFalse(messages.isEmpty(), "consumer stalled at " + seen.size());
                    for (ReceivedMessage m : messages) {
                        seen.add(Integer.parseInt(text(m.value())));
                        consumer.ack(m);
                    }
                }
            } catch (Throwable e) {
                failures.add(e);
            }
        });
        produce.start();
        consume.start();
        thirdAcked.get(GUARD.toSeconds(), TimeUnit.SECONDS);
        if (how.equals("crash")) {
            broker.crashAndRestart();
        } else {
            broker.restart();
        }
        client.setEndpoints(broker.url());
        join(produce);
        join(consume);
        assertTrue(failures.isEmpty(), failures.toString());
        assertEquals(TOTAL, acked.size());
        assertEquals(TOTAL, seen.size());
        assertTrue(consumer.stats().reconnects() >= 1);
        consumer.close();
        producer.close();

        List<Integer> values = readLog(topic).stream().map(m -> Integer.parseInt(text(m.value()))).toList();
        assertEquals(values.size(), new HashSet<>(values).size(), "duplicates in the log");
        assertTrue(new HashSet<>(values).containsAll(acked), "an acked message is missing");
    }
}
