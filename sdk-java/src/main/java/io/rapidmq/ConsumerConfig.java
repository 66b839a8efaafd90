package io.rapidmq;

import io.rapidmq.ffi.ConsumerOptions;
import io.rapidmq.ffi.QueueSettings;
import io.rapidmq.ffi.RapidmqUniffi;
import io.rapidmq.ffi.RetryOptions;
import java.time.Duration;

/**
 * Consumer settings, for stream mode ({@link RapidMQClient#consumer(ConsumerConfig)}) and queue
 * mode ({@link RapidMQClient#queueConsumer(ConsumerConfig)}). Every value starts at the client
 * core's default (start latest, prefetch 0: 10,000 messages and 1 MiB in stream mode, 1,000
 * deliveries in queue mode; commits every 500 ms, no auto-commit). Immutable;
 * see {@link #builder(String, String)}.
 */
public final class ConsumerConfig {
    private final ConsumerOptions options;

    private ConsumerConfig(ConsumerOptions options) {
        this.options = options;
    }

    /**
     * A builder for {@code subscription} on {@code topic}; an empty subscription is an ephemeral
     * live tail (stream mode only, no commits).
     */
    public static Builder builder(String topic, String subscription) {
        Native.init();
        return new Builder(RapidmqUniffi.defaultConsumerOptions(topic, subscription));
    }

    /** The topic. */
    public String topic() {
        return options.topic();
    }

    /** The subscription name. */
    public String subscription() {
        return options.subscription();
    }

    /** Where a new subscription starts. */
    public StartPosition start() {
        return StartPosition.fromNative(options.start());
    }

    /** Messages buffered ahead of {@code poll} at most; 0: the mode's default. */
    public int prefetch() {
        return options.prefetch();
    }

    /** Stream mode: bytes of delivered batches buffered ahead of {@code poll} at most; 0: the default. */
    public long prefetchBytes() {
        return options.prefetchBytes();
    }

    /** How often acks are committed (stream mode) or sent (queue mode). */
    public Duration commitInterval() {
        return options.commitInterval();
    }

    /** Whether {@code poll} acknowledges what it returns. */
    public boolean autoCommit() {
        return options.autoCommit();
    }

    /** Queue mode: the settings used when subscribing creates the subscription. */
    public QueueSettings queue() {
        return options.queue();
    }

    ConsumerOptions toNative() {
        return options;
    }

    @Override
    public String toString() {
        return "ConsumerConfig(topic=" + topic() + ", subscription=" + subscription() + ", start=" + start()
                + ", prefetch=" + prefetch() + ", prefetchBytes=" + prefetchBytes() + ", commitInterval=" + commitInterval() + ", autoCommit="
                + autoCommit() + ")";
    }

    /** Builds a {@link ConsumerConfig}; unset values keep the core's defaults. */
    public static final class Builder {
        private final String topic;
        private final String subscription;
        private io.rapidmq.ffi.StartAt start;
        private int prefetch;
        private long prefetchBytes;
        private Duration commitInterval;
        private boolean autoCommit;
        private Duration ackDeadline;
        private Integer maxDeliveries;
        private String deadLetterTopic;
        private String consumerName;
        private RetryOptions reconnect;

        private Builder(ConsumerOptions d) {
            topic = d.topic();
            subscription = d.subscription();
            start = d.start();
            prefetch = d.prefetch();
            prefetchBytes = d.prefetchBytes();
            commitInterval = d.commitInterval();
            autoCommit = d.autoCommit();
            ackDeadline = d.queue().ackDeadline();
            maxDeliveries = d.queue().maxDeliveries();
            deadLetterTopic = d.queue().deadLetterTopic();
            consumerName = d.consumerName();
            reconnect = d.reconnect();
        }

        /** Where a new subscription starts (default latest). */
        public Builder start(StartPosition start) {
            this.start = start.toNative();
            return this;
        }

        /**
         * Messages buffered ahead of {@code poll} at most; 0, the default, means 10,000 in stream mode
         * and 1,000 in queue mode (where each buffered delivery holds a lease).
         *
         * @throws IllegalArgumentException if {@code prefetch} is negative
         */
        public Builder prefetch(int prefetch) {
            if (prefetch < 0) {
                throw new IllegalArgumentException("prefetch must not be negative: " + prefetch);
            }
            this.prefetch = prefetch;
            return this;
        }

        /**
         * Stream mode: bytes of delivered batches buffered ahead of {@code poll} at most (passed by one
         * batch at most, as the broker sends a batch whole); 0, the default, means 1 MiB. Queue mode
         * ignores it.
         *
         * @throws IllegalArgumentException if {@code bytes} is negative
         */
        public Builder prefetchBytes(long bytes) {
            if (bytes < 0) {
                throw new IllegalArgumentException("prefetchBytes must not be negative: " + bytes);
            }
            this.prefetchBytes = bytes;
            return this;
        }

        /** How often acks are committed or sent (default 500 ms). */
        public Builder commitInterval(Duration interval) {
            this.commitInterval = interval;
            return this;
        }

        /** Whether {@code poll} acknowledges what it returns (default off). */
        public Builder autoCommit(boolean on) {
            this.autoCommit = on;
            return this;
        }

        /** Queue mode: redeliver an unacked delivery after this long (broker default 30 s). */
        public Builder ackDeadline(Duration deadline) {
            this.ackDeadline = deadline;
            return this;
        }

        /** Queue mode: deliveries before dead-lettering (broker default 5; 0 is refused). */
        public Builder maxDeliveries(int n) {
            this.maxDeliveries = n;
            return this;
        }

        /** Queue mode: the dead-letter topic (broker default {@code <topic>.dlq}). */
        public Builder deadLetterTopic(String topic) {
            this.deadLetterTopic = topic;
            return this;
        }

        /** The name shown by {@code describeSubscription}. */
        public Builder consumerName(String name) {
            this.consumerName = name;
            return this;
        }

        /** Reconnect backoff (only the backoff bounds are used). */
        public Builder reconnect(RetryOptions reconnect) {
            this.reconnect = reconnect;
            return this;
        }

        /** The configuration; the core validates it when subscribing. */
        public ConsumerConfig build() {
            return new ConsumerConfig(new ConsumerOptions(topic, subscription, start, prefetch, prefetchBytes, commitInterval,
                    autoCommit, new QueueSettings(ackDeadline, maxDeliveries, deadLetterTopic), consumerName,
                    reconnect));
        }
    }
}
