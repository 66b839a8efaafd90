package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.TokenInfo;
import io.rapidmq.ffi.UserInfo;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;
import org.junit.jupiter.api.function.Executable;

/**
 * C23 auth-and-acls (docs/sdk-conformance.md) against brokers started with {@code --auth}: an API
 * token authenticates every call and a wrong one fails at connect; a user and password log in and
 * the session is renewed before it expires; users and tokens are managed through the admin API and
 * a revoked token is refused. Tokens come from {@code rapidmq token generate}, as in the other
 * SDKs' suites.
 */
class AuthTest {
    private static final String PASSWORD = "correct horse";

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

    /** A fresh {@code rmq_} token from {@code rapidmq token generate}. */
    private static String generateToken() throws Exception {
        Process p = new ProcessBuilder(Broker.binary(), "token", "generate").start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertEquals(0, p.waitFor(), out);
        return out.trim();
    }

    private Broker start(Map<String, String> env) {
        Broker b = new Broker(List.of("--auth"), env);
        brokers.add(b);
        return b;
    }

    private RapidMQClient withToken(Broker broker, String token) {
        RapidMQClient client = RapidMQClient.builder().endpoints(broker.url()).token(token).connect();
        clients.add(client);
        return client;
    }

    private RapidMQClient withPassword(Broker broker, String user, String password) {
        RapidMQClient client = RapidMQClient.builder().endpoints(broker.url()).userPassword(user, password).connect();
        clients.add(client);
        return client;
    }

    private static void assertUnauthenticated(Executable call) {
        RapidMQException err = assertThrows(RapidMQException.class, call);
        assertInstanceOf(UnauthenticatedException.class, err, err.toString());
        assertEquals(6001, err.code());
        assertFalse(err.isRetriable());
    }

    @Test
    void anApiTokenAuthenticatesEveryCallAndAWrongOneFailsAtConnect() throws Exception {
        // C23 auth-and-acls: an API token on publish, consume and admin calls
        String token = generateToken();
        Broker broker = start(Map.of("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", token));
        RapidMQClient client = withToken(broker, token);
        Admin admin = client.admin();
        assertEquals("default", admin.whoAmI().tenant());
        assertEquals("admin", admin.whoAmI().user());
        String topic = BrokerTest.uniqueTopic();
        admin.createTopic(topic, 1);
        try (Producer producer = client.producer(topic)) {
            producer.send(Message.of("hello"));
        }
        ConsumerConfig config = ConsumerConfig.builder(topic, "auth").start(StartPosition.earliest()).build();
        try (Consumer consumer = client.consumer(config)) {
            List<ReceivedMessage> messages = consumer.poll(1, Duration.ofSeconds(10));
            assertEquals(1, messages.size());
            assertEquals("hello", BrokerTest.text(messages.get(0).value()));
        }
        assertEquals(1, admin.listTopics().size());

        for (String wrong : List.of(generateToken(), "not-a-token")) {
            assertUnauthenticated(() -> withToken(broker, wrong));
        }
        // Without credentials the connection opens, and the first call is refused.
        RapidMQClient anonymous = RapidMQClient.connect(broker.url());
        clients.add(anonymous);
        assertUnauthenticated(() -> anonymous.admin().listTopics());
    }

    @Test
    void aUserAndPasswordLogInAndTheSessionIsRenewedBeforeItExpires() throws Exception {
        // C23: a login at connect, renewed at 80 % of a 1.5 s session
        Broker broker = start(Map.of("RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD", PASSWORD,
                "RAPIDMQ_AUTH__SESSION_TTL_MS", "1500"));
        Admin admin = withPassword(broker, "admin", PASSWORD).admin();
        assertEquals("admin", admin.whoAmI().user());
        List<TokenInfo> sessions = admin.listTokens("admin").stream().filter(t -> t.kind().equals("session")).toList();
        assertEquals(1, sessions.size(), sessions.toString());
        TokenInfo first = sessions.get(0);
        assertNotNull(first.expiresAtMs());
        BrokerTest.eventually("the session is renewed and the first one has expired", () -> {
            boolean renewed = admin.listTokens("admin").stream()
                    .anyMatch(t -> t.kind().equals("session") && !t.id().equals(first.id()));
            return renewed && System.currentTimeMillis() > first.expiresAtMs();
        });
        admin.listTopics(); // on the renewed session

        assertUnauthenticated(() -> withPassword(broker, "admin", "wrong horse"));
        assertUnauthenticated(() -> withPassword(broker, "mallory", PASSWORD));
    }

    @Test
    void usersAndTokensAreManagedAndARevokedTokenIsRefused() throws Exception {
        // C23: users and API tokens through the admin API; revoked, changed and deleted are refused
        String token = generateToken();
        Broker broker = start(Map.of("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", token));
        Admin admin = withToken(broker, token).admin();
        UserInfo alice = admin.createUser("alice", "s3cret");
        assertEquals("alice", alice.name());
        assertTrue(alice.hasPassword());
        assertFalse(admin.createUser("ci-bot").hasPassword());
        assertEquals(List.of("admin", "alice", "ci-bot"), admin.listUsers().stream().map(UserInfo::name).toList());
        assertThrows(UserAlreadyExistsException.class, () -> admin.createUser("alice", "again"));

        CreatedToken created = admin.createToken("ci-bot", "deploys", Duration.ofHours(1));
        assertTrue(created.token().startsWith("rmq_"));
        assertEquals("ci-bot", created.info().user());
        assertEquals("api", created.info().kind());
        assertEquals("deploys", created.info().description());
        assertNotNull(created.info().expiresAtMs());
        String secret = created.token().substring(created.token().lastIndexOf('_') + 1);
        assertFalse(created.toString().contains(secret), created.toString());
        assertEquals(List.of(created.info().id()), admin.listTokens("ci-bot").stream().map(TokenInfo::id).toList());

        RapidMQClient bot = withToken(broker, created.token());
        assertEquals("ci-bot", bot.admin().whoAmI().user());
        admin.revokeToken(created.info().id());
        assertUnauthenticated(() -> bot.admin().listTopics());
        assertUnauthenticated(() -> withToken(broker, created.token()));
        assertThrows(TokenNotFoundException.class, () -> admin.revokeTokens(List.of(created.info().id())));

        admin.setPassword("alice", "n3w");
        assertUnauthenticated(() -> withPassword(broker, "alice", "s3cret"));
        assertEquals("alice", withPassword(broker, "alice", "n3w").admin().whoAmI().user());
        admin.deleteUser("alice");
        assertThrows(UserNotFoundException.class, () -> admin.deleteUser("alice"));
        assertUnauthenticated(() -> withPassword(broker, "alice", "n3w"));
    }

    @Test
    void aRevokedTokenEndsAnOpenConsumer() throws Exception {
        // C23: revoking the token of a client with an open consumer ends its stream
        String token = generateToken();
        Broker broker = start(Map.of("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", token));
        Admin admin = withToken(broker, token).admin();
        String topic = BrokerTest.uniqueTopic();
        admin.createTopic(topic, 1);
        CreatedToken created = admin.createToken(null, "consumer");
        RapidMQClient bot = withToken(broker, created.token());
        ConsumerConfig config = ConsumerConfig.builder(topic, "auth").start(StartPosition.earliest()).build();
        try (Consumer consumer = bot.consumer(config)) {
            assertEquals(0, consumer.poll(1, Duration.ofMillis(100)).size());
            admin.revokeToken(created.info().id());
            long deadline = System.nanoTime() + Duration.ofSeconds(15).toNanos();
            assertUnauthenticated(() -> {
                while (System.nanoTime() < deadline) {
                    consumer.poll(1, Duration.ofMillis(500));
                }
            });
        } catch (RapidMQException closing) {
            // closing a consumer whose stream ended may report the same error again
            assertInstanceOf(UnauthenticatedException.class, closing);
        }
    }
}
