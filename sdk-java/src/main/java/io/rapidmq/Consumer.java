package io.rapidmq;

import io.rapidmq.ffi.ConsumerStats;
import io.rapidmq.ffi.NativeConsumer;
import io.rapidmq.ffi.ReceivedMessage;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;

/**
 * A stream-mode subscription: ordered per partition, partitions shared among the members of a
 * subscription, positions committed. The core prefetches up to {@code prefetch} messages;
 * {@link #poll} hands them out; {@link #ack} marks them done, and the contiguous acknowledged
 * prefix of each partition is committed on the commit interval, on {@link #commit()} and on
 * close. After a broker restart it reconnects and resumes by itself. Thread-safe.
 */
public final class Consumer implements AutoCloseable {
    /** The longest one native wait of {@link #poll} blocks (the native side's own bound). */
    private static final long WAIT_SLICE_NANOS = Duration.ofMillis(100).toNanos();

    private final NativeConsumer consumer;

    Consumer(NativeConsumer consumer) {
        this.consumer = consumer;
    }

    /** The topic. */
    public String topic() {
        return consumer.topic();
    }

    /** The subscription name (empty for an ephemeral tail). */
    public String subscription() {
        return consumer.subscription();
    }

    /**
     * Up to {@code max} messages, waiting up to {@code timeout} for the first; an empty list when
     * none arrived in time. Fails with the error that ended the subscription (e.g.
     * {@link TopicNotFoundException} after the topic was deleted) or {@link ClosedException}.
     * Interrupting the waiting thread ends the wait within 100 ms with a
     * {@link CancellationException} (the interrupt flag stays set), taking no message.
     */
    public List<ReceivedMessage> poll(int max, Duration timeout) {
        // The thread waits in native code rather than on a future (one wake-up when messages
        // arrive, not three thread hand-overs), in slices, since a native wait cannot be
        // interrupted.
        long deadline = System.nanoTime() + saturatedNanos(timeout);
        while (true) {
            if (Thread.currentThread().isInterrupted()) {
                throw new CancellationException("interrupted while waiting for RapidMQ");
            }
            long left = Math.max(0, deadline - System.nanoTime());
            byte[] packed = Native.call(() -> consumer.pollWait(max, Duration.ofNanos(left)));
            List<ReceivedMessage> got = Packed.received(packed);
            if (!got.isEmpty() || left <= WAIT_SLICE_NANOS) {
                return got;
            }
        }
    }

    /** {@code d} in nanoseconds, capped so that adding it to {@link System#nanoTime()} cannot overflow. */
    private static long saturatedNanos(Duration d) {
        long cap = Long.MAX_VALUE / 4;
        return d.compareTo(Duration.ofNanos(cap)) >= 0 ? cap : Math.max(0, d.toNanos());
    }

    /**
     * {@link #poll} as a future. Cancel-safe: cancelling it (or a timeout) takes no message out of
     * the buffer.
     */
    public CompletableFuture<List<ReceivedMessage>> pollAsync(int max, Duration timeout) {
        return Native.bridge(consumer.poll(max, timeout), Packed::received);
    }

    /** Acknowledges a polled message. */
    public void ack(ReceivedMessage message) {
        ack(message.partition(), message.offset());
    }

    /** Acknowledges the message at {@code offset} of {@code partition}. */
    public void ack(int partition, long offset) {
        Native.run(() -> consumer.ack(partition, offset));
    }

    /**
     * Stream mode has no per-message redelivery: always throws {@link UnsupportedException}. Use a
     * {@link QueueConsumer}.
     */
    public void nack(ReceivedMessage message, Duration delay) {
        Native.run(() -> consumer.nack(message, delay));
    }

    /** Sends the acknowledged positions now. */
    public void commit() {
        Native.await(consumer.commit());
    }

    /** The partitions this member owns now. */
    public List<Integer> assignment() {
        return java.util.Arrays.stream(consumer.assignment()).boxed().toList();
    }

    /** The counters so far (received, polled, buffered, commits, reconnects). */
    public ConsumerStats stats() {
        return consumer.stats();
    }

    /** Commits what was acknowledged and leaves the subscription. */
    @Override
    public void close() {
        Native.await(consumer.closeAsync());
    }

    @Override
    public String toString() {
        return "Consumer(topic=" + topic() + ", subscription=" + subscription() + ")";
    }
}
