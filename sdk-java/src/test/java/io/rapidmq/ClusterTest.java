package io.rapidmq;

import static io.rapidmq.BrokerTest.GUARD;
import static io.rapidmq.BrokerTest.eventually;
import static io.rapidmq.BrokerTest.text;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.ClusterNode;
import io.rapidmq.ffi.ClusterStatus;
import io.rapidmq.ffi.Delivery;
import io.rapidmq.ffi.Durability;
import io.rapidmq.ffi.LeaderRebalance;
import io.rapidmq.ffi.PartitionInfo;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.SendStatus;
import io.rapidmq.ffi.TopicInfo;
import java.io.IOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Cluster administration through the core: a one-node cluster ({@code serve --node-id 1 --peers
 * 1=127.0.0.1:PORT}) and a broker in single-node mode; partition placement (replicas, leaders,
 * the replication factor) on one node and on three, and replica moves on three; C24
 * cluster-failover with three nodes.
 */
class ClusterTest {
    private static final int FAILOVER_MESSAGES = 300;
    private static final int FAILOVER_KEYS = 10;
    /** Receipts awaited together; the kill lands while one window is on the wire. */
    private static final int FAILOVER_WINDOW = 30;

    private final List<Broker> brokers = new ArrayList<>();
    private final List<AutoCloseable> clients = new ArrayList<>();
    private final StringBuilder logs = new StringBuilder();

    @RegisterExtension
    final TestWatcher printLogOnFailure = new TestWatcher() {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            System.out.println("---- broker logs of " + context.getDisplayName() + " ----\n" + logs);
        }
    };

    @AfterEach
    void stop() throws Exception {
        for (AutoCloseable c : clients) {
            c.close();
        }
        for (Broker b : brokers) {
            logs.append(b.shutdown());
        }
    }

    private Admin adminOf(List<String> args) {
        Broker broker = new Broker(args);
        brokers.add(broker);
        RapidMQClient client = RapidMQClient.builder().endpoints(broker.url()).connect();
        clients.add(client);
        return client.admin();
    }

    /** A free port for the cluster listener (bound, then released for the broker to take). */
    private static int freePort() throws IOException {
        try (ServerSocket socket = Broker.clusterSockets(1).get(0)) {
            return socket.getLocalPort();
        }
    }

    @Test
    void aOneNodeClusterReportsItselfRefusesBadRemovalsAndRebalancesNothing() throws Exception {
        String addr = "127.0.0.1:" + freePort();
        Admin admin = adminOf(List.of("--node-id", "1", "--peers", "1=" + addr));
        BrokerTest.eventually("node 1 to lead", () -> Long.valueOf(1).equals(admin.clusterStatus().leaderId()));

        ClusterStatus status = admin.clusterStatus();
        assertEquals("cluster", status.mode());
        assertEquals(1L, status.nodeId());
        assertEquals("voter", status.membership());
        assertTrue(status.term() >= 1, "term " + status.term());
        // The id the founding node derived from its peers: 128 bits in hex.
        assertTrue(status.clusterId().matches("[0-9a-f]{32}"), "cluster id " + status.clusterId());
        assertEquals(1, status.nodes().size());
        ClusterNode node = status.nodes().get(0);
        assertEquals(List.of(1L, "voter", addr), List.of(node.id(), node.role(), node.clusterAddr()));

        NodeNotFoundException unknown = assertThrows(NodeNotFoundException.class, () -> admin.removeNode(9));
        assertEquals(5006, unknown.code());
        assertEquals("NODE_NOT_FOUND", unknown.codeName());
        assertTrue(unknown.detail().contains("node 9 is not a member"), unknown.detail());
        assertTrue(unknown instanceof BrokerException);

        InvalidArgumentException last = assertThrows(InvalidArgumentException.class, () -> admin.removeNode(1));
        assertTrue(last.detail().contains("last voter"), last.detail());
        assertEquals("voter", admin.clusterStatus().nodes().get(0).role());

        // The only voter leads every partition it hosts and has no other node to ask.
        assertRebalancedNothing(admin.rebalanceLeaders());
    }

    @Test
    void aSingleNodeBrokerSaysItIsNotInClusterMode() {
        Admin admin = adminOf(List.of());
        ClusterStatus status = admin.clusterStatus();
        assertEquals("single-node", status.mode());
        assertNull(status.leaderId());
        assertEquals("", status.membership());
        assertEquals(List.of(), status.nodes());
        assertEquals(0, status.movingPartitions());
        assertEquals("", status.clusterId());
        assertThrows(InvalidArgumentException.class, () -> admin.removeNode(1));
        assertThrows(InvalidArgumentException.class, () -> admin.addNode(2, "127.0.0.1:7002"));
        assertRebalancedNothing(admin.rebalanceLeaders());
        InvalidArgumentException moved = assertThrows(InvalidArgumentException.class, admin::rebalanceReplicas);
        assertEquals(1001, moved.code());
    }

    @Test
    void aSingleNodeBrokerKeepsOneCopyAndNamesNoReplicasOrLeader() {
        Admin admin = adminOf(List.of());
        TopicInfo created = admin.createTopic("one-copy", TopicSettings.partitions(2).withReplicationFactor(1));
        // A single-node broker places nothing: no factor, no replicas, no partition group leader.
        for (TopicInfo info : List.of(created, admin.describeTopic("one-copy"))) {
            assertNull(info.config().replicationFactor());
            assertEquals(2, info.partitions().size());
            for (PartitionInfo p : info.partitions()) {
                assertArrayEquals(new long[0], p.replicas(), "replicas of " + p.partition());
                assertNull(p.leader(), "leader of " + p.partition());
            }
        }

        for (var refusal : Map.of(2, "replication needs cluster mode", 0, "must be at least 1").entrySet()) {
            TopicSettings settings = TopicSettings.partitions(1).withReplicationFactor(refusal.getKey());
            InvalidTopicConfigException refused = assertThrows(InvalidTopicConfigException.class,
                    () -> admin.createTopic("copies-" + refusal.getKey(), settings));
            assertEquals(2005, refused.code());
            assertFalse(refused.isRetriable());
            assertTrue(refused.detail().contains(refusal.getValue()), refused.detail());
        }
        assertEquals(List.of("one-copy"), admin.listTopics().stream().map(TopicInfo::name).toList());
    }

    /**
     * A client of node 1 of {@code nodes} (a three-node cluster), once that node knows a metadata
     * leader and three registered voters. The nodes and the client are stopped after the test.
     */
    private RapidMQClient throughNode1(List<Broker> nodes) throws Exception {
        brokers.addAll(nodes);
        RapidMQClient client = RapidMQClient.connect(nodes.get(0).url());
        clients.add(client);
        awaitThreeVoters(client.admin());
        return client;
    }

    /** Until the node behind {@code admin} knows a metadata leader and three registered voters. */
    private static void awaitThreeVoters(Admin admin) throws InterruptedException {
        eventually("a leader and three registered voters", () -> {
            ClusterStatus s = admin.clusterStatus();
            return s.leaderId() != null && s.nodes().size() == 3
                    && s.nodes().stream().allMatch(n -> n.role().equals("voter") && !n.grpcAddr().isEmpty());
        });
    }

    @Test
    void aTopicReplicatedThreeTimesDescribesItsReplicasAndLeadersAndHasNothingToMove() throws Exception {
        List<Broker> nodes = Broker.cluster(3);
        RapidMQClient client = throughNode1(nodes);
        Admin admin = client.admin();

        TopicInfo created = admin.createTopic("placed", TopicSettings.partitions(3).withReplicationFactor(3));
        assertEquals(3, created.config().replicationFactor());
        eventually("a leader of every partition",
                () -> admin.describeTopic("placed").partitions().stream().allMatch(p -> p.leader() != null));
        TopicInfo info = admin.describeTopic("placed");
        assertEquals(3, info.config().replicationFactor());
        List<Long> preferred = new ArrayList<>();
        for (PartitionInfo p : info.partitions()) {
            long[] replicas = p.replicas().clone();
            Arrays.sort(replicas);
            assertArrayEquals(new long[] {1, 2, 3}, replicas, "replicas of " + p.partition());
            assertTrue(Arrays.stream(p.replicas()).anyMatch(r -> r == p.leader()),
                    "leader " + p.leader() + " of " + p.partition() + " is a replica");
            preferred.add(p.replicas()[0]);
        }
        // Each partition's preferred leader (its first replica) is a different node.
        assertEquals(Set.of(1L, 2L, 3L), Set.copyOf(preferred));
        TopicInfo listed =
                admin.listTopics().stream().filter(t -> t.name().equals("placed")).findFirst().orElseThrow();
        for (int i = 0; i < 3; i++) {
            assertArrayEquals(info.partitions().get(i).replicas(), listed.partitions().get(i).replicas());
        }

        InvalidTopicConfigException refused = assertThrows(InvalidTopicConfigException.class,
                () -> admin.createTopic("too-many-copies", TopicSettings.partitions(1).withReplicationFactor(4)));
        assertTrue(refused.detail().contains("more than the cluster's 3 voting nodes"), refused.detail());

        // Every node holds a replica of each partition and leads one: nothing to move, nothing
        // moving; and no node 9 to move replicas off.
        assertEquals(List.of(), admin.rebalanceReplicas(List.of(), true));
        assertEquals(0, admin.clusterStatus().movingPartitions());
        NodeNotFoundException unknown =
                assertThrows(NodeNotFoundException.class, () -> admin.rebalanceReplicas(List.of(9L), false));
        assertEquals(5006, unknown.code());
        assertEquals("NODE_NOT_FOUND", unknown.codeName());
    }

    /**
     * C24 cluster-failover: three nodes, a topic of three partitions replicated three times
     * (fsync), a client connected to node 1 only. A producer sends keyed messages (each
     * partition's batches to its leader) and a queue consumer acks what it polls (one stream per
     * node); a third of the way in, a node other than node 1 that leads a partition is killed
     * ({@code kill -9}). Every send is appended (the core follows the new leader and retries
     * idempotently), the consumer gets every message, and the log holds each once, each key's
     * messages in send order.
     */
    @Test
    void aProducerAndAQueueConsumerThroughNode1CarryOnWhenAPartitionLeaderIsKilled() throws Exception {
        List<Broker> nodes = Broker.cluster(3);
        RapidMQClient client = throughNode1(nodes);
        Admin admin = client.admin();
        String topic = "failover";
        admin.createTopic(topic, TopicSettings.partitions(3).withDurability(Durability.FSYNC));
        eventually("a leader of every partition on three replicas", () -> admin.describeTopic(topic).partitions()
                .stream().allMatch(p -> p.leader() != null && p.replicas().length == 3));

        QueueConsumer queue = client.queueConsumer(ConsumerConfig.builder(topic, "failover")
                .start(StartPosition.earliest()).commitInterval(Duration.ofMillis(20)).build());
        clients.add(0, queue); // closed before the client
        Set<Integer> seen = ConcurrentHashMap.newKeySet();
        List<Throwable> failures = new CopyOnWriteArrayList<>();
        Thread consume = new Thread(() -> {
            try {
                while (seen.size() < FAILOVER_MESSAGES) {
                    List<QueueMessage> got = queue.poll(100, Duration.ofSeconds(30));
                    assertFalse(got.isEmpty(), "queue consumer stalled at " + seen.size());
                    for (QueueMessage m : got) {
                        seen.add(Integer.parseInt(text(m.value())));
                        queue.ack(m);
                    }
                }
                queue.flush();
            } catch (Throwable e) {
                failures.add(e);
            }
        });
        consume.start();

        Producer producer = client.producer(topic);
        clients.add(0, producer);
        Map<Integer, Delivery> receipts = new HashMap<>();
        long victim = 0;
        for (int start = 0; start < FAILOVER_MESSAGES; start += FAILOVER_WINDOW) {
            Map<Integer, CompletableFuture<Delivery>> window = new HashMap<>();
            for (int i = start; i < Math.min(start + FAILOVER_WINDOW, FAILOVER_MESSAGES); i++) {
                Message message = Message.builder(Integer.toString(i)).key("k" + (i % FAILOVER_KEYS)).build();
                window.put(i, producer.sendAsync(message));
            }
            if (victim == 0 && start >= FAILOVER_MESSAGES / 3) {
                // A node other than node 1 that leads a partition, or node 2 if node 1 leads them
                // all: the scenario kills a node either way.
                victim = admin.describeTopic(topic).partitions().stream().map(PartitionInfo::leader)
                        .filter(l -> l != null && l != 1).findFirst().orElse(2L);
                System.out.println("killing node " + victim);
                nodes.get((int) victim - 1).kill();
            }
            for (var entry : window.entrySet()) {
                Delivery d = BrokerTest.get(entry.getValue());
                assertEquals(SendStatus.APPENDED, d.status(), "message " + entry.getKey());
                receipts.put(entry.getKey(), d);
            }
        }
        producer.close();
        System.out.println("producer stats: " + producer.stats());

        BrokerTest.join(consume);
        assertTrue(failures.isEmpty(), failures.toString());
        Set<Integer> sent = new HashSet<>();
        for (int i = 0; i < FAILOVER_MESSAGES; i++) {
            sent.add(i);
        }
        assertEquals(sent, seen, "the queue consumer got every message");
        System.out.println("queue consumer stats: " + queue.stats());
        queue.close();

        // Node 1 is a replica of every partition: once it has applied every acked append it
        // serves the whole log, and a retried batch appended twice would show as more messages.
        eventually("node 1 to serve every acked message",
                () -> BrokerTest.readLog(client, topic).size() >= FAILOVER_MESSAGES);
        List<ReceivedMessage> log = BrokerTest.readLog(client, topic);
        Map<String, Integer> at = new HashMap<>();
        Set<Integer> logged = new HashSet<>();
        Map<String, Integer> lastOfKey = new HashMap<>();
        for (ReceivedMessage m : log) {
            int i = Integer.parseInt(text(m.value()));
            assertTrue(logged.add(i), i + " is in the log twice (again at " + m.partition() + ":" + m.offset() + ")");
            String key = text(m.key());
            Integer before = lastOfKey.put(key, i);
            assertTrue(before == null || before < i, "key " + key + ": " + i + " after " + before);
            at.put(m.partition() + ":" + m.offset(), i);
        }
        assertEquals(FAILOVER_MESSAGES, log.size());
        for (var entry : receipts.entrySet()) {
            Delivery d = entry.getValue();
            assertEquals(entry.getKey(), at.get(d.partition() + ":" + d.offset()), "receipt " + d);
        }
    }

    private static void assertRebalancedNothing(LeaderRebalance rebalance) {
        assertEquals(0L, rebalance.transfers());
        assertArrayEquals(new long[0], rebalance.unreachable());
    }
}
