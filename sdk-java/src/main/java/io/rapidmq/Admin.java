package io.rapidmq;

import io.rapidmq.ffi.AuditPage;
import io.rapidmq.ffi.AuditQuery;
import io.rapidmq.ffi.BindingScope;
import io.rapidmq.ffi.BrokerStatus;
import io.rapidmq.ffi.ClusterStatus;
import io.rapidmq.ffi.DeadLetterPage;
import io.rapidmq.ffi.DeadLetterReplay;
import io.rapidmq.ffi.Identity;
import io.rapidmq.ffi.LeaderRebalance;
import io.rapidmq.ffi.MembershipChange;
import io.rapidmq.ffi.NativeAdmin;
import io.rapidmq.ffi.Quota;
import io.rapidmq.ffi.QueueSettings;
import io.rapidmq.ffi.ReplicaMove;
import io.rapidmq.ffi.RoleBinding;
import io.rapidmq.ffi.RoleInfo;
import io.rapidmq.ffi.SubscriptionInfo;
import io.rapidmq.ffi.TenantInfo;
import io.rapidmq.ffi.TenantQuotas;
import io.rapidmq.ffi.TokenInfo;
import io.rapidmq.ffi.TopicInfo;
import io.rapidmq.ffi.UserInfo;
import java.time.Duration;
import java.util.List;

/**
 * Admin operations: topics, subscriptions (with queue settings and stats), lag, dead letters,
 * broker and cluster status, cluster membership, partition leader rebalance and replica moves, and
 * the caller, users, API tokens, roles and role bindings, tenants and their quotas, and the audit
 * log of a broker with authentication on. Every call blocks; failures are the
 * {@link RapidMQException} subclass of their code. Thread-safe. Closing it is optional: it only
 * releases its native handle now rather than when it is garbage-collected.
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

    /**
     * The cluster as the answering node sees it: {@code mode()} ("cluster", or "single-node"
     * with the other fields empty), {@code nodeId()}, {@code leaderId()} (null without a leader),
     * {@code term()}, {@code membership()}, the metadata group's {@code nodes()},
     * {@code movingPartitions()} (partitions whose replicas are moving, see
     * {@link #rebalanceReplicas(List, boolean)}) and {@code clusterId()} (the cluster's identity,
     * which a node joining it can be given as {@code RAPIDMQ_CLUSTER__ID} so that it refuses
     * other clusters; empty in single-node mode and on a joining node that has not learned it).
     */
    public ClusterStatus clusterStatus() {
        return Native.await(admin::clusterStatus);
    }

    /**
     * Adds node {@code id}, reached by the other nodes at {@code clusterAddr}, to the metadata
     * group: a learner until it caught up, then a voter; blocks until then, up to the request
     * timeout. Fails with {@link InvalidArgumentException} (single-node mode, bad address),
     * {@link UnavailableException} (no leader; the node did not catch up).
     */
    public MembershipChange addNode(long id, String clusterAddr) {
        return Native.await(() -> admin.addNode(id, clusterAddr));
    }

    /**
     * Removes node {@code id} from the metadata group. Fails with {@link NodeNotFoundException}
     * (not a member), {@link InvalidArgumentException} (the last voter, single-node mode),
     * {@link UnavailableException} (no leader).
     */
    public MembershipChange removeNode(long id) {
        return Native.await(() -> admin.removeNode(id));
    }

    /**
     * Hands each partition's leadership back to its preferred replica, on every node, where that
     * replica is caught up and reachable (nodes also do it on their own every {@code
     * cluster.leader_rebalance_interval_ms}). Returns the {@code transfers()} started, each done
     * within about an election timeout, and the {@code unreachable()} nodes that could not be
     * asked; a single-node broker answers 0. Fails with {@link PermissionDeniedException} (not a
     * cluster admin).
     */
    public LeaderRebalance rebalanceLeaders() {
        return Native.await(admin::rebalanceLeaders);
    }

    /**
     * Moves partition replicas so each voting node holds an even share: replicas on nodes that no
     * longer vote, or on the nodes in {@code exclude} (before removing them), go to other voters;
     * then from the nodes holding the most to those holding the fewest; then preferred leaders are
     * spread. Returns the moves started ({@code tenant()}, {@code topic()}, {@code partition()},
     * the replicas before, {@code from()}, and after, {@code to()}); with {@code dryRun}, planned
     * and not started. Each completes once its new replicas caught up;
     * {@code clusterStatus().movingPartitions()} counts those under way. Fails with
     * {@link InvalidArgumentException} (single-node mode; the voters left are fewer than some
     * topic's replication factor), {@link NodeNotFoundException} (an excluded node is not a
     * member), {@link PermissionDeniedException} (not a cluster admin).
     */
    public List<ReplicaMove> rebalanceReplicas(List<Long> exclude, boolean dryRun) {
        long[] ids = exclude.stream().mapToLong(Long::longValue).toArray();
        return Native.await(() -> admin.rebalanceReplicas(ids, dryRun));
    }

    /** Moves partition replicas so each voting node holds an even share, now, excluding none. */
    public List<ReplicaMove> rebalanceReplicas() {
        return rebalanceReplicas(List.of(), false);
    }

    /** The caller as the broker sees it: tenant and user (empty when anonymous). */
    public Identity whoAmI() {
        return Native.await(admin::whoami);
    }

    /**
     * Creates a user in the caller's tenant who logs in with {@code password};
     * {@link UserAlreadyExistsException}, {@link InvalidNameException}.
     */
    public UserInfo createUser(String name, String password) {
        return Native.await(() -> admin.createUser(name, password));
    }

    /** Creates a user for API tokens only (no password). */
    public UserInfo createUser(String name) {
        return createUser(name, null);
    }

    /** Deletes a user and revokes its tokens; {@link UserNotFoundException}. */
    public void deleteUser(String name) {
        Native.await(() -> admin.deleteUser(name));
    }

    /** The users of the caller's tenant, by name. */
    public List<UserInfo> listUsers() {
        return Native.await(admin::listUsers);
    }

    /** Sets a user's password; {@link UserNotFoundException}, {@link InvalidArgumentException} (empty). */
    public void setPassword(String name, String password) {
        Native.await(() -> admin.setPassword(name, password));
    }

    /**
     * Creates an API token for {@code user} ({@code null}: the caller), expiring after {@code ttl}
     * ({@code null}: never). The full token is in the answer only; {@link UserNotFoundException}.
     */
    public CreatedToken createToken(String user, String description, Duration ttl) {
        return new CreatedToken(Native.await(() -> admin.createToken(user, description, ttl)));
    }

    /** Creates an API token for {@code user} that does not expire. */
    public CreatedToken createToken(String user, String description) {
        return createToken(user, description, null);
    }

    /** The tokens (API and session) of the caller's tenant, without secrets. */
    public List<TokenInfo> listTokens() {
        return listTokens(null);
    }

    /** The tokens of {@code user} ({@code null}: everyone in the tenant), without secrets. */
    public List<TokenInfo> listTokens(String user) {
        return Native.await(() -> admin.listTokens(user));
    }

    /** Revokes one token (API or session) by id, at once; {@link TokenNotFoundException}. */
    public void revokeToken(String id) {
        revokeTokens(List.of(id));
    }

    /** Revokes tokens by id, at once; {@link TokenNotFoundException}. */
    public void revokeTokens(List<String> ids) {
        Native.await(() -> admin.revokeTokens(List.copyOf(ids)));
    }

    /**
     * Creates a custom role in the caller's tenant from permissions in their text form,
     * {@code allow|deny ACTIONS RESOURCE}: {@code "allow publish,describe topic:orders.*"},
     * {@code "deny consume topic:audit.*"}, {@code "allow describe tenant"} (docs/security.md).
     * {@link RoleAlreadyExistsException} (the built-in names are taken), {@link InvalidNameException},
     * {@link InvalidArgumentException} (a permission that does not parse).
     */
    public RoleInfo createRole(String name, List<String> permissions) {
        return Native.await(() -> admin.createRole(name, List.copyOf(permissions)));
    }

    /** Deletes a custom role and its bindings; {@link RoleNotFoundException}, {@link InvalidArgumentException} (built-in). */
    public void deleteRole(String name) {
        Native.await(() -> admin.deleteRole(name));
    }

    /** The built-in ({@code admin}, {@code producer}, {@code consumer}, {@code viewer}) and custom roles of the caller's tenant. */
    public List<RoleInfo> listRoles() {
        return Native.await(admin::listRoles);
    }

    /**
     * Binds {@code role} to {@code user} in the tenant or ({@link BindingScope#CLUSTER}, by a
     * cluster admin only) across the broker. Binding twice is not an error;
     * {@link UserNotFoundException}, {@link RoleNotFoundException}.
     */
    public RoleBinding bindRole(String user, String role, BindingScope scope) {
        return Native.await(() -> admin.bindRole(user, role, scope));
    }

    /** Binds {@code role} to {@code user} in the caller's tenant. */
    public RoleBinding bindRole(String user, String role) {
        return bindRole(user, role, BindingScope.TENANT);
    }

    /** Removes a binding; {@link RoleNotFoundException} (no such binding), {@link UserNotFoundException}. */
    public void unbindRole(String user, String role) {
        Native.await(() -> admin.unbindRole(user, role));
    }

    /** The role bindings of the caller's tenant. */
    public List<RoleBinding> listRoleBindings() {
        return listRoleBindings(null);
    }

    /** The role bindings of {@code user} ({@code null}: everyone in the tenant). */
    public List<RoleBinding> listRoleBindings(String user) {
        return Native.await(() -> admin.listRoleBindings(user));
    }

    /**
     * Creates a tenant (a cluster admin only) with {@code quotas} (build them with
     * {@link TenantQuotasBuilder}; a {@code null} quota takes the broker's default, 0 is
     * unlimited). {@link TenantAlreadyExistsException}, {@link InvalidNameException},
     * {@link PermissionDeniedException}.
     */
    public TenantInfo createTenant(String name, TenantQuotas quotas) {
        return Native.await(() -> admin.createTenant(name, quotas));
    }

    /** Creates a tenant with the broker's default quotas. */
    public TenantInfo createTenant(String name) {
        return createTenant(name, new TenantQuotasBuilder().build());
    }

    /**
     * Deletes an empty tenant (a cluster admin only); {@link TenantNotFoundException},
     * {@link TenantNotEmptyException} (it still has topics or users),
     * {@link InvalidArgumentException} ({@code default}).
     */
    public void deleteTenant(String name) {
        Native.await(() -> admin.deleteTenant(name));
    }

    /** Every tenant, by name (a cluster admin only). */
    public List<TenantInfo> listTenants() {
        return Native.await(admin::listTenants);
    }

    /**
     * A tenant's quotas in effect (every one set; 0: unlimited) and its usage; {@code null}: the
     * caller's tenant. {@link TenantNotFoundException}.
     */
    public TenantInfo describeTenant(String name) {
        return Native.await(() -> admin.describeTenant(name));
    }

    /** The caller's tenant, its quotas in effect and its usage. */
    public TenantInfo describeTenant() {
        return describeTenant(null);
    }

    /**
     * Changes some of a tenant's quotas (a cluster admin only): the non-null ones in
     * {@code quotas} replace, those in {@code reset} go back to the broker's defaults, the rest
     * stay. Returns the quotas now in effect; {@link TenantNotFoundException}.
     */
    public TenantInfo setTenantQuotas(String name, TenantQuotas quotas, List<Quota> reset) {
        return Native.await(() -> admin.setTenantQuotas(name, quotas, List.copyOf(reset)));
    }

    /** Changes some of a tenant's quotas and keeps the others. */
    public TenantInfo setTenantQuotas(String name, TenantQuotas quotas) {
        return setTenantQuotas(name, quotas, List.of());
    }

    /**
     * One page of the audit log, oldest first, filtered by {@code query} (build it with
     * {@link AuditQueryBuilder}): the caller's tenant for a tenant admin, every tenant for a
     * cluster admin. Pass {@code nextPageToken()} on for the next page (it is {@code null} at the
     * end). {@link PermissionDeniedException}, {@link InvalidArgumentException} (a page token the
     * broker did not issue).
     */
    public AuditPage listAuditEvents(AuditQuery query) {
        return Native.await(() -> admin.listAuditEvents(query));
    }

    /** The first page of the whole audit log the caller may read. */
    public AuditPage listAuditEvents() {
        return listAuditEvents(new AuditQueryBuilder().build());
    }

    /** Releases the native handle; later calls on this object fail. */
    @Override
    public void close() {
        admin.close();
    }
}
