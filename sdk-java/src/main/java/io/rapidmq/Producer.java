package io.rapidmq;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.NativeProducer;
import io.rapidmq.ffi.OutgoingMessage;
import io.rapidmq.ffi.ProducerStats;
import io.rapidmq.ffi.RapidmqUniffi;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;

/**
 * Publishes to one topic through the client core: per-partition batching on linger, count and
 * bytes; the shared partition function for keyed messages; idempotent retries. Thread-safe.
 *
 * <p>A send queues the message at once, in the caller's order (waiting only while the producer
 * already buffers {@code maxBufferedMessages}); its {@link Delivery} says the partition and
 * either the offset ({@code APPENDED}) or {@code SCHEDULED} / {@code DEDUPLICATED}. A batch the
 * broker refuses fails every send of the batch with the code's exception.
 *
 * <p>Sends cross into the native core many at a time and their outcomes come back many at a
 * time: {@link #sendAsync} joins a short queue that one native call hands over whole, and
 * {@link #sendBatch} hands its list over in one call; see {@link NativeSends}.
 */
public final class Producer implements AutoCloseable {
    /** The core's bound on a producer timestamp, in ms either side of 1970. */
    private static final long MAX_TIMESTAMP_MS = RapidmqUniffi.maxTimestampMs();

    private final NativeProducer producer;
    private final NativeSends sends;

    Producer(NativeProducer producer) {
        this.producer = producer;
        this.sends = new NativeSends(producer);
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
     * Queues {@code message} and returns a future of its delivery. Returns at once, in the
     * caller's order with every other send of this producer; waits only while the producer's
     * buffer is full (interrupting the wait throws {@link java.util.concurrent.CancellationException}
     * and queues nothing). Cancelling the future (or letting {@code orTimeout} expire) stops
     * waiting; the message is still sent. Throws at once for an invalid message (a timestamp
     * 2^62 ms or more from 1970: {@link InvalidArgumentException}) and when the producer is
     * closed ({@link ClosedException}; when its client closed it, the sends already queued fail
     * their futures with it instead).
     */
    public CompletableFuture<Delivery> sendAsync(Message message) {
        return sends.queue(checked(message, -1));
    }

    /**
     * Queues every message, in order, and returns a future of each delivery, in the same order:
     * {@link #sendAsync} for many messages at once, handed to the core in one native call on the
     * calling thread (which waits while the producer's buffer is full). Every message is
     * checked before any is queued: an invalid one throws {@link InvalidArgumentException}
     * naming its index, and none of the batch is queued (conformance C30). Throws at once when
     * the producer is closed ({@link ClosedException}), queuing none.
     */
    public List<CompletableFuture<Delivery>> sendBatch(List<Message> messages) {
        List<OutgoingMessage> list = new ArrayList<>(messages.size());
        for (Message message : messages) {
            list.add(checked(message, list.size()));
        }
        return sends.queueAndHandOver(list);
    }

    /**
     * What the core checks before it queues a message ({@code index} in a batch, or -1), done
     * here so that a batch is refused whole: {@link #sendBatch}'s messages share the native
     * hand-over with other calls' sends.
     */
    private static OutgoingMessage checked(Message message, int index) {
        OutgoingMessage out = message.toNative();
        Long ts = out.timestampMs();
        if (ts != null && (ts < -MAX_TIMESTAMP_MS || ts > MAX_TIMESTAMP_MS)) {
            String which = index < 0 ? "" : "message " + index + " of the batch: ";
            throw new InvalidArgumentException(which + "timestamp_ms " + ts
                    + " is out of range (at most " + MAX_TIMESTAMP_MS + " ms either side of 1970)", false);
        }
        return out;
    }

    /**
     * Like {@link #sendAsync}, but never waits: empty (and nothing queued) when
     * {@code maxBufferedMessages} are already buffered, or while sends queued before it by
     * another call are still on their way into the buffer. {@link #flush()} waits for its future
     * too.
     */
    public Optional<CompletableFuture<Delivery>> trySend(Message message) {
        return sends.tryQueue(checked(message, -1));
    }

    /** Sends in the core whose outcome has not reached Java yet (leak checks in tests). */
    long outstandingSends() {
        return sends.outstanding();
    }

    /**
     * Sends {@code message} and blocks until its batch is acknowledged (or failed). Interrupting
     * the wait throws {@link java.util.concurrent.CancellationException}; the message is still
     * sent.
     */
    public Delivery send(Message message) {
        CompletableFuture<Delivery> delivery = sends.queueAndHandOver(List.of(checked(message, -1))).getFirst();
        return Native.await(delivery);
    }

    /**
     * Sends every batch now and waits until every earlier send completed (its future is done).
     */
    public void flush() {
        Native.await(flushAsync());
    }

    /** {@link #flush()} as a future. */
    public CompletableFuture<Void> flushAsync() {
        CompletableFuture<Void> done = sends.futuresDone();
        return sends.inCore(sends.issued())
                .thenCompose(v -> Native.bridge(producer.flush()))
                .thenCompose(v -> done);
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
        sends.close();
        CompletableFuture<Void> done = sends.futuresDone();
        Native.await(sends.inCore(sends.issued())
                .thenCompose(v -> Native.bridge(producer.closeAsync()))
                .thenCompose(v -> done));
    }

    @Override
    public String toString() {
        return "Producer(topic=" + topic() + ", partitions=" + partitions() + ")";
    }
}
