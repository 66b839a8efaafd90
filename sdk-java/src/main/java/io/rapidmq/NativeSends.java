package io.rapidmq;

import io.rapidmq.ffi.BatchQueued;
import io.rapidmq.ffi.CompletionBatch;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.ErrorInfo;
import io.rapidmq.ffi.NativeProducer;
import io.rapidmq.ffi.OutgoingMessage;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * The send path of one {@link Producer}: sends cross into the core in batches, and their
 * outcomes come back in batches, so neither costs a native call per message.
 *
 * <ul>
 *   <li><b>Hand-over.</b> A send gets the next id and a future and joins a Java-side queue, in
 *       call order. One drain at a time (on a pooled daemon thread, or on the caller's thread for
 *       {@link Producer#sendBatch} and {@link Producer#send}) takes everything queued and hands
 *       it to the core in one {@code sendBatchTracked} call, which waits in the core while the
 *       producer buffers {@code maxBufferedMessages}. The queue holds {@value #MAX_QUEUED}
 *       messages (plus one caller's batch); a send waits for room beyond that. So memory stays
 *       bounded and a full buffer slows the caller down, as a send straight into the core would.
 *   <li><b>Per-message errors.</b> The core stops a batch at the first message it refuses; that
 *       message's future fails with the refusal and the rest of the batch is handed over again,
 *       so one invalid message fails alone. A closed producer fails the rest.
 *   <li><b>Outcomes.</b> The core pushes each send's outcome into its completion queue under the
 *       send's id; while any send is outstanding, one {@code nextCompletions} call at a time
 *       collects up to {@value #COMPLETION_BATCH} of them and completes their futures.
 * </ul>
 */
final class NativeSends {
    /** Outcomes collected per native call at most. */
    private static final int COMPLETION_BATCH = 4096;
    /** Sends queued in Java (not yet handed to the core) before a send waits for room. */
    static final int MAX_QUEUED = 4096;
    /** Runs drains; idle threads end after a minute, so closed producers leave none behind. */
    private static final ExecutorService DRAINS =
            Executors.newCachedThreadPool(Thread.ofPlatform().daemon().name("rapidmq-send-", 0).factory());

    private final NativeProducer producer;
    /** Futures of sends, by id, until their outcome arrives (also when abandoned by the caller); under {@link #lock}. */
    private final SendFutures futures = new SendFutures();
    /** Sends in the core whose outcome has not been collected yet. */
    private final AtomicLong outstanding = new AtomicLong();
    /** Whether a native call collecting outcomes is running. */
    private final AtomicBoolean collecting = new AtomicBoolean();

    /** Guards the queue and the fields below it. */
    private final ReentrantLock lock = new ReentrantLock();
    /** Signalled when the queue has room again, or the producer closed. */
    private final Condition room = lock.newCondition();
    /** Held by every call that queues into the core, so those calls keep the sends' order. */
    private final ReentrantLock intoCore = new ReentrantLock();
    /** Messages not yet taken by a drain; their ids run up to {@link #nextId} - 1. */
    private ArrayList<OutgoingMessage> queued = new ArrayList<>();
    /** The id of the next send. */
    private long nextId;
    /** Every send with a lower id has been handed to the core (or failed). */
    private long handedOver;
    /** Whether a drain runs (or is scheduled). */
    private boolean draining;
    private boolean closed;

    NativeSends(NativeProducer producer) {
        this.producer = producer;
    }

    /** Queues one send; a drain on a pooled thread hands it over. */
    CompletableFuture<Delivery> queue(OutgoingMessage message) {
        CompletableFuture<Delivery> future = new CompletableFuture<>();
        boolean startDrain;
        lock.lock();
        try {
            awaitRoom();
            long id = nextId++;
            queued.add(message);
            futures.put(id, future);
            startDrain = !draining;
            draining = true;
        } finally {
            lock.unlock();
        }
        if (startDrain) {
            DRAINS.execute(() -> drain(false));
        }
        return future;
    }

    /**
     * Queues every message, in order, and unless a drain is running hands them over on the
     * calling thread (waiting while the core's buffer is full).
     */
    List<CompletableFuture<Delivery>> queueAndHandOver(List<OutgoingMessage> messages) {
        List<CompletableFuture<Delivery>> result = new ArrayList<>(messages.size());
        boolean drainHere;
        lock.lock();
        try {
            awaitRoom();
            for (OutgoingMessage message : messages) {
                CompletableFuture<Delivery> future = new CompletableFuture<>();
                futures.put(nextId++, future);
                queued.add(message);
                result.add(future);
            }
            drainHere = !draining && !messages.isEmpty();
            draining |= drainHere;
        } finally {
            lock.unlock();
        }
        if (drainHere) {
            drain(true);
        }
        return result;
    }

    /**
     * Hands {@code message} to the core unless that means waiting: empty (and nothing queued)
     * when the core's buffer is full, or when earlier sends are still on their way into it.
     */
    Optional<CompletableFuture<Delivery>> tryQueue(OutgoingMessage message) {
        if (!intoCore.tryLock()) {
            return Optional.empty(); // a hand-over is running, maybe waiting for room
        }
        try {
            long id;
            CompletableFuture<Delivery> future = new CompletableFuture<>();
            lock.lock();
            try {
                if (closed) {
                    throw closedException();
                }
                if (handedOver != nextId) {
                    return Optional.empty(); // earlier sends go first
                }
                id = nextId++;
                futures.put(id, future);
            } finally {
                lock.unlock();
            }
            boolean sent = false;
            try {
                sent = Native.call(() -> producer.trySendTracked(id, message));
            } catch (ClosedException e) {
                markClosed();
                throw e;
            } finally {
                if (!sent) {
                    take(id);
                }
                advance(id + 1);
            }
            if (!sent) {
                return Optional.empty();
            }
            outstanding.incrementAndGet();
            collect();
            return Optional.of(future);
        } finally {
            intoCore.unlock();
        }
    }

    /** Waits (under {@link #lock}) while the queue is full; throws once the producer is closed. */
    private void awaitRoom() {
        try {
            while (!closed && queued.size() >= MAX_QUEUED) {
                room.await();
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            CancellationException cancelled = new CancellationException("interrupted while waiting for room to send");
            cancelled.initCause(e);
            throw cancelled;
        }
        if (closed) {
            throw closedException();
        }
    }

    /**
     * Hands what is queued to the core until the queue is empty; with {@code once} (a caller's
     * thread) at most one batch, leaving the rest to a pooled drain.
     */
    private void drain(boolean once) {
        while (true) {
            ArrayList<OutgoingMessage> batch;
            long first;
            lock.lock();
            try {
                if (queued.isEmpty()) {
                    draining = false;
                    return;
                }
                batch = queued;
                first = nextId - batch.size();
                queued = new ArrayList<>(Math.min(batch.size(), MAX_QUEUED)); // no growing step by step
                room.signalAll();
            } finally {
                lock.unlock();
            }
            intoCore.lock();
            try {
                handOver(first, batch);
            } catch (RuntimeException | Error e) {
                fail(first, first + batch.size(), Native.convert(e)); // no future is left hanging
            } finally {
                intoCore.unlock();
            }
            advance(first + batch.size());
            if (once) {
                lock.lock();
                try {
                    if (queued.isEmpty()) {
                        draining = false;
                        return;
                    }
                } finally {
                    lock.unlock();
                }
                DRAINS.execute(() -> drain(false));
                return;
            }
        }
    }

    /** Hands {@code batch} (ids from {@code first}) to the core; a refused message fails alone. */
    private void handOver(long first, List<OutgoingMessage> batch) {
        int from = 0;
        while (from < batch.size()) {
            List<OutgoingMessage> rest = from == 0 ? batch : batch.subList(from, batch.size());
            BatchQueued result;
            try {
                long firstId = first + from;
                byte[] packed = Packed.outgoing(rest);
                result = Native.call(() -> producer.sendBatchTracked(firstId, packed));
            } catch (RuntimeException e) {
                fail(first + from, first + batch.size(), Native.convert(e));
                return;
            }
            int queuedCount = result.queued();
            if (queuedCount > 0) {
                outstanding.addAndGet(queuedCount);
                collect();
            }
            ErrorInfo error = result.error();
            if (error == null) {
                return;
            }
            RuntimeException refused =
                    Native.exception(error.code(), error.name(), error.kind(), error.detail(), error.retriable());
            long refusedId = first + from + queuedCount;
            if (refused instanceof ClosedException) {
                markClosed();
                fail(refusedId, first + batch.size(), refused);
                return;
            }
            fail(refusedId, refusedId + 1, refused);
            from += queuedCount + 1;
        }
    }

    /** Fails the futures of ids {@code from} (inclusive) to {@code to} (exclusive). */
    private void fail(long from, long to, RuntimeException error) {
        List<CompletableFuture<Delivery>> failed = new ArrayList<>();
        lock.lock();
        try {
            for (long id = from; id < to; id++) {
                CompletableFuture<Delivery> future = futures.take(id);
                if (future != null) {
                    failed.add(future);
                }
            }
        } finally {
            lock.unlock();
        }
        failed.forEach(future -> future.completeExceptionally(error));
    }

    /** Takes the future of {@code id} (null if none). */
    private CompletableFuture<Delivery> take(long id) {
        lock.lock();
        try {
            return futures.take(id);
        } finally {
            lock.unlock();
        }
    }

    private void advance(long upTo) {
        lock.lock();
        try {
            handedOver = Math.max(handedOver, upTo);
        } finally {
            lock.unlock();
        }
    }

    private void markClosed() {
        lock.lock();
        try {
            closed = true;
            room.signalAll();
        } finally {
            lock.unlock();
        }
    }

    private static ClosedException closedException() {
        return new ClosedException("the producer is closed");
    }

    /** Starts collecting outcomes unless a collection is running. */
    private void collect() {
        if (collecting.compareAndSet(false, true)) {
            producer.nextCompletions(COMPLETION_BATCH).whenComplete(this::completed);
        }
    }

    private void completed(CompletionBatch batch, Throwable error) {
        if (batch != null) {
            Packed.Outcomes outcomes = Packed.completions(batch);
            long[] ids = outcomes.ids();
            // Every future of the batch under one lock, completed outside it.
            CompletableFuture<?>[] taken = new CompletableFuture<?>[ids.length];
            lock.lock();
            try {
                for (int i = 0; i < ids.length; i++) {
                    taken[i] = futures.take(ids[i]);
                }
            } finally {
                lock.unlock();
            }
            outstanding.addAndGet(-taken.length);
            Object[] results = outcomes.results();
            for (int i = 0; i < taken.length; i++) {
                @SuppressWarnings("unchecked")
                CompletableFuture<Delivery> future = (CompletableFuture<Delivery>) taken[i];
                if (future == null) {
                    continue;
                }
                if (results[i] instanceof Delivery delivery) {
                    future.complete(delivery);
                } else {
                    future.completeExceptionally((RuntimeException) results[i]);
                }
            }
        }
        if (outstanding.get() > 0) {
            producer.nextCompletions(COMPLETION_BATCH).whenComplete(this::completed);
            return;
        }
        collecting.set(false);
        // A hand-over that counted its sends after the check above found the collection running.
        if (outstanding.get() > 0) {
            collect();
        }
    }

    /** Sends in the core whose outcome has not reached Java yet (leak checks in tests). */
    long outstanding() {
        return outstanding.get();
    }

    /** Sends issued so far; {@link #inCore} takes it as a mark. */
    long issued() {
        lock.lock();
        try {
            return nextId;
        } finally {
            lock.unlock();
        }
    }

    /** Completes once every future of a send issued so far is done. */
    CompletableFuture<Void> futuresDone() {
        CompletableFuture<?>[] before;
        lock.lock();
        try {
            before = futures.held().toArray(CompletableFuture[]::new);
        } finally {
            lock.unlock();
        }
        return CompletableFuture.allOf(before).handle((v, e) -> null);
    }

    /**
     * Completes once every send below {@code mark} ({@link #issued}) is in the core. While one
     * is not, it flushes the core's batches (one native flush at a time), so a hand-over waiting
     * for room in a buffer that only linger would empty goes on.
     */
    CompletableFuture<Void> inCore(long mark) {
        lock.lock();
        try {
            if (handedOver >= mark) {
                return CompletableFuture.completedFuture(null);
            }
        } finally {
            lock.unlock();
        }
        return Native.bridge(producer.flush()).thenCompose(v -> inCore(mark));
    }

    /** Refuses later sends with {@link ClosedException}; queued ones are still handed over. */
    void close() {
        markClosed();
    }
}
