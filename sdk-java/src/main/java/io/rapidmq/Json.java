package io.rapidmq;

import io.rapidmq.ffi.ReceivedMessage;
import java.lang.reflect.Type;
import java.util.Objects;
import tools.jackson.core.JacksonException;
import tools.jackson.core.json.JsonFactory;
import tools.jackson.core.type.TypeReference;
import tools.jackson.databind.ObjectMapper;
import tools.jackson.databind.SerializationFeature;
import tools.jackson.databind.json.JsonMapper;

/**
 * JSON helpers (conformance scenario C28): a value encoded as a {@link Message}, and a received
 * message's value decoded into a type, with Jackson 3.
 *
 * <p>Jackson ({@code tools.jackson.core:jackson-databind}) is an optional dependency of the SDK:
 * an application that uses this class declares it itself. No other class of the SDK refers to
 * Jackson, so the SDK works without it on the class path (using this class then fails with
 * {@link NoClassDefFoundError}).
 *
 * <p>Encoding writes the value's compact UTF-8 JSON and appends the header
 * {@value Message#CONTENT_TYPE_HEADER}: {@value Message#JSON_CONTENT_TYPE} after every other
 * header. Decoding reads the value whether or not that header is there (other producers may not
 * set it). Both fail with {@link InvalidArgumentException} (not retriable) with Jackson's
 * exception as the cause: a value that is not JSON of the requested type, an object Jackson
 * cannot serialise.
 *
 * <p>The overloads without a mapper use {@link JsonMapper#shared()} (Jackson 3's defaults: for
 * example unknown properties are ignored, trailing tokens are an error); pass an
 * {@link ObjectMapper} built for the JSON format to use its modules and settings.
 *
 * <pre>{@code
 * record Order(int id, String name) {}
 *
 * producer.send(Json.builder(new Order(7, "café")).key("customer-7").build());
 * Order order = Json.read(received, Order.class);
 * List<Order> orders = Json.read(received, new TypeReference<List<Order>>() {});
 * }</pre>
 */
public final class Json {
    private Json() {}

    /**
     * A keyless message whose value is {@code value} as compact UTF-8 JSON, with the header
     * {@value Message#CONTENT_TYPE_HEADER}: {@value Message#JSON_CONTENT_TYPE}.
     *
     * @throws InvalidArgumentException when Jackson cannot serialise {@code value}
     */
    public static Message message(Object value) {
        return builder(value).build();
    }

    /**
     * {@link #message(Object)} with {@code mapper}.
     *
     * @throws InvalidArgumentException when {@code mapper} cannot serialise {@code value}
     * @throws IllegalArgumentException when {@code mapper} does not write JSON
     */
    public static Message message(ObjectMapper mapper, Object value) {
        return builder(mapper, value).build();
    }

    /**
     * A builder for a message whose value is {@code value} as JSON: set a key, headers, a delay,
     * and so on as with {@link Message#builder(byte[])}. {@link Message.Builder#build()} appends
     * the {@value Message#CONTENT_TYPE_HEADER} header after the headers set on the builder.
     *
     * @throws InvalidArgumentException when Jackson cannot serialise {@code value}
     */
    public static Message.Builder builder(Object value) {
        return builder(JsonMapper.shared(), value);
    }

    /**
     * {@link #builder(Object)} with {@code mapper} (its {@link SerializationFeature#INDENT_OUTPUT}
     * is ignored: the value is compact).
     *
     * @throws InvalidArgumentException when {@code mapper} cannot serialise {@code value}
     * @throws IllegalArgumentException when {@code mapper} does not write JSON
     */
    public static Message.Builder builder(ObjectMapper mapper, Object value) {
        byte[] json;
        try {
            json = jsonMapper(mapper).writer().without(SerializationFeature.INDENT_OUTPUT).writeValueAsBytes(value);
        } catch (JacksonException e) {
            String what = value == null ? "null" : "a " + value.getClass().getName();
            throw invalid(what + " cannot be written as JSON", e);
        }
        return Message.builder(json).lastHeader(Message.CONTENT_TYPE_HEADER, Message.JSON_CONTENT_TYPE);
    }

    /**
     * The value of {@code message} read as JSON into {@code type} (JSON {@code null} is
     * {@code null}). The {@value Message#CONTENT_TYPE_HEADER} header is not required.
     *
     * @throws InvalidArgumentException when the value is not JSON of {@code type}
     */
    public static <T> T read(ReceivedMessage message, Class<T> type) {
        return read(JsonMapper.shared(), message, type);
    }

    /**
     * The value of {@code message} read as JSON into the generic {@code type}, e.g.
     * {@code new TypeReference<List<Order>>() {}}.
     *
     * @throws InvalidArgumentException when the value is not JSON of {@code type}
     */
    public static <T> T read(ReceivedMessage message, TypeReference<T> type) {
        return read(JsonMapper.shared(), message, type);
    }

    /**
     * {@link #read(ReceivedMessage, Class)} with {@code mapper}.
     *
     * @throws InvalidArgumentException when the value is not JSON of {@code type}
     * @throws IllegalArgumentException when {@code mapper} does not read JSON
     */
    public static <T> T read(ObjectMapper mapper, ReceivedMessage message, Class<T> type) {
        Objects.requireNonNull(type, "type");
        ObjectMapper json = jsonMapper(mapper);
        byte[] value = Objects.requireNonNull(message, "message").value();
        try {
            return json.readValue(value, type);
        } catch (JacksonException e) {
            throw notJson(message, type, e);
        }
    }

    /**
     * {@link #read(ReceivedMessage, TypeReference)} with {@code mapper}.
     *
     * @throws InvalidArgumentException when the value is not JSON of {@code type}
     * @throws IllegalArgumentException when {@code mapper} does not read JSON
     */
    public static <T> T read(ObjectMapper mapper, ReceivedMessage message, TypeReference<T> type) {
        Objects.requireNonNull(type, "type");
        ObjectMapper json = jsonMapper(mapper);
        byte[] value = Objects.requireNonNull(message, "message").value();
        try {
            return json.readValue(value, type);
        } catch (JacksonException e) {
            throw notJson(message, type.getType(), e);
        }
    }

    /** {@code mapper}, checked to be one for JSON (its content type would be wrong otherwise). */
    private static ObjectMapper jsonMapper(ObjectMapper mapper) {
        Objects.requireNonNull(mapper, "mapper");
        if (!(mapper.tokenStreamFactory() instanceof JsonFactory)) {
            throw new IllegalArgumentException("the mapper is for " + mapper.tokenStreamFactory().getFormatName()
                    + ", not JSON");
        }
        return mapper;
    }

    private static InvalidArgumentException notJson(ReceivedMessage message, Type type, JacksonException cause) {
        return invalid("the value of topic " + message.topic() + ", partition " + message.partition() + ", offset "
                + message.offset() + " is not JSON of " + type.getTypeName(), cause);
    }

    /** Jackson's message without its location (not shown by default), with the path it failed at. */
    private static InvalidArgumentException invalid(String what, JacksonException cause) {
        String detail = what + ": " + cause.getOriginalMessage();
        if (!cause.getPath().isEmpty()) {
            detail += " (at " + cause.getPathReference() + ")";
        }
        InvalidArgumentException e = new InvalidArgumentException(detail, false);
        e.initCause(cause);
        return e;
    }
}
