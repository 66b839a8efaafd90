package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.ClusterNode;
import io.rapidmq.ffi.ClusterStatus;
import io.rapidmq.ffi.LeaderRebalance;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Cluster administration through the core: a one-node cluster ({@code serve --node-id 1 --peers
 * 1=127.0.0.1:PORT}) and a broker in single-node mode.
 */
class ClusterTest {
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
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
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
        assertThrows(InvalidArgumentException.class, () -> admin.removeNode(1));
        assertThrows(InvalidArgumentException.class, () -> admin.addNode(2, "127.0.0.1:7002"));
        assertRebalancedNothing(admin.rebalanceLeaders());
    }

    private static void assertRebalancedNothing(LeaderRebalance rebalance) {
        assertEquals(0L, rebalance.transfers());
        assertArrayEquals(new long[0], rebalance.unreachable());
    }
}
