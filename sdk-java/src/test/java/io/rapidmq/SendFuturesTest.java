package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import io.rapidmq.ffi.Delivery;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;

/** The ring of send futures keeps every held future reachable by its id while it grows. */
class SendFuturesTest {
    @Test
    void heldFuturesSurviveGrowthAroundTheWrapPointAndTakenOnesAreGone() {
        SendFutures futures = new SendFutures();
        // Move the head near the end of the first ring, so that the next ids wrap around.
        for (long id = 0; id < 1000; id++) {
            futures.put(id, new CompletableFuture<>());
            futures.take(id);
        }
        CompletableFuture<Delivery> held = new CompletableFuture<>();
        futures.put(1000, held);
        List<CompletableFuture<Delivery>> batch = new ArrayList<>();
        for (long id = 1001; id < 4001; id++) { // forces two doublings with 1000 held
            CompletableFuture<Delivery> future = new CompletableFuture<>();
            batch.add(future);
            futures.put(id, future);
        }
        assertEquals(4096, futures.capacity());
        assertEquals(3001, futures.held().size());
        assertSame(batch.get(2999), futures.take(4000));
        assertNull(futures.take(4000), "taken once");
        assertNull(futures.take(999), "below the head");
        assertNull(futures.take(5000), "never put");
        assertSame(held, futures.take(1000));
        for (long id = 1001; id < 4000; id++) {
            assertSame(batch.get((int) (id - 1001)), futures.take(id));
        }
        assertEquals(List.of(), futures.held());
        // Ids go on after everything was taken, with no growth.
        CompletableFuture<Delivery> next = new CompletableFuture<>();
        futures.put(4001, next);
        assertSame(next, futures.take(4001));
        assertEquals(4096, futures.capacity());
    }
}
