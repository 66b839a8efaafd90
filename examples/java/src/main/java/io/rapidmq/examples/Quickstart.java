package io.rapidmq.examples;

import io.rapidmq.Consumer;
import io.rapidmq.ConsumerConfig;
import io.rapidmq.Message;
import io.rapidmq.Producer;
import io.rapidmq.RapidMQClient;
import io.rapidmq.StartPosition;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.ReceivedMessage;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * Publishes messages and consumes them back.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp rapidmq-0.1.0.jar:classes \
 *     io.rapidmq.examples.Quickstart [endpoint] [messages]
 * </pre>
 *
 * Exits with status 1 when a message is missing.
 */
public final class Quickstart {
    private Quickstart() {}

    public static void main(String[] args) {
        String endpoint = args.length > 0 ? args[0] : "http://127.0.0.1:7420";
        int count = args.length > 1 ? Integer.parseInt(args[1]) : 100;
        String topic = "quickstart-" + ProcessHandle.current().pid();

        try (RapidMQClient client = RapidMQClient.connect(endpoint)) {
            client.admin().createTopic(topic, 2);

            try (Producer producer = client.producer(topic)) {
                // Asynchronous sends batch together; the futures resolve once acknowledged.
                List<CompletableFuture<Delivery>> sends = new ArrayList<>();
                for (int i = 0; i < count; i++) {
                    sends.add(producer.sendAsync(Message.builder("message " + i).key("key-" + (i % 4)).build()));
                }
                CompletableFuture.allOf(sends.toArray(CompletableFuture[]::new)).join();
                // A blocking send waits for its own acknowledgement.
                Delivery last = producer.send(Message.of("done"));
                System.out.printf("published %d messages; the last went to partition %d at offset %d%n",
                        count + 1, last.partition(), last.offset());
            }

            ConsumerConfig config = ConsumerConfig.builder(topic, "quickstart")
                    .start(StartPosition.earliest())
                    .build();
            int received = 0;
            try (Consumer consumer = client.consumer(config)) {
                while (received < count + 1) {
                    List<ReceivedMessage> messages = consumer.poll(100, Duration.ofSeconds(10));
                    if (messages.isEmpty()) {
                        break;
                    }
                    for (ReceivedMessage m : messages) {
                        consumer.ack(m);
                    }
                    received += messages.size();
                    ReceivedMessage first = messages.get(0);
                    System.out.printf("partition %d offset %d: %s%n", first.partition(), first.offset(),
                            new String(first.value(), StandardCharsets.UTF_8));
                }
            }
            System.out.printf("consumed %d messages%n", received);
            client.admin().deleteTopic(topic);
            if (received != count + 1) {
                System.exit(1);
            }
        }
    }
}
