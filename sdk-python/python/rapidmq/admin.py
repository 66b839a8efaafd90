"""The synchronous admin API (``Client.admin()``): topics, subscriptions, lag, dead letters,
broker status, users, tokens, roles, tenants and the audit log."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

from . import _native
from .audit import AuditQuery, _audit_filters
from .config import StartPosition, StartPositionLike
from ._native import (
    AuditPage,
    BrokerStatus,
    ClusterStatus,
    CreatedToken,
    DeadLetterPage,
    DeadLetterReplay,
    Identity,
    LeaderRebalance,
    MembershipChange,
    ReplicaMove,
    RoleBinding,
    RoleInfo,
    SubscriptionInfo,
    TenantInfo,
    TenantQuotas,
    TokenInfo,
    TopicInfo,
    UserInfo,
)


class Admin:
    """Topics, subscriptions, lag, dead letters and broker status; the caller, users, API
    tokens, roles, tenants and their quotas, and the audit log of a broker with authentication
    on."""

    def __init__(self, native: _native.Admin) -> None:
        self._native = native

    def create_topic(
        self,
        name: str,
        partitions: int = 0,
        *,
        retention_ms: Optional[int] = None,
        retention_bytes: Optional[int] = None,
        retention_messages: Optional[int] = None,
        max_message_bytes: Optional[int] = None,
        storage: str = "default",
        durability: str = "unspecified",
        dedup_window_ms: Optional[int] = None,
        replication_factor: Optional[int] = None,
    ) -> TopicInfo:
        """Creates a topic; 0/None settings take the broker's defaults. ``storage`` is
        ``"default"``, ``"disk"`` or ``"memory"``; ``durability`` ``"unspecified"``, ``"fsync"``,
        ``"buffered"`` or ``"memory"``. ``replication_factor`` is the copies of each partition
        in cluster mode (``None``: ``min(3, voting nodes)``); a single-node broker accepts 1 only.

        Raises: TopicAlreadyExistsError, InvalidNameError, InvalidPartitionCountError,
        InvalidTopicConfigError.
        """
        return self._native.create_topic(
            name,
            partitions,
            retention_ms,
            retention_bytes,
            retention_messages,
            max_message_bytes,
            storage,
            durability,
            dedup_window_ms,
            replication_factor,
        )

    def list_topics(self) -> List[TopicInfo]:
        """Every topic."""
        return self._native.list_topics()

    def describe_topic(self, name: str) -> TopicInfo:
        """One topic with its partitions. Raises TopicNotFoundError."""
        return self._native.describe_topic(name)

    def alter_topic(
        self,
        name: str,
        *,
        retention_ms: Optional[int] = None,
        retention_bytes: Optional[int] = None,
        retention_messages: Optional[int] = None,
        max_message_bytes: Optional[int] = None,
        durability: str = "unspecified",
        dedup_window_ms: Optional[int] = None,
    ) -> TopicInfo:
        """Changes a topic's retention, max message size, durability or dedup window and returns
        the topic as it is now; ``None`` settings (and ``"unspecified"``) keep their value.

        Raises: TopicNotFoundError, InvalidTopicConfigError.
        """
        return self._native.alter_topic(
            name,
            retention_ms,
            retention_bytes,
            retention_messages,
            max_message_bytes,
            durability,
            dedup_window_ms,
        )

    def delete_topic(self, name: str) -> None:
        """Deletes a topic and its subscriptions. Raises TopicNotFoundError."""
        self._native.delete_topic(name)

    def create_subscription(
        self, topic: str, name: str, start: StartPositionLike = StartPosition.LATEST
    ) -> SubscriptionInfo:
        """Creates a stream subscription. Raises TopicNotFoundError,
        SubscriptionAlreadyExistsError, InvalidNameError."""
        return self._native.create_subscription(topic, name, StartPosition.of(start)._native())

    def create_queue_subscription(
        self,
        topic: str,
        name: str,
        start: StartPositionLike = StartPosition.LATEST,
        *,
        ack_deadline: Optional[float] = None,
        max_deliveries: Optional[int] = None,
        dead_letter_topic: Optional[str] = None,
    ) -> SubscriptionInfo:
        """Creates a queue-mode subscription; ``None`` settings take the broker defaults
        (ack deadline 30 s, 5 deliveries, ``<topic>.dlq``)."""
        return self._native.create_queue_subscription(
            topic,
            name,
            StartPosition.of(start)._native(),
            ack_deadline,
            max_deliveries,
            dead_letter_topic,
        )

    def list_subscriptions(self, topic: Optional[str] = None) -> List[SubscriptionInfo]:
        """Subscriptions of ``topic``, or of every topic."""
        return self._native.list_subscriptions(topic)

    def describe_subscription(self, topic: str, name: str) -> SubscriptionInfo:
        """One subscription with cursors, members and lag. Raises SubscriptionNotFoundError."""
        return self._native.describe_subscription(topic, name)

    def lag(self, topic: str, name: str) -> int:
        """Messages not yet committed, over all partitions."""
        return self._native.lag(topic, name)

    def seek_subscription(
        self,
        topic: str,
        name: str,
        position: StartPositionLike,
        partition: Optional[int] = None,
    ) -> SubscriptionInfo:
        """Moves the cursor of one partition (or all). Raises SubscriptionNotFoundError,
        PartitionNotFoundError, OffsetOutOfRangeError."""
        return self._native.seek_subscription(
            topic, name, StartPosition.of(position)._native(), partition
        )

    def delete_subscription(self, topic: str, name: str) -> None:
        """Deletes a subscription. Raises SubscriptionNotFoundError."""
        self._native.delete_subscription(topic, name)

    def list_dead_letters(
        self, dead_letter_topic: str, max: int = 0, page_token: Optional[str] = None
    ) -> DeadLetterPage:
        """One page of the dead letters not yet replayed: at most ``max`` (0: the broker
        default, 100; at most 1000), from the start or from ``page_token``, the
        ``next_page_token`` of the previous page. Follow the token until it is ``None``; a page
        can be shorter than ``max``.

        >>> token = None
        >>> while True:
        ...     page = admin.list_dead_letters("orders.dlq", 1000, token)
        ...     handle(page.dead_letters)
        ...     token = page.next_page_token
        ...     if token is None:
        ...         break

        Raises TopicNotFoundError; InvalidArgumentError for ``max`` above 1000 or a token the
        broker did not issue for this topic."""
        return self._native.list_dead_letters(dead_letter_topic, max, page_token)

    def replay_dead_letters(
        self, dead_letter_topic: str, max: Optional[int] = None
    ) -> DeadLetterReplay:
        """Publishes up to ``max`` dead letters (``None``: the broker default, 1000; at most
        10000) back to their topics. Returns how many it published and how many are still
        ``remaining``: call again until that is 0. Raises TopicNotFoundError,
        InvalidArgumentError."""
        return self._native.replay_dead_letters(dead_letter_topic, max)

    def status(self) -> BrokerStatus:
        """Broker version, uptime and counts."""
        return self._native.status()

    def cluster_status(self) -> ClusterStatus:
        """The cluster as the answering node sees it: ``mode`` (``"cluster"``, or
        ``"single-node"`` with the other fields empty), ``node_id``, ``leader_id``, ``term``,
        ``last_applied``, ``membership``, the ``nodes`` of the metadata group,
        ``moving_partitions`` (partitions whose replicas are moving, see
        :meth:`rebalance_replicas`) and ``cluster_id`` (the cluster's identity, which a node
        joining it can be given as ``RAPIDMQ_CLUSTER__ID`` so that it refuses other clusters;
        empty in single-node mode and on a joining node that has not learned it yet)."""
        return self._native.cluster_status()

    def add_node(self, id: int, cluster_addr: str) -> MembershipChange:
        """Adds node ``id``, reached by the other nodes at ``cluster_addr``, to the metadata
        group: a learner until it caught up, then a voter; blocks until then, up to the request
        timeout. Returns the ``voters`` afterwards and a ``note``. Raises InvalidArgumentError
        (single-node mode, bad address), UnavailableError (no leader; not caught up)."""
        return self._native.add_node(id, cluster_addr)

    def remove_node(self, id: int) -> MembershipChange:
        """Removes node ``id`` from the metadata group. Raises NodeNotFoundError (not a member),
        InvalidArgumentError (the last voter, single-node mode), UnavailableError (no
        leader)."""
        return self._native.remove_node(id)

    def rebalance_leaders(self) -> LeaderRebalance:
        """Hands each partition's leadership back to its preferred replica, on every node, where
        that replica is caught up and reachable (as nodes do on their own every
        ``cluster.leader_rebalance_interval_ms``). Returns the ``transfers`` started, each done
        within about an election timeout, and the nodes that could not be asked
        (``unreachable``); a single-node broker answers 0. Raises PermissionDeniedError (not a
        cluster admin)."""
        return self._native.rebalance_leaders()

    def rebalance_replicas(
        self, exclude: Sequence[int] = (), dry_run: bool = False
    ) -> List[ReplicaMove]:
        """Moves partition replicas so each voting node holds an even share: replicas on nodes
        that no longer vote, or on the nodes in ``exclude`` (before removing them), go to other
        voters; then from the nodes holding the most to those holding the fewest; then
        preferred leaders are spread. Returns the moves started (``tenant``, ``topic``,
        ``partition``, the replicas before, ``from_``, and after, ``to``); with ``dry_run``,
        planned and not started. Each completes once its new replicas caught up;
        ``cluster_status().moving_partitions`` counts those under way. Raises
        InvalidArgumentError (single-node mode; the voters left are fewer than some topic's
        replication factor), NodeNotFoundError (an excluded node is not a member),
        PermissionDeniedError (not a cluster admin)."""
        return self._native.rebalance_replicas(list(exclude), dry_run)

    def whoami(self) -> Identity:
        """The caller as the broker sees it: ``tenant`` and ``user`` (empty when anonymous)."""
        return self._native.whoami()

    def create_user(self, name: str, password: Optional[str] = None) -> UserInfo:
        """Creates a user in the caller's tenant, with a password, or (``None``) for API tokens
        only. Raises UserAlreadyExistsError, InvalidNameError."""
        return self._native.create_user(name, password)

    def delete_user(self, name: str) -> None:
        """Deletes a user, revokes its tokens and removes its role bindings. Raises
        UserNotFoundError."""
        self._native.delete_user(name)

    def list_users(self) -> List[UserInfo]:
        """The users of the caller's tenant, by name."""
        return self._native.list_users()

    def set_password(self, name: str, password: str) -> None:
        """Sets a user's password. Raises UserNotFoundError; InvalidArgumentError when empty."""
        self._native.set_password(name, password)

    def create_token(
        self, user: Optional[str] = None, description: str = "", ttl: Optional[float] = None
    ) -> CreatedToken:
        """Creates an API token for ``user`` (the caller when ``None``), expiring after ``ttl``
        seconds if set. The full token (``created.token``) is in this answer only; its repr
        hides it. Raises UserNotFoundError."""
        return self._native.create_token(user, description, ttl)

    def list_tokens(self, user: Optional[str] = None) -> List[TokenInfo]:
        """The tokens (API and session) of the caller's tenant, or of one user, without
        secrets."""
        return self._native.list_tokens(user)

    def revoke_token(self, id: str) -> None:
        """Revokes one token (API or session) by id, at once. Raises TokenNotFoundError."""
        self._native.revoke_tokens([id])

    def revoke_tokens(self, ids: Sequence[str]) -> None:
        """Revokes tokens by id, at once. Raises TokenNotFoundError."""
        self._native.revoke_tokens(list(ids))

    def create_role(self, name: str, permissions: Sequence[str]) -> RoleInfo:
        """Creates a custom role in the caller's tenant from permissions in their text form:
        ``"allow publish,describe topic:orders.*"``, ``"deny consume
        subscription:orders.*/audit-*"``, ``"allow describe tenant"``. Raises
        RoleAlreadyExistsError (also for a built-in name), InvalidNameError;
        InvalidArgumentError for a permission that does not parse, before anything is sent."""
        return self._native.create_role(name, list(permissions))

    def delete_role(self, name: str) -> None:
        """Deletes a custom role and its bindings. Raises RoleNotFoundError;
        InvalidArgumentError for a built-in role."""
        self._native.delete_role(name)

    def list_roles(self) -> List[RoleInfo]:
        """The built-in (``admin``, ``consumer``, ``producer``, ``viewer``) and custom roles of
        the caller's tenant, by name, with their permissions as text."""
        return self._native.list_roles()

    def bind_role(self, user: str, role: str, scope: str = "tenant") -> RoleBinding:
        """Binds ``role`` to ``user`` in the caller's tenant, or with ``scope="cluster"``
        across the broker (a cluster admin only). Binding twice is not an error. Raises
        UserNotFoundError, RoleNotFoundError, PermissionDeniedError."""
        return self._native.bind_role(user, role, scope)

    def unbind_role(self, user: str, role: str) -> None:
        """Removes a binding. Raises RoleNotFoundError when ``user`` does not have ``role``,
        UserNotFoundError."""
        self._native.unbind_role(user, role)

    def list_role_bindings(self, user: Optional[str] = None) -> List[RoleBinding]:
        """The role bindings of the caller's tenant, or of one user."""
        return self._native.list_role_bindings(user)

    def create_tenant(self, name: str, quotas: Optional[TenantQuotas] = None) -> TenantInfo:
        """Creates a tenant (a cluster admin only). Quotas left ``None`` take the broker's
        defaults; ``0`` is unlimited: ``create_tenant("acme",
        quotas=TenantQuotas(max_topics=10, storage_bytes=0))``. Raises
        TenantAlreadyExistsError, InvalidNameError, PermissionDeniedError."""
        return self._native.create_tenant(name, quotas)

    def delete_tenant(self, name: str) -> None:
        """Deletes an empty tenant (a cluster admin only). Raises TenantNotFoundError,
        TenantNotEmptyError (it still has topics or users); InvalidArgumentError for
        ``default``."""
        self._native.delete_tenant(name)

    def list_tenants(self) -> List[TenantInfo]:
        """Every tenant, by name, with its quotas in effect and usage (a cluster admin only)."""
        return self._native.list_tenants()

    def describe_tenant(self, name: Optional[str] = None) -> TenantInfo:
        """A tenant's quotas in effect (every one set; ``0``: unlimited) and its usage;
        ``None``: the caller's tenant. Raises TenantNotFoundError."""
        return self._native.describe_tenant(name)

    def set_tenant_quotas(
        self, name: str, quotas: Optional[TenantQuotas] = None, reset: Sequence[str] = ()
    ) -> TenantInfo:
        """Changes some of a tenant's quotas (a cluster admin only): the ones set in ``quotas``
        replace, those named in ``reset`` (``TenantQuotas.NAMES``) go back to the broker's
        defaults, the rest stay. Returns the tenant with the quotas now in effect. Raises
        TenantNotFoundError; InvalidArgumentError for an unknown name in ``reset``."""
        return self._native.set_tenant_quotas(name, quotas, list(reset))

    def list_audit_events(self, query: Optional[AuditQuery] = None, **filters: Any) -> AuditPage:
        """One page of the audit log, oldest first: the caller's tenant for a tenant admin,
        every tenant for a cluster admin. Filter with an :class:`AuditQuery` or its fields as
        keywords (``list_audit_events(action_prefix="tenant.", limit=10)``); pass the page's
        ``next_page_token`` as ``page_token`` for the next one. Raises PermissionDeniedError;
        InvalidArgumentError for a page token the broker did not issue."""
        return self._native.list_audit_events(**_audit_filters(query, filters))
