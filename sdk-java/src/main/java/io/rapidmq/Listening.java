package io.rapidmq;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A running {@link QueueConsumer#listen}: one thread polls and hands each delivery to the
 * executor, at most {@link RunSettings#concurrency()} at once; the listener's return acks it, an
 * exception nacks it with {@link RunSettings#retryDelay} of its attempt. {@link #close()} stops
 * it. The semantics are every SDK's (docs/sdk-conformance.md, C26).
 */
public final class Listening implements AutoCloseable {
    /** How long one poll waits before the thread checks again whether to stop. */
    private static final Duration POLL_WAIT = Duration.ofSeconds(1);

    private final QueueConsumer consumer;
    private final MessageListener listener;
    private final Executor executor;
    private final RunSettings settings;
    private final Semaphore slots;
    private final AtomicReference<RuntimeException> failure = new AtomicReference<>();
    private final CompletableFuture<Void> done = new CompletableFuture<>();
    private volatile boolean stopping;

    Listening(QueueConsumer consumer, MessageListener listener, Executor executor, RunSettings settings) {
        this.consumer = consumer;
        this.listener = listener;
        this.executor = executor;
        this.settings = settings;
        this.slots = new Semaphore(settings.concurrency());
        Thread.ofPlatform().daemon().name("rapidmq-listener-" + consumer.subscription()).start(this::pollLoop);
    }

    private void pollLoop() {
        try {
            while (!stopping && failure.get() == null) {
                slots.acquire();
                int free = 1 + slots.drainPermits();
                List<QueueMessage> deliveries;
                try {
                    deliveries = consumer.poll(free, POLL_WAIT);
                } catch (ClosedException e) {
                    slots.release(free);
                    break;
                } catch (RuntimeException e) {
                    slots.release(free);
                    failure.compareAndSet(null, e);
                    break;
                }
                slots.release(free - deliveries.size());
                for (QueueMessage delivery : deliveries) {
                    dispatch(delivery);
                }
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            slots.acquireUninterruptibly(settings.concurrency()); // the deliveries being handled
            slots.release(settings.concurrency());
            try {
                consumer.flush();
            } catch (ClosedException ignored) {
                // closed meanwhile: unsent acks' deliveries come back
            } catch (RuntimeException e) {
                failure.compareAndSet(null, e);
            }
            RuntimeException failed = failure.get();
            if (failed == null) {
                done.complete(null);
            } else {
                done.completeExceptionally(failed);
            }
        }
    }

    private void dispatch(QueueMessage delivery) {
        try {
            executor.execute(() -> handle(delivery));
        } catch (RejectedExecutionException e) {
            try {
                consumer.nack(delivery, settings.retryDelay(delivery.attempt()));
            } finally {
                slots.release();
            }
        }
    }

    private void handle(QueueMessage delivery) {
        try {
            boolean handled;
            try {
                listener.onMessage(delivery);
                handled = true;
            } catch (Exception e) {
                handled = false;
            }
            if (handled) {
                consumer.ack(delivery);
            } else {
                consumer.nack(delivery, settings.retryDelay(delivery.attempt()));
            }
        } catch (ClosedException e) {
            // closed meanwhile: the delivery comes back
        } catch (RuntimeException e) {
            failure.compareAndSet(null, e);
        } finally {
            slots.release();
        }
    }

    /**
     * Completes when listening stopped: after {@link #close()}, or when the consumer was closed
     * (normally), or with the error that ended the subscription.
     */
    public CompletableFuture<Void> done() {
        return done;
    }

    /**
     * Stops polling, waits for the deliveries being handled (each acked or nacked) and flushes
     * the acks; the consumer stays open. Throws the error that ended the subscription, if one
     * did.
     */
    @Override
    public void close() {
        stopping = true;
        Native.await(done);
    }
}
