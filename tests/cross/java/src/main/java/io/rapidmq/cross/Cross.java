package io.rapidmq.cross;

import io.rapidmq.ConsumerConfig;
import io.rapidmq.Message;
import io.rapidmq.Producer;
import io.rapidmq.ProducerConfig;
import io.rapidmq.QueueConsumer;
import io.rapidmq.QueueMessage;
import io.rapidmq.RapidMQClient;
import io.rapidmq.RapidMQException;
import io.rapidmq.StartPosition;
import io.rapidmq.ffi.Compression;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.FetchResult;
import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.ReceivedMessage;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;

/**
 * The Java side of the cross-language fidelity check (tests/cross/run.sh): publishes the messages
 * of a fixture, or reads a topic back and checks it holds exactly those messages, byte for byte
 * (key presence, value, headers in order) and at offsets 0, 1, 2, ...
 *
 * <p>Request/reply: {@code request} sends each fixture message as a request and checks that the
 * reply echoes it byte for byte; {@code respond} answers {@code requesters} times the fixture's
 * requests on a queue subscription, echoing each (its key, value and headers but {@code reply-to}
 * and {@code correlation-id}).
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp rapidmq-0.1.0.jar:classes \
 *     io.rapidmq.cross.Cross publish|verify|request endpoint topic fixture
 * java ... io.rapidmq.cross.Cross respond endpoint topic fixture requesters
 * </pre>
 *
 * The fixture format is described at the top of tests/cross/messages.txt.
 */
public final class Cross {
    private Cross() {}

    /** One fixture message; {@code key} is null for no key and empty for an empty key. */
    record Expected(byte[] key, byte[] value, List<Header> headers) {
        Message message() {
            Message.Builder builder = Message.builder(value);
            if (key != null) {
                builder.key(key);
            }
            for (Header h : headers) {
                builder.header(h.key(), h.value());
            }
            return builder.build();
        }

        boolean matches(ReceivedMessage m) {
            return matches(new Expected(m.key(), m.value(), m.headers()));
        }

        /** Same key presence and bytes, value and headers in order. */
        boolean matches(Expected m) {
            if ((m.key() == null) != (key == null) || (key != null && !Arrays.equals(m.key(), key))) {
                return false;
            }
            if (!Arrays.equals(m.value(), value) || m.headers().size() != headers.size()) {
                return false;
            }
            for (int i = 0; i < headers.size(); i++) {
                Header got = m.headers().get(i);
                if (!got.key().equals(headers.get(i).key()) || !Arrays.equals(got.value(), headers.get(i).value())) {
                    return false;
                }
            }
            return true;
        }
    }

    static Expected parse(String line) {
        Base64.Decoder b64 = Base64.getDecoder();
        String[] tokens = line.split(" ", -1);
        if (tokens.length < 2 || !tokens[1].startsWith("v:")) {
            throw new IllegalArgumentException("bad line " + line);
        }
        byte[] key = tokens[0].equals("-") ? null : b64.decode(tokens[0].substring("k:".length()));
        byte[] value = b64.decode(tokens[1].substring(2));
        List<Header> headers = new ArrayList<>();
        for (int i = 2; i < tokens.length; i++) {
            String[] parts = tokens[i].split(":", -1);
            if (parts.length != 3 || !parts[0].equals("h")) {
                throw new IllegalArgumentException("bad header token " + tokens[i]);
            }
            headers.add(new Header(new String(b64.decode(parts[1]), StandardCharsets.UTF_8), b64.decode(parts[2])));
        }
        return new Expected(key, value, headers);
    }

    static List<Expected> fixture(String path) throws IOException {
        return Files.readAllLines(Path.of(path), StandardCharsets.US_ASCII).stream()
                .filter(line -> !line.isEmpty() && !line.startsWith("#"))
                .map(Cross::parse)
                .toList();
    }

    static void publish(RapidMQClient client, String topic, List<Expected> messages) {
        String codec = System.getenv().getOrDefault("CROSS_COMPRESSION", "none");
        ProducerConfig config = ProducerConfig.builder(topic)
                .compression(Compression.valueOf(codec.toUpperCase(java.util.Locale.ROOT)))
                .build();
        try (Producer producer = client.producer(config)) {
            for (int i = 0; i < messages.size(); i++) {
                Delivery d = producer.send(messages.get(i).message());
                if (d.offset() == null || d.offset() != i) {
                    throw new IllegalStateException("message " + i + " went to offset " + d.offset());
                }
            }
        }
    }

    static void verify(RapidMQClient client, String topic, List<Expected> messages) {
        List<ReceivedMessage> read = new ArrayList<>();
        while (read.size() < messages.size()) {
            FetchResult fetched = client.fetch(topic, 0, read.size(), 1000, Duration.ZERO);
            if (fetched.messages().isEmpty()) {
                throw new IllegalStateException(read.size() + " of " + messages.size() + " messages");
            }
            read.addAll(fetched.messages());
        }
        for (int i = 0; i < messages.size(); i++) {
            ReceivedMessage m = read.get(i);
            if (m.partition() != 0 || m.offset() != i) {
                throw new IllegalStateException("message " + i + " at " + m.partition() + "/" + m.offset());
            }
            if (!messages.get(i).matches(m)) {
                throw new IllegalStateException("message " + i + ": read key " + Arrays.toString(m.key())
                        + " value " + Arrays.toString(m.value()) + " headers " + m.headers()
                        + ", sent key " + Arrays.toString(messages.get(i).key()));
            }
        }
    }

    /** {@code m} without the headers request/reply adds. */
    static Expected echoed(ReceivedMessage m) {
        List<Header> headers = m.headers().stream()
                .filter(h -> !h.key().equals(Message.REPLY_TO_HEADER) && !h.key().equals(Message.CORRELATION_ID_HEADER))
                .toList();
        return new Expected(m.key(), m.value(), headers);
    }

    static void request(RapidMQClient client, String topic, List<Expected> messages) {
        for (int i = 0; i < messages.size(); i++) {
            ReceivedMessage reply = client.request(topic, messages.get(i).message(), Duration.ofSeconds(30));
            if (!messages.get(i).matches(echoed(reply))) {
                throw new IllegalStateException("request " + i + ": the reply was key " + Arrays.toString(reply.key())
                        + " value " + Arrays.toString(reply.value()) + " headers " + reply.headers());
            }
        }
    }

    static void respond(RapidMQClient client, String topic, int count) {
        ConsumerConfig config = ConsumerConfig.builder(topic, "responders").start(StartPosition.earliest()).build();
        try (QueueConsumer consumer = client.queueConsumer(config)) {
            int answered = 0;
            while (answered < count) {
                List<QueueMessage> deliveries = consumer.poll(count - answered, Duration.ofMinutes(1));
                if (deliveries.isEmpty()) {
                    throw new IllegalStateException("answered " + answered + " of " + count + " requests");
                }
                for (QueueMessage delivery : deliveries) {
                    client.reply(delivery.message(), echoed(delivery.message()).message());
                    consumer.ack(delivery);
                    answered++;
                }
            }
        }
    }

    public static void main(String[] args) throws IOException {
        boolean respond = args.length == 5 && args[0].equals("respond");
        if (!respond && (args.length != 4 || !List.of("publish", "verify", "request").contains(args[0]))) {
            System.err.println("usage: Cross publish|verify|request <endpoint> <topic> <fixture>");
            System.err.println("       Cross respond <endpoint> <topic> <fixture> <requesters>");
            System.exit(2);
        }
        List<Expected> messages = fixture(args[3]);
        try (RapidMQClient client = RapidMQClient.connect(args[1])) {
            switch (args[0]) {
                case "publish" -> publish(client, args[2], messages);
                case "verify" -> verify(client, args[2], messages);
                case "request" -> request(client, args[2], messages);
                default -> respond(client, args[2], Integer.parseInt(args[4]) * messages.size());
            }
        } catch (IllegalStateException | RapidMQException e) {
            System.err.println("java " + args[0] + " " + args[2] + ": " + e.getMessage());
            System.exit(1);
        }
    }
}
