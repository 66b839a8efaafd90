package com.example;

import io.rapidmq.Consumer;
import io.rapidmq.ConsumerConfig;
import io.rapidmq.Message;
import io.rapidmq.Producer;
import io.rapidmq.RapidMQClient;
import io.rapidmq.StartPosition;
import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.ReceivedMessage;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The quickstart of the Java install test: creates a topic, publishes keyed messages with
 * headers, consumes them back and checks every field, and checks the SDK reports the release
 * version. Exits 1 on any mismatch.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp … com.example.Quickstart ENDPOINT VERSION
 * </pre>
 */
public final class Quickstart {
    private static final int COUNT = 5;

    private Quickstart() {}

    public static void main(String[] args) {
        String endpoint = args[0];
        String expectedVersion = args[1];
        List<String> problems = new ArrayList<>();

        System.out.printf("rapidmq java sdk %s (%s)%n", RapidMQClient.version(), RapidMQClient.gitRevision());
        if (!RapidMQClient.version().equals(expectedVersion)) {
            problems.add("version " + RapidMQClient.version() + ", want " + expectedVersion);
        }
        if (RapidMQClient.gitRevision().isBlank()) {
            problems.add("empty git revision");
        }

        String topic = "dist-java-" + ProcessHandle.current().pid();
        try (RapidMQClient client = RapidMQClient.connect(endpoint)) {
            client.admin().createTopic(topic, 2);
            try (Producer producer = client.producer(topic)) {
                for (int i = 0; i < COUNT; i++) {
                    producer.send(Message.builder("message " + i)
                            .key("key-" + i)
                            .header("index", Integer.toString(i))
                            .header("sdk", "java")
                            .build());
                }
            }
            System.out.printf("published %d messages to %s%n", COUNT, topic);

            Map<String, ReceivedMessage> received = new HashMap<>();
            ConsumerConfig config = ConsumerConfig.builder(topic, "dist-test").start(StartPosition.earliest()).build();
            try (Consumer consumer = client.consumer(config)) {
                while (received.size() < COUNT) {
                    List<ReceivedMessage> batch = consumer.poll(COUNT, Duration.ofSeconds(10));
                    if (batch.isEmpty()) {
                        break;
                    }
                    for (ReceivedMessage m : batch) {
                        received.put(new String(m.value(), StandardCharsets.UTF_8), m);
                        consumer.ack(m);
                    }
                }
            }
            System.out.printf("consumed %d messages%n", received.size());

            for (int i = 0; i < COUNT; i++) {
                ReceivedMessage m = received.get("message " + i);
                if (m == null) {
                    problems.add("message " + i + " missing");
                    continue;
                }
                String key = m.key() == null ? null : new String(m.key(), StandardCharsets.UTF_8);
                if (!("key-" + i).equals(key)) {
                    problems.add("message " + i + ": key " + key);
                }
                List<String> headers = new ArrayList<>();
                for (Header h : m.headers()) {
                    headers.add(h.key() + "=" + new String(h.value(), StandardCharsets.UTF_8));
                }
                List<String> want = List.of("index=" + i, "sdk=java");
                if (!headers.containsAll(want)) {
                    problems.add("message " + i + ": headers " + headers + ", want " + want);
                }
            }
            client.admin().deleteTopic(topic);
        }

        if (!problems.isEmpty()) {
            problems.forEach(p -> System.err.println("quickstart: " + p));
            System.exit(1);
        }
        System.out.println("quickstart: ok");
    }
}
