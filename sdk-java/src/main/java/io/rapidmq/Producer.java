package io.rapidmq;

import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.NativeProducer;
import io.rapidmq.ffi.NativeSendReceipt;
import io.rapidmq.ffi.ProducerStats;
import io.rapidmq.ffi.SendCompletion;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Publishes to one topic through the client core: per-partition batching on linger, count and
 * bytes; the shared partition function for keyed messages; idempotent retries. Thread-safe.
 *
 * <p>A send queues the message at once, in the caller's order (waiting only while the producer
 * already buffers {@code maxBufferedMessages}); its {@link Delivery} says the partition and
 * either the offset ({@code APPENDED}) or {@code SCHEDULED} / {@code DEDUPLICATED}. A batch the
 * broker refuses fails every send of the batch with the code's exception.
 *
 * <p>{@link #sendAsync} futures are completed in batches: each send is tracked by an id, and
 * while any is outstanding one native call at a time collects the outcomes that are ready (up to
 * {@value #COMPLETION_BATCH}), so acknowledgements cost one call per batch, not per message.
 */
public final class Producer implements AutoCloseable {
    private static final int COMPLETION_BATCH = 4096;

    private final NativeProducer producer;
    /** Futures of tracked sends, by id, until completed or abandoned (cancelled, timed out). */
    private final ConcurrentHashMap<Long, CompletableFuture<Delivery>> pending = new ConcurrentHashMap<>();
    private final AtomicLong nextId = new AtomicLong();
    /** Tracked sends whose outcome the native side has not handed over yet. */
    private final AtomicLong outstanding = new AtomicLong();
    /** Whether a native call collecting outcomes is running. */
    private final AtomicBoolean collecting = new AtomicBoolean();

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
     * letting {@code orTimeout} expire) stops waiting; the message is still sent. Throws at once
     * when the producer is closed ({@link ClosedException}).
     */
    public CompletableFuture<Delivery> sendAsync(Message message) {
        long id = nextId.getAndIncrement();
        CompletableFuture<Delivery> future = new CompletableFuture<>();
        pending.put(id, future);
        outstanding.incrementAndGet();
        try {
            Native.run(() -> producer.sendTracked(id, message.toNative()));
        } catch (RuntimeException e) {
            pending.remove(id);
            outstanding.decrementAndGet();
            throw e;
        }
        future.whenComplete((delivery, error) -> {
            if (error != null) {
                pending.remove(id); // abandoned by the caller; its outcome will be dropped
            }
        });
        collect();
        return future;
    }

    /**
     * Like {@link #sendAsync}, but never waits for room in the buffer: empty (and nothing queued)
     * when {@code maxBufferedMessages} are already buffered. {@link #flush()} waits for its
     * future too.
     */
    public Optional<CompletableFuture<Delivery>> trySend(Message message) {
        NativeSendReceipt receipt = Native.call(() -> producer.trySend(message.toNative()));
        if (receipt == null) {
            return Optional.empty();
        }
        long id = nextId.getAndIncrement();
        CompletableFuture<Delivery> future = Native.bridge(receipt.delivery());
        pending.put(id, future);
        future.whenComplete((delivery, error) -> {
            pending.remove(id);
            receipt.close();
        });
        return Optional.of(future);
    }

    /** Starts collecting outcomes unless a collection is running. */
    private void collect() {
        if (collecting.compareAndSet(false, true)) {
            producer.nextCompletions(COMPLETION_BATCH).whenComplete(this::completed);
        }
    }

    private void completed(List<SendCompletion> batch, Throwable error) {
        if (batch != null) {
            for (SendCompletion completion : batch) {
                outstanding.decrementAndGet();
                CompletableFuture<Delivery> future = pending.remove(completion.id());
                if (future == null) {
                    continue;
                }
                if (completion.delivery() != null) {
                    future.complete(completion.delivery());
                } else {
                    var e = completion.error();
                    future.completeExceptionally(Native.exception(e.code(), e.name(), e.kind(), e.detail(),
                            e.retriable()));
                }
            }
        }
        if (outstanding.get() > 0) {
            producer.nextCompletions(COMPLETION_BATCH).whenComplete(this::completed);
            return;
        }
        collecting.set(false);
        // A send that registered after the check above found the collection still running.
        if (outstanding.get() > 0) {
            collect();
        }
    }

    /** Tracked sends whose outcome has not reached Java yet (leak checks in tests). */
    long outstandingSends() {
        return outstanding.get();
    }

    /** Completes once every future of a send issued before this call is done. */
    private CompletableFuture<Void> pendingBefore(CompletableFuture<Void> step) {
        CompletableFuture<?>[] before = pending.values().toArray(CompletableFuture[]::new);
        return step.thenCompose(ignored -> CompletableFuture.allOf(before).handle((v, e) -> null));
    }

    /** Sends {@code message} and blocks until its batch is acknowledged (or failed). */
    public Delivery send(Message message) {
        try (NativeSendReceipt receipt = Native.call(() -> producer.send(message.toNative()))) {
            return Native.call(receipt::waitBlocking);
        }
    }

    /**
     * Sends every batch now and waits until every earlier send completed (its future is done).
     */
    public void flush() {
        Native.await(flushAsync());
    }

    /** {@link #flush()} as a future. */
    public CompletableFuture<Void> flushAsync() {
        return pendingBefore(Native.bridge(producer.flush()));
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
        Native.await(pendingBefore(Native.bridge(producer.closeAsync())));
    }

    @Override
    public String toString() {
        return "Producer(topic=" + topic() + ", partitions=" + partitions() + ")";
    }
}
