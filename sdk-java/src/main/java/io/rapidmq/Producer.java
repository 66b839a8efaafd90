package io.rapidmq;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.NativeProducer;
import io.rapidmq.ffi.NativeSendReceipt;
import io.rapidmq.ffi.ProducerStats;
import java.util.concurrent.CompletableFuture;

/**
 * Publishes to one topic through the client core: per-partition batching on linger, count and
 * bytes; the shared partition function for keyed messages; idempotent retries. Thread-safe.
 *
 * <p>A send queues the message at once, in the caller's order (waiting only while the producer
 * already buffers {@code maxBufferedMessages}); its {@link Delivery} says the partition and
 * either the offset ({@code APPENDED}) or {@code SCHEDULED} / {@code DEDUPLICATED}. A batch the
 * broker refuses fails every send of the batch with the code's exception.
 */
public final class Producer implements AutoCloseable {
    private final NativeProducer producer;

    Producer(NativeProducer producer) {
        this.producer = producer;
    }

    /** The topic. */
    public String topic() {
        return producer.topic();
    }

    /** The topic's partition count. */
    public int partitions() {
        return producer.partitions();
    }

    /**
     * Queues {@code message} and returns a future of its delivery. Cancelling the future (or
     * letting {@code orTimeout} expire) stops waiting; the message is still sent.
     */
    public CompletableFuture<Delivery> sendAsync(Message message) {
        try (NativeSendReceipt receipt = Native.call(() -> producer.send(message.toNative()))) {
            return Native.bridge(receipt.delivery());
        }
    }

    /** Sends {@code message} and blocks until its batch is acknowledged (or failed). */
    public Delivery send(Message message) {
        try (NativeSendReceipt receipt = Native.call(() -> producer.send(message.toNative()))) {
            return Native.call(receipt::waitBlocking);
        }
    }

    /** Sends every batch now and waits until every earlier send completed. */
    public void flush() {
        Native.await(flushAsync());
    }

    /** {@link #flush()} as a future. */
    public CompletableFuture<Void> flushAsync() {
        return Native.bridge(producer.flush());
    }

    /** The counters so far (messages, batches, requests, retries, duplicates). */
    public ProducerStats stats() {
        return producer.stats();
    }

    /** Test hook, not API: treat the next {@code n} acknowledgements as lost (retry path). */
    void testOnlyLoseAcks(int n) {
        producer.testOnlyLoseAcks(n);
    }

    /** Flushes, then stops the producer; later sends fail with {@link ClosedException}. */
    @Override
    public void close() {
        Native.await(producer.closeAsync());
    }

    @Override
    public String toString() {
        return "Producer(topic=" + topic() + ", partitions=" + partitions() + ")";
    }
}
