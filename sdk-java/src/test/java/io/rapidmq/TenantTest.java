package io.rapidmq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.rapidmq.ffi.AuditEvent;
import io.rapidmq.ffi.AuditPage;
import io.rapidmq.ffi.Identity;
import io.rapidmq.ffi.Quota;
import io.rapidmq.ffi.TenantInfo;
import io.rapidmq.ffi.TenantQuotas;
import io.rapidmq.ffi.TenantUsage;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.extension.TestWatcher;

/**
 * Tenants, their quotas and the audit log through the admin API, against brokers started with
 * {@code --auth} and connected as the bootstrap admin (a cluster admin).
 */
class TenantTest {
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

    /** Starts a broker with {@code --auth} and a bootstrap token; the admin's client. */
    private RapidMQClient adminClient() throws Exception {
        String token = AuthTest.generateToken();
        Broker broker = new Broker(List.of("--auth"), Map.of("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", token));
        brokers.add(broker);
        RapidMQClient client = RapidMQClient.builder().endpoints(broker.url()).token(token).connect();
        clients.add(client);
        return client;
    }

    /** Connects with {@code token}, acting in {@code tenant}. */
    private RapidMQClient connectIn(Broker broker, String token, String tenant) {
        RapidMQClient client = RapidMQClient.builder().endpoints(broker.url()).token(token).tenant(tenant).connect();
        clients.add(client);
        return client;
    }

    @Test
    void aClusterAdminActsInsideATenantWithTheTenantOption() throws Exception {
        String token = AuthTest.generateToken();
        Broker broker = new Broker(List.of("--auth"), Map.of("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", token));
        brokers.add(broker);
        Admin admin = connectIn(broker, token, null).admin();
        admin.createTenant("acme");

        connectIn(broker, token, "acme").admin().createTopic("orders");
        assertEquals(1L, admin.describeTenant("acme").usage().topics());
        assertTrue(admin.listTopics().stream().noneMatch(t -> t.name().equals("orders")),
                "acme's topic is not listed in default");

        assertThrows(TenantNotFoundException.class, () -> connectIn(broker, token, "no-such").admin().listTopics());
        assertThrows(InvalidArgumentException.class, () -> connectIn(broker, token, "a/b"));
    }

    private static void assertAllSet(TenantInfo info) {
        TenantQuotas q = info.quotas();
        Stream.of(q.publishBytesPerSec(), q.publishMsgsPerSec(), q.consumeBytesPerSec(), q.storageBytes(), q.maxTopics(),
                q.maxPartitions(), q.maxConnections())
                .forEach(v -> assertTrue(v != null, "a quota in effect is unset: " + info));
    }

    @Test
    void tenantsAndTheirQuotasAreManagedThroughTheAdminApi() throws Exception {
        RapidMQClient client = adminClient();
        Admin admin = client.admin();
        admin.createTopic(BrokerTest.uniqueTopic(), 3);

        // The broker's defaults, as a tenant created without quotas gets them.
        TenantInfo plain = admin.createTenant("plain");
        assertAllSet(plain);
        TenantQuotas defaults = plain.quotas();

        TenantQuotas quotas = new TenantQuotasBuilder().maxTopics(10).storageBytes(1L << 30).maxConnections(0).build();
        assertNull(quotas.maxPartitions(), "unset stays null, not 0");
        TenantInfo acme = admin.createTenant("acme", quotas);
        assertEquals("acme", acme.name());
        assertNotEquals(0L, acme.createdAtMs());
        assertAllSet(acme);
        assertEquals(10L, acme.quotas().maxTopics());
        assertEquals(1L << 30, acme.quotas().storageBytes());
        assertEquals(0L, acme.quotas().maxConnections(), "0 is unlimited");
        assertEquals(defaults.maxPartitions(), acme.quotas().maxPartitions(), "unset takes the default");

        TenantAlreadyExistsException exists = assertThrows(TenantAlreadyExistsException.class,
                () -> admin.createTenant("acme"));
        assertEquals(6011, exists.code());

        assertEquals(List.of("acme", "default", "plain"), admin.listTenants().stream().map(TenantInfo::name).toList());

        TenantInfo described = admin.describeTenant("acme");
        assertEquals(acme.quotas(), described.quotas());
        assertEquals(new TenantUsage(0L, 0L, 0L, 0L, 0L), described.usage());
        TenantInfo home = admin.describeTenant();
        assertEquals("default", home.name());
        assertEquals(0L, home.createdAtMs());
        assertEquals(1L, home.usage().topics(), home.toString());
        assertEquals(3L, home.usage().partitions(), home.toString());

        // One quota set (to 0, unlimited, which is not "unset"), one reset to the default.
        TenantInfo changed = admin.setTenantQuotas("acme", new TenantQuotasBuilder().maxTopics(0).build(),
                List.of(Quota.STORAGE_BYTES));
        assertEquals(0L, changed.quotas().maxTopics());
        assertEquals(defaults.storageBytes(), changed.quotas().storageBytes());
        assertEquals(0L, changed.quotas().maxConnections(), "kept");
        assertEquals(changed.quotas(), admin.describeTenant("acme").quotas());

        admin.deleteTenant("acme");
        TenantNotFoundException gone = assertThrows(TenantNotFoundException.class, () -> admin.describeTenant("acme"));
        assertEquals(6003, gone.code());
        assertThrows(TenantNotFoundException.class, () -> admin.deleteTenant("acme"));
        assertThrows(TenantNotFoundException.class,
                () -> admin.setTenantQuotas("acme", new TenantQuotasBuilder().maxTopics(1).build()));
        assertThrows(PermissionDeniedException.class, () -> admin.deleteTenant("default"));
    }

    @Test
    void adminChangesAreAuditedFilteredAndPaged() throws Exception {
        Admin admin = adminClient().admin();
        Identity me = admin.whoAmI();
        List<String> permissions = List.of("allow describe topic:orders.*");
        admin.createRole("orders-writer", permissions);
        admin.createRole("orders-reader", permissions);

        AuditPage page = admin.listAuditEvents(new AuditQueryBuilder().actionPrefix("role.").build());
        assertEquals(2, page.events().size(), page.toString());
        assertNull(page.nextPageToken());
        AuditEvent event = page.events().get(0);
        assertEquals("role.create", event.action());
        assertEquals(me.tenant() + "/" + me.user(), event.actor());
        assertEquals("default", event.tenant());
        assertEquals("role:default/orders-writer", event.target());
        assertEquals("ok", event.outcome());
        assertEquals("grpc", event.transport());
        assertEquals(1L, event.count());
        assertEquals("role:default/orders-reader", page.events().get(1).target(), "oldest first");

        AuditPage other = admin.listAuditEvents(new AuditQueryBuilder().actionPrefix("role.").actor("default/nobody").build());
        assertEquals(List.of(), other.events());
        AuditPage later = admin.listAuditEvents(new AuditQueryBuilder().actionPrefix("role.")
                .since(Instant.ofEpochMilli(event.tsMs()).plus(Duration.ofDays(1))).build());
        assertEquals(List.of(), later.events());
        AuditPage first = admin.listAuditEvents(new AuditQueryBuilder().actionPrefix("role.create").limit(1).build());
        assertEquals(List.of(event), first.events());
        AuditPage next = admin.listAuditEvents(
                new AuditQueryBuilder().actionPrefix("role.create").limit(1).pageToken(first.nextPageToken()).build());
        assertEquals(List.of(page.events().get(1)), next.events());
    }

    @Test
    void tenantChangesAreAuditedWithTheirActor() throws Exception {
        Admin admin = adminClient().admin();
        Identity me = admin.whoAmI();
        admin.createTenant("acme", new TenantQuotasBuilder().maxTopics(10).build());
        admin.deleteTenant("acme");
        AuditPage page = admin.listAuditEvents(new AuditQueryBuilder().actionPrefix("tenant.").build());
        String actor = me.tenant() + "/" + me.user();
        assertEquals(List.of(List.of("tenant.create", actor, "tenant:acme", "ok"),
                List.of("tenant.delete", actor, "tenant:acme", "ok")),
                page.events().stream().map(e -> List.of(e.action(), e.actor(), e.target(), e.outcome())).toList());
    }
}
