package io.rapidmq;

import io.rapidmq.ffi.BrokerStatus;
import io.rapidmq.ffi.DeadLetterPage;
import io.rapidmq.ffi.DeadLetterReplay;
import io.rapidmq.ffi.NativeAdmin;
import io.rapidmq.ffi.QueueSettings;
import io.rapidmq.ffi.SubscriptionInfo;
import io.rapidmq.ffi.TopicInfo;
import java.time.Duration;
import java.util.List;

/**
 * Admin operations: topics, subscriptions (with queue settings and stats), lag, dead letters and
 * broker status. Every call blocks; failures are the {@link RapidMQException} subclass of their
 * code. Thread-safe. Closing it is optional: it only releases its native handle now rather than
 * when it is garbage-collected.
 */
public final class Admin implements AutoCloseable {
    private final NativeAdmin admin;

    Admin(NativeAdmin admin) {
        this.admin = admin;
    }

    /** Creates a topic with the broker's default settings. */
    public TopicInfo createTopic(String name) {
        return createTopic(name, TopicSettings.defaults());
    }

    /** Creates a topic with {@code partitions} partitions. */
    public TopicInfo createTopic(String name, int partitions) {
        return createTopic(name, TopicSettings.partitions(partitions));
    }

    /**
     * Creates a topic. Fails with {@link TopicAlreadyExistsException}, {@link InvalidNameException},
     * {@link InvalidPartitionCountException}, {@link InvalidTopicConfigException}.
     */
    public TopicInfo createTopic(String name, TopicSettings settings) {
        return Native.await(() -> admin.createTopic(name, settings.toNative()));
    }

    /** Every topic. */
    public List<TopicInfo> listTopics() {
        return Native.await(admin::listTopics);
    }

    /** One topic with its partitions; {@link TopicNotFoundException}. */
    public TopicInfo describeTopic(String name) {
        return Native.await(() -> admin.describeTopic(name));
    }

    /** Changes retention, max message size, durability or dedup window; unset values are kept. */
    public TopicInfo alterTopic(String name, TopicSettings changes) {
        return Native.await(() -> admin.alterTopic(name, changes.toNative()));
    }

    /** Deletes a topic and its subscriptions; {@link TopicNotFoundException}. */
    public void deleteTopic(String name) {
        Native.await(() -> admin.deleteTopic(name));
    }

    /** Creates a stream subscription starting at {@code start}. */
    public SubscriptionInfo createSubscription(String topic, String name, StartPosition start) {
        return Native.await(() -> admin.createSubscription(topic, name, start.toNative()));
    }

    /**
     * Creates a queue subscription; null settings take the broker defaults (ack deadline 30 s,
     * 5 deliveries, dead letters to {@code <topic>.dlq}).
     */
    public SubscriptionInfo createQueueSubscription(String topic, String name, StartPosition start,
            Duration ackDeadline, Integer maxDeliveries, String deadLetterTopic) {
        QueueSettings settings = new QueueSettings(ackDeadline, maxDeliveries, deadLetterTopic);
        return Native.await(() -> admin.createQueueSubscription(topic, name, start.toNative(), settings));
    }

    /** The subscriptions of {@code topic}, or of every topic when null. */
    public List<SubscriptionInfo> listSubscriptions(String topic) {
        return Native.await(() -> admin.listSubscriptions(topic));
    }

    /** One subscription with its cursors, members and lag; {@link SubscriptionNotFoundException}. */
    public SubscriptionInfo describeSubscription(String topic, String name) {
        return Native.await(() -> admin.describeSubscription(topic, name));
    }

    /** Messages not yet committed by a subscription, over all partitions. */
    public long lag(String topic, String name) {
        return Native.await(() -> admin.lag(topic, name));
    }

    /** Moves a subscription's cursor on every partition. */
    public SubscriptionInfo seekSubscription(String topic, String name, StartPosition position) {
        return Native.await(() -> admin.seekSubscription(topic, name, position.toNative(), null));
    }

    /** Moves a subscription's cursor on one partition. */
    public SubscriptionInfo seekSubscription(String topic, String name, StartPosition position, int partition) {
        return Native.await(() -> admin.seekSubscription(topic, name, position.toNative(), partition));
    }

    /** Deletes a subscription; {@link SubscriptionNotFoundException}. */
    public void deleteSubscription(String topic, String name) {
        Native.await(() -> admin.deleteSubscription(topic, name));
    }

    /**
     * The first page of the dead letters of {@code deadLetterTopic} not yet replayed: at most
     * {@code max} (0: the broker default, 100; at most 1000). Continue with
     * {@link #listDeadLetters(String, int, String)} and the page's {@code nextPageToken()}.
     */
    public DeadLetterPage listDeadLetters(String deadLetterTopic, int max) {
        return listDeadLetters(deadLetterTopic, max, null);
    }

    /**
     * One page of the dead letters of {@code deadLetterTopic} not yet replayed: at most
     * {@code max} (0: the broker default, 100; at most 1000), from {@code pageToken} (the
     * {@code nextPageToken()} of the previous page) or, when it is null, from the start. Follow
     * the token until it is null; a page can be shorter than {@code max}.
     *
     * <pre>{@code
     * String token = null;
     * do {
     *     DeadLetterPage page = admin.listDeadLetters("orders.dlq", 1000, token);
     *     handle(page.deadLetters());
     *     token = page.nextPageToken();
     * } while (token != null);
     * }</pre>
     *
     * {@link TopicNotFoundException}; {@link InvalidArgumentException} for {@code max} above 1000
     * or a token the broker did not issue for this topic.
     */
    public DeadLetterPage listDeadLetters(String deadLetterTopic, int max, String pageToken) {
        return Native.await(() -> admin.listDeadLetters(deadLetterTopic, max, pageToken));
    }

    /**
     * Publishes up to the broker's default (1000) pending dead letters back to their topics.
     * Says how many it published and how many are still {@code remaining()}: call again until
     * that is 0.
     */
    public DeadLetterReplay replayDeadLetters(String deadLetterTopic) {
        return Native.await(() -> admin.replayDeadLetters(deadLetterTopic, null));
    }

    /**
     * Publishes up to {@code max} (1 to 10000) pending dead letters back to their topics. Says
     * how many it published and how many are still {@code remaining()}.
     */
    public DeadLetterReplay replayDeadLetters(String deadLetterTopic, int max) {
        return Native.await(() -> admin.replayDeadLetters(deadLetterTopic, max));
    }

    /** Broker version, uptime and counts. */
    public BrokerStatus status() {
        return Native.await(admin::status);
    }

    /** Releases the native handle; later calls on this object fail. */
    @Override
    public void close() {
        admin.close();
    }
}
