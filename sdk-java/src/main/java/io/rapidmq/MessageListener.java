package io.rapidmq;

/**
 * Handles the deliveries of {@link QueueConsumer#listen}: returning acks the delivery; throwing
 * nacks it with a backoff ({@link RunSettings#retryDelay}), so it comes back later and, after the
 * subscription's {@code maxDeliveries} attempts, goes to the dead-letter topic. The same
 * semantics as every SDK's handler (docs/sdk-conformance.md, C26).
 */
@FunctionalInterface
public interface MessageListener {
    /** Handles one delivery; an exception fails it. */
    void onMessage(QueueMessage message) throws Exception;
}
