package io.rapidmq;

import io.rapidmq.ffi.RapidmqUniffi;
import io.rapidmq.ffi.RunOptions;
import java.time.Duration;

/**
 * How {@link QueueConsumer#listen} handles deliveries: how many at once, and the backoff of a
 * failed one. {@link #defaults()} are the core's (one at a time; 1 s doubling up to 60 s).
 *
 * @param concurrency deliveries handled at once (at least 1)
 * @param retryBackoff the delay before a failed delivery comes back, at its first failure
 * @param maxRetryBackoff the longest such delay
 */
public record RunSettings(int concurrency, Duration retryBackoff, Duration maxRetryBackoff) {
    public RunSettings {
        if (concurrency < 1) {
            throw new IllegalArgumentException("concurrency must be at least 1, got " + concurrency);
        }
    }

    /** The core's defaults. */
    public static RunSettings defaults() {
        RunOptions d = RapidmqUniffi.defaultRunOptions();
        return new RunSettings(d.concurrency(), Duration.ofMillis(d.retryBackoffMs()),
                Duration.ofMillis(d.maxRetryBackoffMs()));
    }

    /** These settings with {@code concurrency} deliveries at once. */
    public RunSettings withConcurrency(int concurrency) {
        return new RunSettings(concurrency, retryBackoff, maxRetryBackoff);
    }

    /** These settings with another backoff. */
    public RunSettings withRetryBackoff(Duration retryBackoff, Duration maxRetryBackoff) {
        return new RunSettings(concurrency, retryBackoff, maxRetryBackoff);
    }

    /**
     * The delay before a delivery whose handler failed at {@code attempt} comes back: the core's,
     * so every SDK backs off the same way.
     */
    public Duration retryDelay(int attempt) {
        return Duration.ofMillis(RapidmqUniffi.handlerRetryDelayMs(attempt, retryBackoff.toMillis(),
                maxRetryBackoff.toMillis()));
    }
}
