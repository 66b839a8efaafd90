//! The admin API: topics, subscriptions (with lag and queue stats), dead letters, broker status,
//! and the users and API tokens of a broker with authentication on.
//!
//! Reads (list, describe, status) are retried on retriable failures; writes (create, delete,
//! seek) are sent once, since a retry after a lost response could report `ALREADY_EXISTS` or
//! `NOT_FOUND` for an operation that in fact succeeded.

use rapidmq_proto::v1;

use crate::client::Client;
use crate::convert;
use crate::error::{Error, Result};
use crate::roles::{BindingScope, Permission, RoleBinding, RoleInfo};
use crate::tenants::{AuditEvent, AuditPage, AuditQuery, TenantInfo, TenantQuotas};
use crate::types::{
    BrokerStatus, ClusterStatus, CreatedToken, DeadLetterPage, DeadLetterReplay, LeaderRebalance,
    MembershipChange, QueueSettings, ReplicaMove, StartPosition, SubscriptionInfo,
    SubscriptionMode, TokenInfo, TopicConfig, TopicInfo, UserInfo,
};

/// Admin operations of a [`Client`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

macro_rules! admin_call {
    ($self:ident, $method:ident, $request:expr, once) => {{
        let client = $self.client.clone();
        let request = $request;
        $self
            .client
            .runtime()
            .run(async move {
                client
                    .unary(move |ch| {
                        let request = request.clone();
                        async move { crate::client::admin_client(ch).$method(request).await }
                    })
                    .await
            })
            .await?
    }};
    ($self:ident, $method:ident, $request:expr, retried) => {{
        let client = $self.client.clone();
        let request = $request;
        $self
            .client
            .runtime()
            .run(async move {
                client
                    .unary_with_retries(move |ch| {
                        let request = request.clone();
                        async move { crate::client::admin_client(ch).$method(request).await }
                    })
                    .await
            })
            .await?
    }};
}

impl Admin {
    pub(crate) fn new(client: Client) -> Admin {
        Admin { client }
    }

    /// Creates a topic. Errors: `TOPIC_ALREADY_EXISTS`, `INVALID_NAME`,
    /// `INVALID_PARTITION_COUNT`, `INVALID_TOPIC_CONFIG`.
    pub async fn create_topic(
        &self,
        name: impl Into<String>,
        config: TopicConfig,
    ) -> Result<TopicInfo> {
        let request = v1::CreateTopicRequest {
            name: name.into(),
            config: Some(config.into()),
        };
        admin_call!(self, create_topic, request, once).map(TopicInfo::from)
    }

    /// Every topic of the tenant.
    pub async fn list_topics(&self) -> Result<Vec<TopicInfo>> {
        let response = admin_call!(self, list_topics, v1::ListTopicsRequest {}, retried)?;
        Ok(response.topics.into_iter().map(TopicInfo::from).collect())
    }

    /// One topic with its partitions. Errors: `TOPIC_NOT_FOUND`.
    pub async fn describe_topic(&self, name: impl Into<String>) -> Result<TopicInfo> {
        let request = v1::DescribeTopicRequest { name: name.into() };
        admin_call!(self, describe_topic, request, retried).map(TopicInfo::from)
    }

    /// Changes a topic's retention, max message size, durability or dedup window; fields left
    /// `None` (and `partitions: 0`, `Storage::Default`, `Durability::Default`) keep their value.
    /// Errors: `TOPIC_NOT_FOUND`, `INVALID_PARTITION_COUNT` (the count cannot change),
    /// `INVALID_TOPIC_CONFIG`.
    pub async fn alter_topic(
        &self,
        name: impl Into<String>,
        config: TopicConfig,
    ) -> Result<TopicInfo> {
        let request = v1::AlterTopicRequest {
            name: name.into(),
            config: Some(config.into()),
        };
        admin_call!(self, alter_topic, request, once).map(TopicInfo::from)
    }

    /// Deletes a topic and its subscriptions. Errors: `TOPIC_NOT_FOUND`.
    pub async fn delete_topic(&self, name: impl Into<String>) -> Result<()> {
        let request = v1::DeleteTopicRequest { name: name.into() };
        admin_call!(self, delete_topic, request, once).map(|_| ())
    }

    /// Creates a stream subscription starting at `start`. Errors: `TOPIC_NOT_FOUND`,
    /// `SUBSCRIPTION_ALREADY_EXISTS`, `INVALID_NAME`.
    #[allow(clippy::needless_update)] // wire structs tolerate additive proto fields
    pub async fn create_subscription(
        &self,
        topic: impl Into<String>,
        name: impl Into<String>,
        start: StartPosition,
    ) -> Result<SubscriptionInfo> {
        let request = v1::CreateSubscriptionRequest {
            topic: topic.into(),
            name: name.into(),
            mode: v1::SubscriptionMode::from(SubscriptionMode::Stream) as i32,
            start: Some(start.into()),
            ..Default::default()
        };
        admin_call!(self, create_subscription, request, once).map(SubscriptionInfo::from)
    }

    /// Creates a queue-mode subscription with `settings` (unset fields take the broker
    /// defaults). Errors: `TOPIC_NOT_FOUND`, `SUBSCRIPTION_ALREADY_EXISTS`, `INVALID_NAME`,
    /// `INVALID_ARGUMENT` (e.g. `max_deliveries` of 0).
    pub async fn create_queue_subscription(
        &self,
        topic: impl Into<String>,
        name: impl Into<String>,
        start: StartPosition,
        settings: QueueSettings,
    ) -> Result<SubscriptionInfo> {
        let request = v1::CreateSubscriptionRequest {
            topic: topic.into(),
            name: name.into(),
            mode: v1::SubscriptionMode::from(SubscriptionMode::Queue) as i32,
            start: Some(start.into()),
            queue: Some(settings.into()),
        };
        admin_call!(self, create_subscription, request, once).map(SubscriptionInfo::from)
    }

    /// One page of the dead letters in `dead_letter_topic` (e.g. `orders.dlq`) not yet
    /// replayed: at most `max` (0: the broker default, 100; at most 1000), from the start
    /// (`page_token` `None`) or from where the previous page's
    /// [`next_page_token`](DeadLetterPage::next_page_token) left off. Keep following the token
    /// until it is `None`; a page can be shorter than `max` (it also stops at about 2 MiB).
    /// Letters replayed, or dropped by retention, since the previous page are not listed.
    ///
    /// Errors: `TOPIC_NOT_FOUND`; `INVALID_ARGUMENT` when `max` is above 1000 or the token was
    /// not issued for this topic (start over without one).
    pub async fn list_dead_letters(
        &self,
        dead_letter_topic: impl Into<String>,
        max: u32,
        page_token: Option<&str>,
    ) -> Result<DeadLetterPage> {
        let topic = dead_letter_topic.into();
        let request = v1::ListDeadLettersRequest {
            dead_letter_topic: topic.clone(),
            max,
            page_token: page_token.unwrap_or_default().to_string(),
        };
        let response = admin_call!(self, list_dead_letters, request, retried)?;
        Ok(DeadLetterPage {
            dead_letters: response
                .dead_letters
                .into_iter()
                .map(|d| convert::dead_letter(&topic, d))
                .collect(),
            next_page_token: Some(response.next_page_token).filter(|t| !t.is_empty()),
        })
    }

    /// Publishes up to `max` pending dead letters (`None`: the broker default, 1000; at most
    /// 10000) back to the topics they came from, without the `rapidmq-dlq-*` headers, and says
    /// how many it published and how many are still pending. To replay everything, call again
    /// until [`remaining`](DeadLetterReplay::remaining) is 0. Sent once (not retried: a retry
    /// after a lost answer could replay more).
    ///
    /// Errors: `TOPIC_NOT_FOUND` (the dead-letter topic, or the original topic of the next
    /// letter: replay stops before it); `INVALID_ARGUMENT` when `max` is 0 or above 10000.
    pub async fn replay_dead_letters(
        &self,
        dead_letter_topic: impl Into<String>,
        max: Option<u32>,
    ) -> Result<DeadLetterReplay> {
        if max == Some(0) {
            return Err(Error::invalid(
                "`max` is 0: replay at least one dead letter, or pass None for the broker default",
            ));
        }
        let request = v1::ReplayDeadLettersRequest {
            dead_letter_topic: dead_letter_topic.into(),
            max: max.unwrap_or(0),
        };
        admin_call!(self, replay_dead_letters, request, once).map(|r| DeadLetterReplay {
            replayed: r.replayed,
            remaining: r.remaining,
        })
    }

    /// Subscriptions of `topic`, or of every topic when `None`.
    pub async fn list_subscriptions(&self, topic: Option<String>) -> Result<Vec<SubscriptionInfo>> {
        let request = v1::ListSubscriptionsRequest {
            topic: topic.unwrap_or_default(),
        };
        let response = admin_call!(self, list_subscriptions, request, retried)?;
        Ok(response
            .subscriptions
            .into_iter()
            .map(SubscriptionInfo::from)
            .collect())
    }

    /// One subscription with its cursors, members and lag. Errors: `SUBSCRIPTION_NOT_FOUND`.
    pub async fn describe_subscription(
        &self,
        topic: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<SubscriptionInfo> {
        let request = v1::DescribeSubscriptionRequest {
            topic: topic.into(),
            name: name.into(),
        };
        admin_call!(self, describe_subscription, request, retried).map(SubscriptionInfo::from)
    }

    /// The total lag of a subscription: messages not yet committed, over all partitions.
    pub async fn lag(&self, topic: impl Into<String>, name: impl Into<String>) -> Result<u64> {
        Ok(self.describe_subscription(topic, name).await?.total_lag)
    }

    /// Moves a subscription's cursor (one partition, or all when `partition` is `None`).
    /// Errors: `SUBSCRIPTION_NOT_FOUND`, `PARTITION_NOT_FOUND`, `OFFSET_OUT_OF_RANGE`.
    pub async fn seek_subscription(
        &self,
        topic: impl Into<String>,
        name: impl Into<String>,
        position: StartPosition,
        partition: Option<u32>,
    ) -> Result<SubscriptionInfo> {
        let request = v1::SeekSubscriptionRequest {
            topic: topic.into(),
            name: name.into(),
            position: Some(position.into()),
            partition,
        };
        admin_call!(self, seek_subscription, request, once).map(SubscriptionInfo::from)
    }

    /// Deletes a subscription. Errors: `SUBSCRIPTION_NOT_FOUND`.
    pub async fn delete_subscription(
        &self,
        topic: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<()> {
        let request = v1::DeleteSubscriptionRequest {
            topic: topic.into(),
            name: name.into(),
        };
        admin_call!(self, delete_subscription, request, once).map(|_| ())
    }

    /// Broker version, uptime and counts.
    pub async fn status(&self) -> Result<BrokerStatus> {
        admin_call!(self, get_status, v1::GetStatusRequest {}, retried).map(BrokerStatus::from)
    }

    /// The cluster as the answering node sees it: its metadata leader and term, the node table
    /// and how many partitions are moving. A single-node broker answers `mode = "single-node"`.
    pub async fn cluster_status(&self) -> Result<ClusterStatus> {
        admin_call!(
            self,
            get_cluster_status,
            v1::GetClusterStatusRequest {},
            retried
        )
        .map(ClusterStatus::from)
    }

    /// Adds node `id`, reached by the other nodes at `cluster_addr`, to the metadata group
    /// (through its leader): a learner until it caught up, then a voter. Blocks until then, up
    /// to the request timeout. Errors: `INVALID_ARGUMENT` (single-node mode, bad address),
    /// `UNAVAILABLE` (no leader; the node did not catch up: it stays a learner, add it again).
    pub async fn add_node(
        &self,
        id: u64,
        cluster_addr: impl Into<String>,
    ) -> Result<MembershipChange> {
        let request = v1::AddNodeRequest {
            node_id: id,
            cluster_addr: cluster_addr.into(),
        };
        admin_call!(self, add_node, request, once).map(|c| MembershipChange {
            voters: c.voters,
            note: c.note,
        })
    }

    /// Removes node `id` from the metadata group. Errors: `NODE_NOT_FOUND` (not a member),
    /// `INVALID_ARGUMENT` (the last voter, single-node mode), `UNAVAILABLE` (no leader).
    pub async fn remove_node(&self, id: u64) -> Result<MembershipChange> {
        let request = v1::RemoveNodeRequest { node_id: id };
        admin_call!(self, remove_node, request, once).map(|c| MembershipChange {
            voters: c.voters,
            note: c.note,
        })
    }

    /// Hands each partition's leadership back to its preferred replica, on every node, where
    /// that replica is caught up and reachable; how many transfers started. A single-node broker
    /// answers 0. Errors: `PERMISSION_DENIED` (not a cluster admin).
    pub async fn rebalance_leaders(&self) -> Result<LeaderRebalance> {
        let request = v1::RebalanceLeadersRequest {};
        admin_call!(self, rebalance_leaders, request, once).map(|r| LeaderRebalance {
            transfers: r.transfers,
            unreachable: r.unreachable,
        })
    }

    /// Moves partition replicas so each voting node holds an even share: replicas on nodes that
    /// no longer vote, or on the nodes in `exclude` (before removing them), go to other voters;
    /// then from the nodes holding the most to those holding the fewest; then preferred leaders
    /// are spread. Answers the moves started (with `dry_run`, planned and not started); each
    /// completes once its new replicas caught up, and [`ClusterStatus::moving_partitions`]
    /// counts those under way. Errors: `INVALID_ARGUMENT` (single-node mode; the voters left are
    /// fewer than some topic's replication factor), `NODE_NOT_FOUND` (an excluded node is not a
    /// member), `PERMISSION_DENIED` (not a cluster admin).
    pub async fn rebalance_replicas(
        &self,
        exclude: &[u64],
        dry_run: bool,
    ) -> Result<Vec<ReplicaMove>> {
        let request = v1::RebalanceReplicasRequest {
            exclude: exclude.to_vec(),
            dry_run,
        };
        admin_call!(self, rebalance_replicas, request, once)
            .map(|r| r.moves.into_iter().map(ReplicaMove::from).collect())
    }

    /// The caller as the broker sees it: `(tenant, user)`, the user empty when anonymous
    /// ([`Client::whoami`], here so every SDK's admin API has it).
    pub async fn whoami(&self) -> Result<(String, String)> {
        self.client.whoami().await
    }

    /// Creates a user in the caller's tenant, with a password or (`None`) for API tokens only.
    /// Errors: `USER_ALREADY_EXISTS`, `INVALID_NAME`, `UNAUTHENTICATED`.
    pub async fn create_user(
        &self,
        name: impl Into<String>,
        password: Option<String>,
    ) -> Result<UserInfo> {
        let request = v1::CreateUserRequest {
            name: name.into(),
            password: password.unwrap_or_default(),
        };
        admin_call!(self, create_user, request, once).map(UserInfo::from)
    }

    /// Deletes a user and revokes its tokens. Errors: `USER_NOT_FOUND`.
    pub async fn delete_user(&self, name: impl Into<String>) -> Result<()> {
        let request = v1::DeleteUserRequest { name: name.into() };
        admin_call!(self, delete_user, request, once).map(|_| ())
    }

    /// The users of the caller's tenant, by name.
    pub async fn list_users(&self) -> Result<Vec<UserInfo>> {
        admin_call!(self, list_users, v1::ListUsersRequest {}, retried)
            .map(|r| r.users.into_iter().map(UserInfo::from).collect())
    }

    /// Sets a user's password. Errors: `USER_NOT_FOUND`, `INVALID_ARGUMENT` (empty).
    pub async fn set_password(
        &self,
        name: impl Into<String>,
        password: impl Into<String>,
    ) -> Result<()> {
        let request = v1::SetPasswordRequest {
            name: name.into(),
            password: password.into(),
        };
        admin_call!(self, set_password, request, once).map(|_| ())
    }

    /// Creates an API token for `user` (the caller when `None`), expiring after `ttl` if set.
    /// The full token is in the answer only. Errors: `USER_NOT_FOUND`.
    pub async fn create_token(
        &self,
        user: Option<String>,
        description: impl Into<String>,
        ttl: Option<std::time::Duration>,
    ) -> Result<CreatedToken> {
        let request = v1::CreateTokenRequest {
            user: user.unwrap_or_default(),
            description: description.into(),
            ttl_ms: ttl.map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        };
        let created = admin_call!(self, create_token, request, once)?;
        let info = created
            .info
            .map(TokenInfo::from)
            .ok_or_else(|| Error::invalid("the broker answered a token without its description"))?;
        Ok(CreatedToken {
            token: created.token,
            info,
        })
    }

    /// The tokens of the caller's tenant (of one user when `user` is set), without secrets.
    pub async fn list_tokens(&self, user: Option<String>) -> Result<Vec<TokenInfo>> {
        let request = v1::ListTokensRequest {
            user: user.unwrap_or_default(),
        };
        admin_call!(self, list_tokens, request, retried)
            .map(|r| r.tokens.into_iter().map(TokenInfo::from).collect())
    }

    /// Revokes tokens (API or session) by id, at once. Errors: `TOKEN_NOT_FOUND`.
    pub async fn revoke_tokens(&self, ids: Vec<String>) -> Result<()> {
        let request = v1::RevokeTokensRequest { ids };
        admin_call!(self, revoke_tokens, request, once).map(|_| ())
    }

    /// Creates a custom role in the caller's tenant from permissions in their text form
    /// (`allow publish,describe topic:orders.*`, see [`crate::roles`]). Errors:
    /// `ROLE_ALREADY_EXISTS` (the built-in names are taken), `INVALID_NAME`, `INVALID_ARGUMENT`.
    pub async fn create_role(
        &self,
        name: impl Into<String>,
        permissions: &[String],
    ) -> Result<RoleInfo> {
        let permissions = permissions
            .iter()
            .map(|text| text.parse::<Permission>().map(|p| v1::Permission::from(&p)))
            .collect::<Result<Vec<_>>>()?;
        let request = v1::CreateRoleRequest {
            name: name.into(),
            permissions,
        };
        RoleInfo::try_from(admin_call!(self, create_role, request, once)?)
    }

    /// Deletes a custom role and its bindings. Errors: `ROLE_NOT_FOUND`, `INVALID_ARGUMENT`
    /// (a built-in role).
    pub async fn delete_role(&self, name: impl Into<String>) -> Result<()> {
        let request = v1::DeleteRoleRequest { name: name.into() };
        admin_call!(self, delete_role, request, once).map(|_| ())
    }

    /// The roles of the caller's tenant: the built-ins (admin, producer, consumer, viewer), then the
    /// custom ones by name.
    pub async fn list_roles(&self) -> Result<Vec<RoleInfo>> {
        admin_call!(self, list_roles, v1::ListRolesRequest {}, retried)?
            .roles
            .into_iter()
            .map(RoleInfo::try_from)
            .collect()
    }

    /// Binds `role` to `user`, in the tenant or (`cluster`, by a cluster admin only) across the
    /// broker. Binding twice is not an error. Errors: `USER_NOT_FOUND`, `ROLE_NOT_FOUND`.
    pub async fn bind_role(
        &self,
        user: impl Into<String>,
        role: impl Into<String>,
        scope: BindingScope,
    ) -> Result<RoleBinding> {
        let request = v1::BindRoleRequest {
            user: user.into(),
            role: role.into(),
            scope: v1::BindingScope::from(scope) as i32,
        };
        admin_call!(self, bind_role, request, once).map(RoleBinding::from)
    }

    /// Removes a binding. Errors: `ROLE_NOT_FOUND` (no such binding), `USER_NOT_FOUND`.
    pub async fn unbind_role(
        &self,
        user: impl Into<String>,
        role: impl Into<String>,
    ) -> Result<()> {
        let request = v1::UnbindRoleRequest {
            user: user.into(),
            role: role.into(),
        };
        admin_call!(self, unbind_role, request, once).map(|_| ())
    }

    /// The role bindings of the caller's tenant (of one user when `user` is set).
    pub async fn list_role_bindings(&self, user: Option<String>) -> Result<Vec<RoleBinding>> {
        let request = v1::ListRoleBindingsRequest {
            user: user.unwrap_or_default(),
        };
        admin_call!(self, list_role_bindings, request, retried)
            .map(|r| r.bindings.into_iter().map(RoleBinding::from).collect())
    }

    /// Creates a tenant (a cluster admin only); `None` quotas take the broker's defaults.
    /// Errors: `TENANT_ALREADY_EXISTS`, `INVALID_NAME`, `PERMISSION_DENIED`.
    pub async fn create_tenant(
        &self,
        name: impl Into<String>,
        quotas: &TenantQuotas,
    ) -> Result<TenantInfo> {
        let request = v1::CreateTenantRequest {
            name: name.into(),
            quotas: Some(quotas.into()),
        };
        admin_call!(self, create_tenant, request, once).map(TenantInfo::from)
    }

    /// Deletes an empty tenant (a cluster admin only). Errors: `TENANT_NOT_FOUND`,
    /// `TENANT_NOT_EMPTY` (it still has topics or users), `PERMISSION_DENIED` (`default`).
    pub async fn delete_tenant(&self, name: impl Into<String>) -> Result<()> {
        let request = v1::DeleteTenantRequest { name: name.into() };
        admin_call!(self, delete_tenant, request, once).map(|_| ())
    }

    /// Every tenant, by name (a cluster admin only).
    pub async fn list_tenants(&self) -> Result<Vec<TenantInfo>> {
        admin_call!(self, list_tenants, v1::ListTenantsRequest {}, retried)
            .map(|r| r.tenants.into_iter().map(TenantInfo::from).collect())
    }

    /// A tenant's quotas in effect and its usage; `None`: the caller's tenant.
    /// Errors: `TENANT_NOT_FOUND`.
    pub async fn describe_tenant(&self, name: Option<String>) -> Result<TenantInfo> {
        let request = v1::DescribeTenantRequest {
            name: name.unwrap_or_default(),
        };
        admin_call!(self, describe_tenant, request, retried).map(TenantInfo::from)
    }

    /// Changes some of a tenant's quotas (a cluster admin only): the `Some` fields of `quotas`
    /// replace, the names in `reset` go back to the broker's defaults, the rest stay.
    /// Errors: `TENANT_NOT_FOUND`, `INVALID_ARGUMENT` (an unknown name in `reset`).
    pub async fn set_tenant_quotas(
        &self,
        name: impl Into<String>,
        quotas: &TenantQuotas,
        reset: &[String],
    ) -> Result<TenantInfo> {
        let request = v1::SetTenantQuotasRequest {
            name: name.into(),
            quotas: Some(quotas.into()),
            reset: reset.to_vec(),
        };
        admin_call!(self, set_tenant_quotas, request, once).map(TenantInfo::from)
    }

    /// One page of the audit log, oldest first: the caller's tenant for a tenant admin, every
    /// tenant for a cluster admin.
    pub async fn list_audit_events(&self, query: &AuditQuery) -> Result<AuditPage> {
        let request = v1::ListAuditEventsRequest::from(query);
        admin_call!(self, list_audit_events, request, retried).map(|r| AuditPage {
            events: r.events.into_iter().map(AuditEvent::from).collect(),
            next_page_token: Some(r.next_page_token).filter(|t| !t.is_empty()),
        })
    }
}
