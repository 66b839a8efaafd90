package io.rapidmq.examples;

import io.rapidmq.Consumer;
import io.rapidmq.ConsumerConfig;
import io.rapidmq.Message;
import io.rapidmq.Producer;
import io.rapidmq.RapidMQClient;
import io.rapidmq.StartPosition;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.ReceivedMessage;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Producer and consumer throughput through the Java SDK, to compare with the Rust SDK in the
 * same run ({@code sdk-rust/examples/throughput.rs publish}, {@code rapidmq bench sub}).
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp rapidmq-0.1.0.jar:classes \
 *     io.rapidmq.examples.Throughput [endpoint] [messages] [size]
 * </pre>
 *
 * Publishes {@code messages} keyless messages of {@code size} bytes (default 1,000,000 of 100 B)
 * to a fresh 1-partition topic with default batching, as fast as sends are accepted, keeping at
 * most 200,000 unresolved futures; reports messages/s once every send resolved. Then consumes the
 * topic from the start with a new subscription (default prefetch, auto-commit) and reports
 * messages/s. Both phases run once unmeasured first, with as many messages on another topic, so
 * the JIT has compiled the send and poll paths before the clock starts: with a tenth of them as
 * the warm-up, a 1,000,000-message run still spent part of its measured second compiling
 * (publish 14 % and consume 6 % slower than after a 500,000-message warm-up).
 * The endpoint defaults to {@code http://127.0.0.1:7420}.
 */
public final class Throughput {
    private static final int WINDOW = 200_000;

    private Throughput() {}

    public static void main(String[] args) {
        String endpoint = args.length > 0 ? args[0] : "http://127.0.0.1:7420";
        long messages = args.length > 1 ? Long.parseLong(args[1]) : 1_000_000;
        int size = args.length > 2 ? Integer.parseInt(args[2]) : 100;
        String topic = "java-bench-" + ProcessHandle.current().pid();
        byte[] value = new byte[size];
        java.util.Arrays.fill(value, (byte) 'x');
        Message message = Message.of(value);

        try (RapidMQClient client = RapidMQClient.connect(endpoint)) {
            run(client, topic + "-warmup", messages, message, size, false);
            run(client, topic, messages, message, size, true);
        }
    }

    private static void run(RapidMQClient client, String topic, long messages, Message message, int size,
            boolean report) {
        client.admin().createTopic(topic, 1);
        try (Producer producer = client.producer(topic)) {
            ArrayDeque<CompletableFuture<Delivery>> window = new ArrayDeque<>();
            long start = System.nanoTime();
            for (long i = 0; i < messages; i++) {
                window.add(producer.sendAsync(message));
                if (window.size() >= WINDOW) {
                    window.poll().join();
                }
            }
            while (!window.isEmpty()) {
                window.poll().join();
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (report) {
                System.out.printf("java publish: %d messages of %d B in %.2f s: %.0f msgs/s%n", messages, size,
                        seconds, messages / seconds);
                System.out.println("producer stats: " + producer.stats());
            }
        }

        ConsumerConfig config = ConsumerConfig.builder(topic, "bench").start(StartPosition.earliest())
                .autoCommit(true).build();
        try (Consumer consumer = client.consumer(config)) {
            long received = 0;
            long start = System.nanoTime();
            while (received < messages) {
                List<ReceivedMessage> got = consumer.poll(1000, Duration.ofSeconds(10));
                if (got.isEmpty()) {
                    throw new IllegalStateException("consumer stalled at " + received);
                }
                received += got.size();
            }
            double seconds = (System.nanoTime() - start) / 1e9;
            if (report) {
                System.out.printf("java consume: %d messages of %d B in %.2f s: %.0f msgs/s%n", received, size,
                        seconds, received / seconds);
            }
        }
        client.admin().deleteTopic(topic);
    }
}
