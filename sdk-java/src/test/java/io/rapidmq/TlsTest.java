package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.ReceivedMessage;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.api.io.TempDir;

/**
 * C17 tls (docs/sdk-conformance.md) against real brokers: a custom CA given as a file or as PEM,
 * a wrong CA, an {@code https://} endpoint at a plaintext broker, and mutual TLS. Certificates
 * come from {@code rapidmq tls dev-certs}, as in the other SDKs' suites.
 */
class TlsTest {
    @TempDir
    Path tmp;

    private final List<Broker> brokers = new ArrayList<>();
    private final StringBuilder logs = new StringBuilder();

    @RegisterExtension
    final TestWatcher printLogOnFailure = new TestWatcher() {
        @Override
        public void testFailed(ExtensionContext context, Throwable cause) {
            System.out.println("---- broker logs of " + context.getDisplayName() + " ----\n" + logs);
        }
    };

    @AfterEach
    void stopBrokers() {
        for (Broker b : brokers) {
            logs.append(b.shutdown());
        }
    }

    /** A fresh development CA with a server certificate for localhost and a client certificate. */
    private record Certs(Path dir) {
        String file(String name) {
            return dir.resolve(name).toString();
        }

        String read(String name) {
            try {
                return Files.readString(dir.resolve(name), StandardCharsets.UTF_8);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }

    private Certs devCerts(String name) throws Exception {
        Path dir = tmp.resolve(name);
        Process p = new ProcessBuilder(Broker.binary(), "tls", "dev-certs", "--client", "alice", "--out",
                dir.toString()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        return new Certs(dir);
    }

    private Broker start(List<String> args) {
        Broker b = new Broker(args);
        brokers.add(b);
        return b;
    }

    /** A TLS broker with the server pair; {@code clientAuth} (null: none) asks for client certificates. */
    private Broker tlsBroker(Certs certs, String clientAuth) {
        List<String> args = new ArrayList<>(List.of("--tls-cert-file", certs.file("server.pem"), "--tls-key-file",
                certs.file("server.key")));
        if (clientAuth != null) {
            args.addAll(List.of("--tls-client-ca-file", certs.file("ca.pem"), "--tls-client-auth", clientAuth));
        }
        return start(args);
    }

    private static TlsOptions caFile(Certs certs) {
        return new TlsOptions(certs.file("ca.pem"), null, null, null, null, null, null);
    }

    private static RapidMQClient connect(Broker broker, TlsOptions tls) {
        return RapidMQClient.builder().endpoints(broker.httpsUrl()).tls(tls).connect();
    }

    /** Publishes one message on a new topic and consumes it back. */
    private static void roundTrip(RapidMQClient client, String value) {
        String topic = BrokerTest.uniqueTopic();
        client.admin().createTopic(topic, 1);
        try (Producer producer = client.producer(topic)) {
            producer.send(Message.of(value));
        }
        ConsumerConfig config = ConsumerConfig.builder(topic, "tls").start(StartPosition.earliest()).build();
        try (Consumer consumer = client.consumer(config)) {
            List<ReceivedMessage> messages = consumer.poll(1, Duration.ofSeconds(10));
            assertEquals(1, messages.size());
            assertEquals(value, BrokerTest.text(messages.get(0).value()));
        }
    }

    private static void assertHandshakeFailed(RapidMQException err, String hint) {
        assertFalse(err.isRetriable(), err.toString());
        assertInstanceOf(TlsHandshakeFailedException.class, err);
        assertEquals(6010, err.code());
        assertEquals("TLS_HANDSHAKE_FAILED", err.codeName());
        assertTrue(err.getMessage().contains("TLS handshake"), err.getMessage());
        assertTrue(err.getMessage().contains(hint), err.getMessage());
    }

    @Test
    void c17ACustomCaGivenAsAFileOrAsPemIsTrusted() throws Exception {
        Certs certs = devCerts("certs");
        Broker broker = tlsBroker(certs, null);
        try (RapidMQClient client = connect(broker, caFile(certs))) {
            roundTrip(client, "over TLS, CA file");
        }
        TlsOptions pem = new TlsOptions(null, certs.read("ca.pem"), null, null, null, null, "localhost");
        try (RapidMQClient client = connect(broker, pem)) {
            roundTrip(client, "over TLS, CA PEM");
        }
    }

    @Test
    void c17AWrongCaFailsClearlyAndIsNotRetriable() throws Exception {
        Certs certs = devCerts("certs");
        Certs other = devCerts("other");
        Broker broker = tlsBroker(certs, null);
        RapidMQException err = assertThrows(RapidMQException.class, () -> connect(broker, caFile(other)));
        assertHandshakeFailed(err, "trusted CA");
    }

    @Test
    void c17HttpsAtAPlaintextBrokerFailsClearly() throws Exception {
        Certs certs = devCerts("certs");
        Broker broker = start(List.of());
        RapidMQException err = assertThrows(RapidMQException.class, () -> connect(broker, caFile(certs)));
        assertHandshakeFailed(err, "did not answer with TLS");
    }

    @Test
    void c17MutualTlsPresentsTheClientCertificate() throws Exception {
        Certs certs = devCerts("certs");
        Broker broker = tlsBroker(certs, "required");
        TlsOptions mutual = new TlsOptions(certs.file("ca.pem"), null, certs.file("client.pem"), null, null,
                certs.read("client.key"), null);
        try (RapidMQClient client = connect(broker, mutual)) {
            roundTrip(client, "over mutual TLS");
        }
        // Without a certificate the broker refuses the handshake. With TLS 1.3 the client learns
        // that only after its side of the handshake, so the connect or the first call fails.
        assertThrows(RapidMQException.class, () -> {
            try (RapidMQClient client = connect(broker, caFile(certs))) {
                client.admin().listTopics();
            }
        });
    }
}
