package io.rapidmq;

import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.ReceivedMessage;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * Reads a poll's messages from the one buffer the native consumer packs them into (the layout is
 * documented in {@code ffi/uniffi/src/packed.rs}). The generated bindings would read a list of
 * records field by field, decoding the topic and building a header list through a stream for
 * every message; here the messages of a poll share one topic string and one empty header list.
 */
final class Packed {
    private static final int TOPIC = 1;
    private static final int KEY = 2;
    private static final int DELIVER_AT = 4;
    private static final int TTL = 8;

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
