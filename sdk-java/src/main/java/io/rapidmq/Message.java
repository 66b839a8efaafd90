package io.rapidmq;

import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.OutgoingMessage;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A message to publish: a value, and optionally a key, headers, a timestamp, a delay or delivery
 * time, a time to live and a priority. Immutable; build one with {@link #of(String)},
 * {@link #of(byte[])} or {@link #builder(byte[])}, or with {@link Json#message(Object)} or
 * {@link Json#builder(Object)} for a value encoded as JSON.
 */
public final class Message {
    /** The header carrying an application message id, used by per-topic msg-id dedup. */
    public static final String MSG_ID_HEADER = "msg-id";

    /**
     * The header {@link RapidMQClient#request} sets to the requester's inbox topic, where
     * {@link RapidMQClient#reply} sends the reply.
     */
    public static final String REPLY_TO_HEADER = "reply-to";

    /**
     * The header {@link RapidMQClient#request} sets to an id unique per request, and
     * {@link RapidMQClient#reply} copies onto the reply.
     */
    public static final String CORRELATION_ID_HEADER = "correlation-id";

    /**
     * The header naming the media type of the value, when its producer says; informative only:
     * the broker and the client core never read it. {@link Json} sets it to
     * {@value #JSON_CONTENT_TYPE}.
     */
    public static final String CONTENT_TYPE_HEADER = "content-type";

    /** The {@value #CONTENT_TYPE_HEADER} of a value written by {@link Json}. */
    public static final String JSON_CONTENT_TYPE = "application/json";

    private final OutgoingMessage message;

    private Message(OutgoingMessage message) {
        this.message = message;
    }

    /** A keyless message with {@code value}. */
    public static Message of(byte[] value) {
        return builder(value).build();
    }

    /** A keyless message with {@code value} as UTF-8. */
    public static Message of(String value) {
        return builder(value).build();
    }

    /** A builder for a message with {@code value}. */
    public static Builder builder(byte[] value) {
        return new Builder(value);
    }

    /** A builder for a message with {@code value} as UTF-8. */
    public static Builder builder(String value) {
        return new Builder(value.getBytes(StandardCharsets.UTF_8));
    }

    /** The key, or null. */
    public byte[] key() {
        return message.key();
    }

    /** The value. */
    public byte[] value() {
        return message.value();
    }

    /** The headers, in order. */
    public List<Header> headers() {
        return message.headers();
    }

    /** The priority, 0 to 9. */
    public int priority() {
        return message.priority() & 0xff;
    }

    OutgoingMessage toNative() {
        return message;
    }

    @Override
    public String toString() {
        return "Message(" + message.value().length + " bytes, key=" + (message.key() != null) + ", headers="
                + message.headers().size() + ")";
    }

    /** Builds a {@link Message}. */
    public static final class Builder {
        private final byte[] value;
        private byte[] key;
        private final List<Header> headers = new ArrayList<>();
        /** Appended after {@link #headers} at {@link #build()} (the content type of {@link Json}). */
        private Header lastHeader;
        private Long timestampMs;
        private Duration delay;
        private Long deliverAtMs;
        private Duration ttl;
        private int priority;

        private Builder(byte[] value) {
            this.value = Objects.requireNonNull(value, "value");
        }

        /** Sets the key; messages with the same key go to the same partition, in order. */
        public Builder key(byte[] key) {
            this.key = key;
            return this;
        }

        /** Sets the key as UTF-8. */
        public Builder key(String key) {
            return key(key.getBytes(StandardCharsets.UTF_8));
        }

        /** Sets the header that {@link #build()} appends after every other one. */
        Builder lastHeader(String name, String value) {
            this.lastHeader = new Header(name, value.getBytes(StandardCharsets.UTF_8));
            return this;
        }

        /** Appends a header; names may repeat. */
        public Builder header(String name, byte[] value) {
            headers.add(new Header(Objects.requireNonNull(name, "name"), Objects.requireNonNull(value, "value")));
            return this;
        }

        /** Appends a header with a UTF-8 value. */
        public Builder header(String name, String value) {
            return header(name, value.getBytes(StandardCharsets.UTF_8));
        }

        /**
         * Sets the application message id ({@value #MSG_ID_HEADER} header): topics with a dedup
         * window drop repeats, whose delivery then says {@code DEDUPLICATED}.
         */
        public Builder msgId(String id) {
            return header(MSG_ID_HEADER, id);
        }

        /** Sets the producer timestamp, ms since the epoch (default: the send time). */
        public Builder timestampMs(long timestampMs) {
            this.timestampMs = timestampMs;
            return this;
        }

        /**
         * Delivers the message {@code delay} after the broker receives it; the delivery says
         * {@code SCHEDULED} and has no offset.
         *
         * @throws IllegalArgumentException if {@code delay} is negative
         */
        public Builder delay(Duration delay) {
            this.delay = notNegative(delay, "delay");
            return this;
        }

        /** Delivers the message at {@code at} (the broker refuses times beyond its horizon). */
        public Builder deliverAt(Instant at) {
            this.deliverAtMs = Math.max(1, at.toEpochMilli());
            return this;
        }

        /**
         * Sets the time to live from the broker's append time; expired messages are never
         * delivered.
         *
         * @throws IllegalArgumentException if {@code ttl} is negative
         */
        public Builder ttl(Duration ttl) {
            this.ttl = notNegative(ttl, "ttl");
            return this;
        }

        private static Duration notNegative(Duration d, String what) {
            if (d != null && d.isNegative()) {
                throw new IllegalArgumentException(what + " must not be negative, got " + d);
            }
            return d;
        }

        /**
         * Sets the priority, 0 (lowest, the default) to 9 (highest); queue subscriptions deliver
         * higher priorities first. The broker refuses a batch with a priority above 9
         * ({@link InvalidPriorityException}).
         */
        public Builder priority(int priority) {
            if (priority < 0 || priority > 255) {
                throw new IllegalArgumentException("priority must be 0 to 9, got " + priority);
            }
            this.priority = priority;
            return this;
        }

        /** The message. */
        public Message build() {
            List<Header> all = headers;
            if (lastHeader != null) {
                all = new ArrayList<>(headers);
                all.add(lastHeader);
            }
            return new Message(new OutgoingMessage(key, value, List.copyOf(all), timestampMs, delay, deliverAtMs,
                    ttl, (byte) priority));
        }
    }
}
