package io.rapidmq;

import io.rapidmq.ffi.Compression;
import io.rapidmq.ffi.ProducerOptions;
import io.rapidmq.ffi.RapidmqUniffi;
import io.rapidmq.ffi.RetryOptions;
import java.time.Duration;

/**
 * Producer settings. Every value starts at the client core's default (linger 5 ms, 1000 messages
 * or 1 MiB per batch, 5 batches in flight per partition, idempotence on, ...), the same in every
 * RapidMQ SDK. Immutable; see {@link #builder(String)}.
 */
public final class ProducerConfig {
    private final ProducerOptions options;

    private ProducerConfig(ProducerOptions options) {
        this.options = options;
    }

    /** The defaults for {@code topic}. */
    public static ProducerConfig of(String topic) {
        return builder(topic).build();
    }

    /** A builder starting from the defaults for {@code topic}. */
    public static Builder builder(String topic) {
        Native.init();
        return new Builder(RapidmqUniffi.defaultProducerOptions(topic));
    }

    /** The topic. */
    public String topic() {
        return options.topic();
    }

    /** How long a partition's batch waits for more messages. */
    public Duration linger() {
        return options.linger();
    }

    /** Messages per batch. */
    public long maxBatchMessages() {
        return options.maxBatchMessages();
    }

    /** Encoded bytes per batch. */
    public long maxBatchBytes() {
        return options.maxBatchBytes();
    }

    /** Publish requests in flight at once across partitions. */
    public long maxInFlightRequests() {
        return options.maxInFlightRequests();
    }

    /** Batches of one partition in flight at once. */
    public long maxInFlightPerPartition() {
        return options.maxInFlightPerPartition();
    }

    /** Messages buffered or in flight before a send waits for room. */
    public long maxBufferedMessages() {
        return options.maxBufferedMessages();
    }

    /** Whether the producer is idempotent (retries never duplicate). */
    public boolean idempotence() {
        return options.idempotence();
    }

    /** The retry policy of failed publishes. */
    public RetryOptions retry() {
        return options.retry();
    }

    /** How each batch's messages are packed. */
    public Compression compression() {
        return options.compression();
    }

    ProducerOptions toNative() {
        return options;
    }

    @Override
    public String toString() {
        return "ProducerConfig(topic=" + topic() + ", linger=" + linger() + ", maxBatchMessages=" + maxBatchMessages()
                + ", maxBatchBytes=" + maxBatchBytes() + ", maxInFlightPerPartition=" + maxInFlightPerPartition()
                + ", idempotence=" + idempotence() + ", compression=" + compression() + ")";
    }

    /** Builds a {@link ProducerConfig}; unset values keep the core's defaults. */
    public static final class Builder {
        private String topic;
        private Duration linger;
        private long maxBatchMessages;
        private long maxBatchBytes;
        private long maxInFlightRequests;
        private long maxInFlightPerPartition;
        private long maxBufferedMessages;
        private boolean idempotence;
        private RetryOptions retry;
        private Compression compression;

        private Builder(ProducerOptions d) {
            topic = d.topic();
            linger = d.linger();
            maxBatchMessages = d.maxBatchMessages();
            maxBatchBytes = d.maxBatchBytes();
            maxInFlightRequests = d.maxInFlightRequests();
            maxInFlightPerPartition = d.maxInFlightPerPartition();
            maxBufferedMessages = d.maxBufferedMessages();
            idempotence = d.idempotence();
            retry = d.retry();
            compression = d.compression();
        }

        /** How long a partition's batch waits for more messages (default 5 ms). */
        public Builder linger(Duration linger) {
            this.linger = linger;
            return this;
        }

        /** Messages per batch (default 1000). */
        public Builder maxBatchMessages(long n) {
            this.maxBatchMessages = n;
            return this;
        }

        /** Encoded bytes per batch (default 1 MiB). */
        public Builder maxBatchBytes(long n) {
            this.maxBatchBytes = n;
            return this;
        }

        /** Publish requests in flight at once across partitions (default 16). */
        public Builder maxInFlightRequests(long n) {
            this.maxInFlightRequests = n;
            return this;
        }

        /** Batches of one partition in flight at once, 1 to 8 (default 5). */
        public Builder maxInFlightPerPartition(long n) {
            this.maxInFlightPerPartition = n;
            return this;
        }

        /** Messages buffered or in flight before a send waits (default 100,000). */
        public Builder maxBufferedMessages(long n) {
            this.maxBufferedMessages = n;
            return this;
        }

        /** Producer id and sequence numbers so retries never duplicate (default on). */
        public Builder idempotence(boolean on) {
            this.idempotence = on;
            return this;
        }

        /** The retry policy (backoff, retry count, total delivery timeout). */
        public Builder retry(RetryOptions retry) {
            this.retry = retry;
            return this;
        }

        /**
         * How each batch's messages are packed (default {@link Compression#NONE}): LZ4 or Zstandard
         * frames, stored by the broker as sent and unpacked by consumers. A batch that would not
         * shrink goes plain.
         */
        public Builder compression(Compression compression) {
            this.compression = java.util.Objects.requireNonNull(compression, "compression");
            return this;
        }

        /** The configuration; the core validates it when the producer is created. */
        public ProducerConfig build() {
            return new ProducerConfig(new ProducerOptions(topic, linger, maxBatchMessages, maxBatchBytes,
                    maxInFlightRequests, maxInFlightPerPartition, maxBufferedMessages, idempotence, retry,
                    compression));
        }
    }
}
