package io.rapidmq;

import io.rapidmq.ffi.Durability;
import io.rapidmq.ffi.Storage;
import io.rapidmq.ffi.TopicConfig;
import java.time.Duration;

/**
 * Settings of a new topic (or, for {@link Admin#alterTopic}, the changes); unset values take
 * the broker's defaults (or keep the current value).
 */
public final class TopicSettings {
    private int partitions;
    private Long retentionMs;
    private Long retentionBytes;
    private Long retentionMessages;
    private Integer maxMessageBytes;
    private Storage storage = Storage.DEFAULT;
    private Durability durability = Durability.UNSPECIFIED;
    private Long dedupWindowMs;
    private Integer replicationFactor;

    private TopicSettings() {}

    /** Broker defaults everywhere. */
    public static TopicSettings defaults() {
        return new TopicSettings();
    }

    /** {@code n} partitions, broker defaults otherwise. */
    public static TopicSettings partitions(int n) {
        return new TopicSettings().withPartitions(n);
    }

    /** Partition count (0: the broker's default; cannot change on an existing topic). */
    public TopicSettings withPartitions(int n) {
        this.partitions = n;
        return this;
    }

    /** Time retention per partition (zero: unlimited). */
    public TopicSettings withRetention(Duration retention) {
        this.retentionMs = retention.toMillis();
        return this;
    }

    /** Size retention per partition, bytes (0: unlimited). */
    public TopicSettings withRetentionBytes(long bytes) {
        this.retentionBytes = bytes;
        return this;
    }

    /** Message-count retention per partition (0: unlimited). */
    public TopicSettings withRetentionMessages(long messages) {
        this.retentionMessages = messages;
        return this;
    }

    /** Largest message accepted, bytes; larger ones fail with {@link MessageTooLargeException}. */
    public TopicSettings withMaxMessageBytes(int bytes) {
        this.maxMessageBytes = bytes;
        return this;
    }

    /** Disk or memory. */
    public TopicSettings withStorage(Storage storage) {
        this.storage = storage;
        return this;
    }

    /** What an acknowledgement guarantees. */
    public TopicSettings withDurability(Durability durability) {
        this.durability = durability;
        return this;
    }

    /** Messages whose {@code msg-id} was seen within this window are dropped (zero: off). */
    public TopicSettings withDedupWindow(Duration window) {
        this.dedupWindowMs = window.toMillis();
        return this;
    }

    /**
     * Cluster mode: copies of each partition (unset: {@code min(3, voting nodes)}; cannot change
     * on an existing topic). A single-node broker accepts 1 only; more than the voting nodes fails
     * with {@link InvalidTopicConfigException}.
     */
    public TopicSettings withReplicationFactor(int copies) {
        this.replicationFactor = copies;
        return this;
    }

    TopicConfig toNative() {
        return new TopicConfig(partitions, retentionMs, retentionBytes, retentionMessages, maxMessageBytes, storage,
                durability, dedupWindowMs, replicationFactor);
    }
}
