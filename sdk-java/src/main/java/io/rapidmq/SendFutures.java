package io.rapidmq;

import io.rapidmq.ffi.Delivery;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;

/**
 * The futures of a producer's sends, by id. Ids are consecutive, so the futures sit in a ring
 * indexed by id: registering and taking one is an array write, not a map operation (a boxed
 * key and a node per send in a {@code ConcurrentHashMap}). {@code head}, the lowest id that may
 * still hold a future, moves over taken slots; the ring doubles when a new id would not fit
 * beside the oldest held one. Not thread-safe: {@link NativeSends} guards it with its lock.
 */
final class SendFutures {
    private CompletableFuture<?>[] ring = new CompletableFuture<?>[1024];
    /** Every id below it has been taken (or was never put). */
    private long head;
    /** One past the highest id put. */
    private long end;

    /** Holds {@code future} under {@code id}, which must not be below an id already taken. */
    void put(long id, CompletableFuture<Delivery> future) {
        if (end <= id) {
            end = id + 1;
        }
        while (end - head > ring.length) {
            grow();
        }
        ring[slot(id)] = future;
    }

    /** Takes the future of {@code id}; null if there is none (taken already, or never put). */
    @SuppressWarnings("unchecked")
    CompletableFuture<Delivery> take(long id) {
        if (id < head || id >= end) {
            return null;
        }
        int slot = slot(id);
        CompletableFuture<Delivery> future = (CompletableFuture<Delivery>) ring[slot];
        ring[slot] = null;
        while (head < end && ring[slot(head)] == null) {
            head++;
        }
        return future;
    }

    /** The futures still held, oldest first. */
    List<CompletableFuture<?>> held() {
        List<CompletableFuture<?>> out = new ArrayList<>();
        for (long id = head; id < end; id++) {
            CompletableFuture<?> future = ring[slot(id)];
            if (future != null) {
                out.add(future);
            }
        }
        return out;
    }

    /** The ring's size (tests). */
    int capacity() {
        return ring.length;
    }

    private int slot(long id) {
        return (int) (id & (ring.length - 1));
    }

    private void grow() {
        CompletableFuture<?>[] bigger = new CompletableFuture<?>[ring.length * 2];
        for (long id = head; id < end; id++) {
            bigger[(int) (id & (bigger.length - 1))] = ring[slot(id)];
        }
        ring = bigger;
    }
}
