package io.rapidmq;

import io.rapidmq.ffi.CompletionBatch;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.Durability;
import io.rapidmq.ffi.ErrorInfo;
import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.OutgoingMessage;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.SendStatus;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * The hot lists that cross the native boundary packed into one {@code byte[]} each (layouts in
 * {@code ffi/uniffi/src/packed.rs}): a poll's messages, a producer's send outcomes, and a batch
 * of messages to send. The generated bindings would move these lists record by record, sizing
 * and reading them through streams and decoding a topic string per message; here one buffer is
 * read or written in a loop, and the messages of a poll share one topic string and one empty
 * header list.
 */
final class Packed {
    private static final int TOPIC = 1;
    private static final int KEY = 2;
    private static final int DELIVER_AT = 4;
    private static final int TTL = 8;

    private static final int OUT_KEY = 1;
    private static final int OUT_TIMESTAMP = 2;
    private static final int OUT_DELAY = 4;
    private static final int OUT_DELIVER_AT = 8;
    private static final int OUT_TTL = 16;

    private static final int DELIVERED = 0;
    private static final int FAILED = 1;

    private static final SendStatus[] STATUSES = SendStatus.values();
    private static final Durability[] DURABILITIES = Durability.values();

    private Packed() {}

    /** The messages in {@code packed}, in order; an unmodifiable list. */
    static List<ReceivedMessage> received(byte[] packed) {
        ByteBuffer buf = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN);
        int count = buf.getInt();
        ReceivedMessage[] out = new ReceivedMessage[count];
        String topic = null;
        for (int i = 0; i < count; i++) {
            int flags = buf.get();
            if ((flags & TOPIC) != 0) {
                topic = string(buf);
            }
            int partition = buf.getInt();
            long offset = buf.getLong();
            long timestampMs = buf.getLong();
            long appendTimeMs = buf.getLong();
            byte priority = buf.get();
            Long deliverAtMs = (flags & DELIVER_AT) != 0 ? buf.getLong() : null;
            Duration ttl = (flags & TTL) != 0 ? Duration.ofSeconds(buf.getLong(), Integer.toUnsignedLong(buf.getInt()))
                    : null;
            byte[] key = (flags & KEY) != 0 ? bytes(buf) : null;
            byte[] value = bytes(buf);
            List<Header> headers = headers(buf);
            out[i] = new ReceivedMessage(topic, partition, offset, key, value, headers, timestampMs, appendTimeMs,
                    deliverAtMs, ttl, priority);
        }
        if (buf.hasRemaining()) {
            throw new IllegalStateException(buf.remaining() + " bytes left after the packed messages");
        }
        return Collections.unmodifiableList(Arrays.asList(out));
    }

    /** Send outcomes: each id with its {@link Delivery} or the exception its send fails with. */
    record Outcomes(long[] ids, Object[] results) {}

    /** The outcomes in {@code batch}, in the order they completed. */
    static Outcomes completions(CompletionBatch batch) {
        ByteBuffer buf = ByteBuffer.wrap(batch.packed()).order(ByteOrder.LITTLE_ENDIAN);
        int count = buf.getInt();
        long[] ids = new long[count];
        Object[] results = new Object[count];
        int failed = 0;
        for (int i = 0; i < count; i++) {
            ids[i] = buf.getLong();
            int outcome = buf.get();
            if (outcome == DELIVERED) {
                int partition = buf.getInt();
                boolean hasOffset = buf.get() != 0;
                long offset = buf.getLong();
                SendStatus status = STATUSES[buf.get()];
                Durability durability = DURABILITIES[buf.get()];
                results[i] = new Delivery(partition, hasOffset ? offset : null, durability, status);
            } else if (outcome == FAILED) {
                ErrorInfo e = batch.failed().get(failed++).error();
                results[i] = Native.exception(e.code(), e.name(), e.kind(), e.detail(), e.retriable());
            } else {
                throw new IllegalStateException("unknown send outcome " + outcome);
            }
        }
        return new Outcomes(ids, results);
    }

    /** {@code messages} packed for {@code NativeProducer.sendBatchTracked}. */
    static byte[] outgoing(List<OutgoingMessage> messages) {
        int size = 4;
        for (OutgoingMessage m : messages) {
            size += 1 + 4 + m.value().length + 4 + 1;
            if (m.key() != null) {
                size += 4 + m.key().length;
            }
            for (Header h : m.headers()) {
                size += 8 + utf8Length(h.key()) + h.value().length;
            }
            size += (m.timestampMs() != null ? 8 : 0) + (m.delay() != null ? 12 : 0)
                    + (m.deliverAtMs() != null ? 8 : 0) + (m.ttl() != null ? 12 : 0);
        }
        ByteBuffer buf = ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
        buf.putInt(messages.size());
        for (OutgoingMessage m : messages) {
            int flags = (m.key() != null ? OUT_KEY : 0) | (m.timestampMs() != null ? OUT_TIMESTAMP : 0)
                    | (m.delay() != null ? OUT_DELAY : 0) | (m.deliverAtMs() != null ? OUT_DELIVER_AT : 0)
                    | (m.ttl() != null ? OUT_TTL : 0);
            buf.put((byte) flags);
            if (m.key() != null) {
                putBytes(buf, m.key());
            }
            putBytes(buf, m.value());
            buf.putInt(m.headers().size());
            for (Header h : m.headers()) {
                putBytes(buf, h.key().getBytes(StandardCharsets.UTF_8));
                putBytes(buf, h.value());
            }
            if (m.timestampMs() != null) {
                buf.putLong(m.timestampMs());
            }
            if (m.delay() != null) {
                putDuration(buf, m.delay());
            }
            if (m.deliverAtMs() != null) {
                buf.putLong(m.deliverAtMs());
            }
            if (m.ttl() != null) {
                putDuration(buf, m.ttl());
            }
            buf.put(m.priority());
        }
        return buf.array();
    }

    private static void putBytes(ByteBuffer buf, byte[] bytes) {
        buf.putInt(bytes.length);
        buf.put(bytes);
    }

    private static void putDuration(ByteBuffer buf, Duration d) {
        buf.putLong(d.getSeconds());
        buf.putInt(d.getNano());
    }

    /** The UTF-8 length of {@code s} (header names are short; ASCII is the common case). */
    private static int utf8Length(String s) {
        int n = s.length();
        for (int i = 0; i < s.length(); i++) {
            if (s.charAt(i) >= 0x80) {
                return s.getBytes(StandardCharsets.UTF_8).length;
            }
        }
        return n;
    }

    private static List<Header> headers(ByteBuffer buf) {
        int count = buf.getInt();
        if (count == 0) {
            return List.of();
        }
        List<Header> headers = new ArrayList<>(count);
        for (int i = 0; i < count; i++) {
            headers.add(new Header(string(buf), bytes(buf)));
        }
        return Collections.unmodifiableList(headers);
    }

    private static byte[] bytes(ByteBuffer buf) {
        int len = buf.getInt();
        int at = buf.position();
        byte[] bytes = Arrays.copyOfRange(buf.array(), at, at + len);
        buf.position(at + len);
        return bytes;
    }

    private static String string(ByteBuffer buf) {
        int len = buf.getInt();
        int at = buf.position();
        String s = new String(buf.array(), at, len, StandardCharsets.UTF_8);
        buf.position(at + len);
        return s;
    }
}
