package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.BindingScope;
import io.rapidmq.ffi.ReceivedMessage;
import io.rapidmq.ffi.RoleBinding;
import io.rapidmq.ffi.RoleInfo;
import io.rapidmq.ffi.TokenInfo;
import io.rapidmq.ffi.UserInfo;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
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
 * a revoked token is refused; roles and bindings are managed through the admin API and a user
 * without a role that allows an operation gets {@code PERMISSION_DENIED}. Tokens come from
 * {@code rapidmq token generate}, as in the other SDKs' suites.
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
    static String generateToken() throws Exception {
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
        // A user may do only what a role bound to it allows (deny by default).
        for (String user : List.of("alice", "ci-bot")) {
            admin.bindRole(user, "viewer");
        }

        CreatedToken created = admin.createToken("ci-bot", "deploys", Duration.ofHours(1));
        assertTrue(created.token().startsWith("rmq_"));
        assertEquals("ci-bot", created.info().user());
        assertEquals("api", created.info().kind());
        assertEquals("deploys", created.info().description());
        assertNotNull(created.info().expiresAtMs());
        // rmq_<id>_<secret>: the id is base32, the secret base64url (it may hold '_').
        String secret = created.token().split("_", 3)[2];
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

    private static void assertPermissionDenied(Executable call, String names) {
        RapidMQException err = assertThrows(RapidMQException.class, call);
        assertInstanceOf(PermissionDeniedException.class, err, err.toString());
        assertEquals(6002, err.code());
        assertFalse(err.isRetriable());
        assertTrue(err.detail().contains(names), err.toString());
    }

    /** Permissions in their text form with each one's actions sorted, whatever order the broker lists them in. */
    private static List<String> sortedActions(List<String> permissions) {
        return permissions.stream().map(p -> {
            String[] words = p.split(" ");
            if (words.length == 3) {
                words[1] = String.join(",", Stream.of(words[1].split(",")).sorted().toList());
            }
            return String.join(" ", words);
        }).toList();
    }

    /** Starts a broker with {@code --auth} and a bootstrap token; the admin's client. */
    private RapidMQClient adminClient() throws Exception {
        String token = generateToken();
        Broker broker = start(Map.of("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", token));
        return withToken(broker, token);
    }

    @Test
    void aConsumerRoleConsumesButMayNotPublish() throws Exception {
        // C23: a user bound to the built-in consumer role consumes but may not publish
        RapidMQClient client = adminClient();
        Broker broker = brokers.get(0);
        Admin admin = client.admin();
        String topic = BrokerTest.uniqueTopic();
        admin.createTopic(topic, 1);
        try (Producer producer = client.producer(topic)) {
            producer.send(Message.of("from admin"));
        }
        admin.createUser("reader");
        assertEquals(new RoleBinding("default", "reader", "consumer", BindingScope.TENANT),
                admin.bindRole("reader", "consumer"));
        RapidMQClient reader = withToken(broker, admin.createToken("reader", "C23").token());

        assertPermissionDenied(() -> {
            try (Producer producer = reader.producer(topic)) {
                producer.send(Message.of("from reader"));
            }
        }, topic);

        ConsumerConfig config = ConsumerConfig.builder(topic, "reader").start(StartPosition.earliest()).build();
        try (Consumer consumer = reader.consumer(config)) {
            List<ReceivedMessage> messages = consumer.poll(1, Duration.ofSeconds(10));
            assertEquals(1, messages.size());
            assertEquals("from admin", BrokerTest.text(messages.get(0).value()));
        }

        List<RoleInfo> roles = admin.listRoles();
        assertEquals(List.of("admin", "consumer", "producer", "viewer"), roles.stream().map(RoleInfo::name).sorted().toList());
        assertTrue(roles.stream().allMatch(RoleInfo::builtin), roles.toString());
        RoleInfo consumer = roles.stream().filter(r -> r.name().equals("consumer")).findFirst().orElseThrow();
        assertEquals(sortedActions(List.of("allow consume,describe topic:*", "allow consume,describe,create subscription:*")),
                sortedActions(consumer.permissions()));
    }

    @Test
    void rolesAndBindingsAreManagedThroughTheAdminApi() throws Exception {
        // C23: custom roles and bindings with their error codes; deleting a role removes its bindings
        Admin admin = adminClient().admin();
        List<String> permissions = List.of("allow publish,describe topic:orders.*", "deny publish topic:orders.audit");
        assertEquals(new RoleInfo("orders-writer", false, permissions), admin.createRole("orders-writer", permissions));
        for (String taken : List.of("orders-writer", "admin")) {
            RoleAlreadyExistsException err = assertThrows(RoleAlreadyExistsException.class,
                    () -> admin.createRole(taken, permissions));
            assertEquals(6008, err.code());
        }
        assertThrows(InvalidArgumentException.class, () -> admin.createRole("bad", List.of("allow fly topic:*")));

        admin.createUser("bob");
        RoleBinding writer = new RoleBinding("default", "bob", "orders-writer", BindingScope.TENANT);
        assertEquals(writer, admin.bindRole("bob", "orders-writer", BindingScope.TENANT));
        assertEquals(writer, admin.bindRole("bob", "orders-writer"), "binding twice is not an error");
        RoleNotFoundException unknown = assertThrows(RoleNotFoundException.class,
                () -> admin.bindRole("bob", "no-such-role"));
        assertEquals(6007, unknown.code());
        RoleBinding viewer = admin.bindRole("bob", "viewer");
        List<RoleBinding> bobs = new ArrayList<>(admin.listRoleBindings("bob"));
        bobs.sort(Comparator.comparing(RoleBinding::role));
        assertEquals(List.of(writer, viewer), bobs);
        List<RoleBinding> all = admin.listRoleBindings();
        assertEquals(3, all.size(), all.toString());
        assertTrue(all.contains(new RoleBinding("default", "admin", "admin", BindingScope.CLUSTER)), all.toString());

        admin.unbindRole("bob", "viewer");
        assertThrows(RoleNotFoundException.class, () -> admin.unbindRole("bob", "viewer"));
        admin.deleteRole("orders-writer");
        assertEquals(List.of(), admin.listRoleBindings("bob"));
        assertThrows(RoleNotFoundException.class, () -> admin.deleteRole("orders-writer"));
        assertThrows(InvalidArgumentException.class, () -> admin.deleteRole("consumer"));
    }

    @Test
    void aViewerMayNotGrantItselfARole() throws Exception {
        // C23: role administration needs admin on the tenant; a viewer can still ask who it is
        RapidMQClient client = adminClient();
        Admin admin = client.admin();
        admin.createUser("auditor");
        admin.bindRole("auditor", "viewer");
        Admin auditor = withToken(brokers.get(0), admin.createToken("auditor", "C23").token()).admin();
        assertEquals("auditor", auditor.whoAmI().user());
        assertPermissionDenied(() -> auditor.createRole("everything", List.of("allow all topic:*")), "auditor");
        assertPermissionDenied(() -> auditor.bindRole("auditor", "admin"), "auditor");
        assertEquals(List.of("viewer"), admin.listRoleBindings("auditor").stream().map(RoleBinding::role).toList());
    }
}
