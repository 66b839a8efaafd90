package io.rapidmq;

import io.rapidmq.ffi.Header;
import io.rapidmq.ffi.NativeReceipt;
import io.rapidmq.ffi.QueueDelivery;
import io.rapidmq.ffi.ReceivedMessage;
import java.util.List;

/**
 * One delivery of a queue message: the message, its attempt number and the receipt that
 * {@link QueueConsumer#ack}, {@link QueueConsumer#nack} and {@link QueueConsumer#extendDeadline}
 * take. Valid only for the consumer (and connection) that received it.
 */
public final class QueueMessage {
    private final ReceivedMessage message;
    private final int attempt;
    private final NativeReceipt receipt;

    QueueMessage(QueueDelivery delivery) {
        this.message = delivery.message();
        this.attempt = delivery.attempt();
        this.receipt = delivery.receipt();
    }

    /** The message. */
    public ReceivedMessage message() {
        return message;
    }

    /** 1 on the first delivery; counts survive broker restarts. */
    public int attempt() {
        return attempt;
    }

    /** The payload. */
    public byte[] value() {
        return message.value();
    }

    /** The key, or null. */
    public byte[] key() {
        return message.key();
    }

    /** The headers, in order. */
    public List<Header> headers() {
        return message.headers();
    }

    /** The partition. */
    public int partition() {
        return message.partition();
    }

    /** The offset in the partition. */
    public long offset() {
        return message.offset();
    }

    /** The priority, 0 to 9. */
    public int priority() {
        return message.priority() & 0xff;
    }

    NativeReceipt receipt() {
        return receipt;
    }

    @Override
    public String toString() {
        return "QueueMessage(partition=" + partition() + ", offset=" + offset() + ", attempt=" + attempt + ")";
    }
}
