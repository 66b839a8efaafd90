package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.ReceivedMessage;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystem;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import tools.jackson.core.JacksonException;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * JSON helpers (C28 json-helpers) against a real broker: a value sent with {@link Json} is read
 * back as an equal object, carries {@code content-type: application/json} after the caller's
 * headers and holds compact UTF-8 JSON; JSON sent without the helper decodes too; a value that
 * is not JSON of the type fails with {@link InvalidArgumentException}.
 */
class JsonTest extends BrokerTest {
    record Order(int id, String name, List<String> tags, double price, String note) {}

    static final Order ORDER = new Order(7, "café ☕", List.of("a", "b"), 12.5, null);
    static final String ORDER_JSON = "{\"id\":7,\"name\":\"café ☕\",\"tags\":[\"a\",\"b\"],\"price\":12.5,\"note\":null}";

    /** An object Jackson cannot write: it refers to itself. */
    public static final class Loop {
        public Loop getSelf() {
            return this;
        }
    }

    private static List<String> headers(ReceivedMessage message) {
        List<String> out = new ArrayList<>();
        for (Header h : message.headers()) {
            out.add(h.key() + "=" + text(h.value()));
        }
        return out;
    }

    @Test
    void aValueSentAsJsonIsReadBackAsTheSameObject() {
        String topic = makeTopic(1);
        ObjectMapper indenting = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
        try (Producer producer = client.producer(topic)) {
            producer.send(Json.builder(ORDER).key("k").header("source", "test").build());
            // Another producer's JSON: no content-type, other property order and spacing.
            producer.send(Message.of("{ \"note\": null, \"price\": 12.5, \"tags\": [\"a\", \"b\"], \"name\": \"café ☕\", \"id\": 7 }"));
            producer.send(Json.message(List.of(ORDER, new Order(8, "b", List.of(), 0, "n"))));
            producer.send(Json.message(indenting, ORDER));
        }
        List<ReceivedMessage> log = readLog(topic);
        assertEquals(4, log.size());

        ReceivedMessage sent = log.get(0);
        assertEquals(ORDER, Json.read(sent, Order.class));
        assertEquals("k", text(sent.key()));
        assertEquals(List.of("source=test", Message.CONTENT_TYPE_HEADER + "=" + Message.JSON_CONTENT_TYPE),
                headers(sent));
        assertEquals(List.of("source=test", "content-type=application/json"), headers(sent));
        JsonMapper plain = JsonMapper.shared();
        assertEquals(plain.readTree(ORDER_JSON), plain.readTree(sent.value()));
        String raw = text(sent.value());
        assertTrue(raw.contains("\"café ☕\""), "UTF-8, not escaped: " + raw);
        assertFalse(raw.contains("\n") || raw.contains(": ") || raw.contains(", "), "compact: " + raw);

        ReceivedMessage foreign = log.get(1);
        assertEquals(List.of(), headers(foreign));
        assertEquals(ORDER, Json.read(foreign, Order.class));
        assertEquals(ORDER, Json.read(plain, foreign, new TypeReference<Order>() {}));

        List<Order> orders = Json.read(log.get(2), new TypeReference<List<Order>>() {});
        assertEquals(List.of(ORDER, new Order(8, "b", List.of(), 0, "n")), orders);

        ReceivedMessage indented = log.get(3);
        assertEquals(List.of("content-type=application/json"), headers(indented));
        assertFalse(text(indented.value()).contains("\n"), "compact with an indenting mapper");
        assertEquals(ORDER, Json.read(indenting, indented, Order.class));
    }

    @Test
    void aValueThatIsNotJsonFailsWithInvalidArgument() {
        String topic = makeTopic(1);
        try (Producer producer = client.producer(topic)) {
            producer.send(Message.of("not json"));
            producer.send(Message.builder("not json").header(Message.CONTENT_TYPE_HEADER, Message.JSON_CONTENT_TYPE)
                    .build());
            producer.send(Message.of("[1, 2]"));
            producer.send(Message.of(ORDER_JSON + " trailing"));
        }
        List<ReceivedMessage> log = readLog(topic);
        assertEquals(4, log.size());
        for (ReceivedMessage message : log) {
            InvalidArgumentException err = assertThrows(InvalidArgumentException.class,
                    () -> Json.read(message, Order.class), text(message.value()));
            assertEquals(1001, err.code());
            assertEquals("INVALID_ARGUMENT", err.codeName());
            assertFalse(err.isRetriable());
            assertInstanceOf(JacksonException.class, err.getCause());
            assertTrue(err.detail().contains(Order.class.getTypeName()), err.detail());
        }
        assertThrows(InvalidArgumentException.class,
                () -> Json.read(log.getFirst(), new TypeReference<Map<String, Object>>() {}));
    }

    @Test
    void anObjectJacksonCannotWriteFailsWithInvalidArgument() {
        InvalidArgumentException err = assertThrows(InvalidArgumentException.class, () -> Json.message(new Loop()));
        assertEquals(1001, err.code());
        assertInstanceOf(JacksonException.class, err.getCause());
        assertThrows(InvalidArgumentException.class, () -> Json.builder(new Loop()));
    }

    @Test
    void noClassButJsonRefersToJackson() throws Exception {
        // Jackson is optional: nothing but Json may load its classes. Reads the compiled classes.
        URI location = Json.class.getProtectionDomain().getCodeSource().getLocation().toURI();
        Path root = Path.of(location);
        if (Files.isDirectory(root)) {
            assertOnlyJsonRefersToJackson(root);
        } else {
            try (FileSystem jar = FileSystems.newFileSystem(root)) {
                assertOnlyJsonRefersToJackson(jar.getPath("/"));
            }
        }
    }

    private static void assertOnlyJsonRefersToJackson(Path root) throws IOException {
        List<String> referring = new ArrayList<>();
        int classes = 0;
        try (Stream<Path> files = Files.walk(root)) {
            for (Path file : files.filter(f -> f.toString().endsWith(".class")).toList()) {
                classes++;
                String name = root.relativize(file).toString();
                // ISO-8859-1 maps each byte to one char, so the constant pool's names are found as is.
                if (new String(Files.readAllBytes(file), StandardCharsets.ISO_8859_1)
                        .contains("tools/jackson")) {
                    referring.add(name);
                }
            }
        }
        assertTrue(classes > 50, "found the SDK's classes under " + root);
        assertEquals(List.of("io/rapidmq/Json.class"), referring);
    }
}
