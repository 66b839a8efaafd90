package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.FetchResult;
import io.rapidmq.ffi.PartitionInfo;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.TopicInfo;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * A real broker and a connected client per test (see {@link Broker}); the broker log is printed
 * when a test fails. Helpers mirror the other SDKs' suites.
 */
abstract class BrokerTest {
    /** Upper bound for anything a test waits on; reaching it fails the test (a hang guard only). */
    static final Duration GUARD = Duration.ofSeconds(60);
    private static final AtomicInteger NAMES = new AtomicInteger();

    protected Broker broker;
    protected RapidMQClient client;
    private String brokerLog = "";

    @RegisterExtension
    final TestWatcher printLogOnFailure = new TestWatcher() {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            System.out.println("---- broker log of " + context.getDisplayName() + " ----\n" + brokerLog);
        }
    };

    @BeforeEach
    void startBroker() {
        broker = new Broker();
        client = RapidMQClient.connect(broker.url());
    }

    @AfterEach
    void stopBroker() {
        try {
            if (client != null) {
                client.close();
            }
        } finally {
            brokerLog = broker.shutdown();
        }
    }

    static String uniqueTopic() {
        return "t" + ProcessHandle.current().pid() + "-" + NAMES.getAndIncrement();
    }

    String makeTopic(int partitions) {
        return makeTopic(TopicSettings.partitions(partitions));
    }

    String makeTopic(TopicSettings settings) {
        String name = uniqueTopic();
        client.admin().createTopic(name, settings);
        return name;
    }

    static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static String text(byte[] b) {
        return new String(b, StandardCharsets.UTF_8);
    }

    /** Sends "0" .. n-1 and returns the deliveries. */
    static List<Delivery> publishValues(Producer producer, int n) {
        List<CompletableFuture<Delivery>> futures = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            futures.add(producer.sendAsync(Message.of(Integer.toString(i))));
        }
        return futures.stream().map(CompletableFuture::join).toList();
    }

    /** Every message of every partition, read back with Fetch. */
    List<ReceivedMessage> readLog(String topic) {
        return readLog(client, topic);
    }

    /** Every message of every partition as {@code client}'s node serves it, read back with Fetch. */
    static List<ReceivedMessage> readLog(RapidMQClient client, String topic) {
        TopicInfo info = client.admin().describeTopic(topic);
        List<ReceivedMessage> out = new ArrayList<>();
        for (PartitionInfo p : info.partitions()) {
            long offset = p.logStartOffset();
            while (offset < p.highWatermark()) {
                FetchResult fetched = client.fetch(topic, p.partition(), offset, 1000, Duration.ofSeconds(1));
                assertFalse(fetched.messages().isEmpty(), "fetch made progress");
                offset = fetched.messages().getLast().offset() + 1;
                out.addAll(fetched.messages());
            }
        }
        return out;
    }

    /** Polls until {@code n} messages arrived; a 10 s silence fails the test. */
    static List<ReceivedMessage> pollUntil(Consumer consumer, int n, int max) {
        List<ReceivedMessage> out = new ArrayList<>();
        while (out.size() < n) {
            List<ReceivedMessage> got = consumer.poll(max, Duration.ofSeconds(10));
            assertFalse(got.isEmpty(), "stalled at " + out.size());
            out.addAll(got);
        }
        return out;
    }

    static List<ReceivedMessage> pollUntil(Consumer consumer, int n) {
        return pollUntil(consumer, n, 1000);
    }

    /**
     * Re-checks {@code condition} (every 20 ms, bounded by {@link #GUARD}) until it holds: for
     * state the broker applies asynchronously. Each check observes; none decides by elapsed time.
     */
    static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + GUARD.toNanos();
        Object tick = new Object();
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting for: " + what);
            synchronized (tick) {
                tick.wait(20);
            }
        }
    }

    static void join(Thread thread) throws InterruptedException {
        thread.join(GUARD.toMillis());
        assertFalse(thread.isAlive(), "did not finish in time");
    }

    static <T> T get(CompletableFuture<T> future) throws Exception {
        return future.get(GUARD.toSeconds(), TimeUnit.SECONDS);
    }
}
