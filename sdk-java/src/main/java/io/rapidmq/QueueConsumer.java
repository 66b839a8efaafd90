package io.rapidmq;

import io.rapidmq.ffi.NativeQueueConsumer;
import io.rapidmq.ffi.QueueConsumerStats;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;

/**
 * A queue-mode subscription: messages go one by one to any live consumer and are acknowledged
 * individually; an unacked delivery comes back after the ack deadline (unless extended), a
 * nacked one after its delay, with the next attempt number; after {@code maxDeliveries} the
 * message moves to the dead-letter topic.
 *
 * <p>Acks are batched (sent on the commit interval, {@link #flush()} and close); nacks and
 * extensions go out at once. Receipts from before a reconnect are stale: dropped locally and
 * counted ({@code staleReceipts}), never sent. Errors the broker reports on the stream (e.g.
 * {@link ReceiptUnknownException}) are counted and returned by {@link #takeStreamErrors()}; they
 * do not end the subscription. Thread-safe.
 */
public final class QueueConsumer implements AutoCloseable {
    private final NativeQueueConsumer consumer;

    QueueConsumer(NativeQueueConsumer consumer) {
        this.consumer = consumer;
    }

    /** The topic. */
    public String topic() {
        return consumer.topic();
    }

    /** The subscription name. */
    public String subscription() {
        return consumer.subscription();
    }

    /** Up to {@code max} deliveries, waiting up to {@code timeout} for the first. */
    public List<QueueMessage> poll(int max, Duration timeout) {
        return Native.await(pollAsync(max, timeout));
    }

    /** {@link #poll} as a future; cancel-safe. */
    public CompletableFuture<List<QueueMessage>> pollAsync(int max, Duration timeout) {
        return Native.bridge(consumer.poll(max, timeout),
                deliveries -> deliveries.stream().map(QueueMessage::new).toList());
    }

    /** Acknowledges a delivery. */
    public void ack(QueueMessage message) {
        Native.run(() -> consumer.ack(message.receipt()));
    }

    /** Redelivers the message after {@code delay}, with the next attempt number. */
    public void nack(QueueMessage message, Duration delay) {
        Native.run(() -> consumer.nack(message.receipt(), delay));
    }

    /** Pushes the delivery's ack deadline {@code extension} from now. */
    public void extendDeadline(QueueMessage message, Duration extension) {
        Native.run(() -> consumer.extendDeadline(message.receipt(), extension));
    }

    /**
     * Pushes each delivery to {@code listener} on {@code executor}, at most
     * {@code settings.concurrency()} at once: returning acks it, throwing nacks it with
     * {@link RunSettings#retryDelay} of its attempt (dead-lettered after the subscription's
     * {@code maxDeliveries}). The returned {@link Listening} stops it.
     */
    public Listening listen(MessageListener listener, Executor executor, RunSettings settings) {
        return new Listening(this, listener, executor, settings);
    }

    /** {@link #listen(MessageListener, Executor, RunSettings)} with the core's defaults. */
    public Listening listen(MessageListener listener, Executor executor) {
        return listen(listener, executor, RunSettings.defaults());
    }

    /** Sends pending acks now. */
    public void flush() {
        Native.await(consumer.flush());
    }

    /** The errors the broker reported on the stream since the last call, oldest first. */
    public List<RapidMQException> takeStreamErrors() {
        return consumer.takeStreamErrors().stream()
                .map(e -> Native.exception(e.code(), e.name(), e.kind(), e.detail(), e.retriable()))
                .toList();
    }

    /** The counters so far (acked, nacked, extended, stale receipts, stream errors, reconnects). */
    public QueueConsumerStats stats() {
        return consumer.stats();
    }

    /** Sends pending acks and leaves the subscription. */
    @Override
    public void close() {
        Native.await(consumer.closeAsync());
    }

    @Override
    public String toString() {
        return "QueueConsumer(topic=" + topic() + ", subscription=" + subscription() + ")";
    }
}
