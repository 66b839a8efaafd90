package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.PartitionInfo;
import io.rapidmq.ffi.SubscriptionInfo;
import io.rapidmq.ffi.SubscriptionMode;
import io.rapidmq.ffi.TopicInfo;
import java.util.Comparator;
import org.junit.jupiter.api.Test;

/** Admin conformance (C12, C13) against a real broker. */
class AdminTest extends BrokerTest {
    @Test
    void topicsCanBeCreatedListedDescribedAndDeleted() {
        // C13 admin-topics-subscriptions-lag (topics)
        Admin admin = client.admin();
        TopicInfo info = admin.createTopic("admin-topic", 3);
        assertEquals(3, info.partitions().size());
        TopicAlreadyExistsException err = assertThrows(TopicAlreadyExistsException.class,
                () -> admin.createTopic("admin-topic"));
        assertEquals(2002, err.code());
        assertInstanceOf(TopicException.class, err);
        assertTrue(admin.listTopics().stream().anyMatch(t -> t.name().equals("admin-topic")));
        assertEquals(3, admin.describeTopic("admin-topic").config().partitions());
        admin.deleteTopic("admin-topic");
        assertThrows(TopicNotFoundException.class, () -> admin.describeTopic("admin-topic"));
        assertEquals(0, admin.status().topics());
    }

    @Test
    void badNamesAndCountsAreRejectedWithStableCodes() {
        // C12 bad-input-errors
        Admin admin = client.admin();
        for (String name : new String[] {"bad name", "x".repeat(201)}) {
            InvalidNameException err = assertThrows(InvalidNameException.class, () -> admin.createTopic(name));
            assertEquals(1003, err.code());
            assertFalse(err.isRetriable());
            assertInstanceOf(RequestException.class, err);
        }
        admin.createTopic("exists", 1);
        SubscriptionNotFoundException err = assertThrows(SubscriptionNotFoundException.class,
                () -> admin.describeSubscription("exists", "nobody"));
        assertEquals(4001, err.code());
        assertInstanceOf(SubscriptionException.class, err);
        assertThrows(InvalidPartitionCountException.class, () -> admin.createTopic("too-many", 1_000_000));
    }

    @Test
    void subscriptionsReportLagAndCanBeSeekedAndDeleted() {
        // C13 admin-topics-subscriptions-lag (subscriptions)
        String topic = makeTopic(2);
        Admin admin = client.admin();
        SubscriptionInfo sub = admin.createSubscription(topic, "audit", StartPosition.earliest());
        assertEquals(0, sub.totalLag());
        assertEquals(SubscriptionMode.STREAM, sub.mode());
        try (Producer producer = client.producer(topic)) {
            publishValues(producer, 50);
        }
        assertEquals(50, admin.lag(topic, "audit"));
        assertEquals(0, admin.seekSubscription(topic, "audit", StartPosition.latest()).totalLag());
        assertEquals(50, admin.seekSubscription(topic, "audit", StartPosition.earliest()).totalLag());
        PartitionInfo busy = admin.describeTopic(topic).partitions().stream()
                .max(Comparator.comparingLong(PartitionInfo::highWatermark)).orElseThrow();
        SubscriptionInfo seeked = admin.seekSubscription(topic, "audit", StartPosition.offset(10), busy.partition());
        assertEquals(50 - 10, seeked.totalLag());
        assertEquals(1, admin.listSubscriptions(topic).size());
        admin.deleteSubscription(topic, "audit");
        assertThrows(SubscriptionNotFoundException.class, () -> admin.describeSubscription(topic, "audit"));
    }
}
