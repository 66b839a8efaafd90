//! `rapidmq._native.Admin`: topics, subscriptions, lag, broker status, cluster status,
//! membership, leader rebalance and replica moves, and the caller, users, API tokens, roles and role bindings,
//! tenants and their quotas, and the audit log of a broker with authentication on.

use pyo3::prelude::*;
use rapidmq_core::roles::BindingScope;
use rapidmq_core::{self as core, Runtime, TopicConfig};

use crate::cluster::{ClusterStatus, LeaderRebalance, MembershipChange, ReplicaMove};
use crate::convert::{to_durability, to_duration, to_start, to_storage};
use crate::roles::{RoleBinding, RoleInfo};
use crate::runtime::{ProcessLocal, bridge};
use crate::tenants::{AuditPage, TenantInfo, TenantQuotas};
use crate::types::{BrokerStatus, DeadLetterPage, DeadLetterReplay, SubscriptionInfo, TopicInfo};
use crate::users::{CreatedToken, Identity, TokenInfo, UserInfo};

/// Admin operations of a client.
#[pyclass(module = "rapidmq._native", name = "Admin", frozen)]
pub(crate) struct Admin {
    core: ProcessLocal<core::Admin>,
    runtime: Runtime,
}

impl Admin {
    pub(crate) fn new(core: core::Admin, runtime: Runtime) -> Admin {
        Admin {
            core: ProcessLocal::new(core),
            runtime,
        }
    }
}

#[pymethods]
impl Admin {
    /// Changes a topic's retention, max message size, durability or dedup window; `None`
    /// settings (and durability `"unspecified"`) keep their value.
    #[pyo3(signature = (
        name, retention_ms=None, retention_bytes=None, retention_messages=None,
        max_message_bytes=None, durability="unspecified", dedup_window_ms=None, asyncio=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn alter_topic(
        &self,
        py: Python<'_>,
        name: String,
        retention_ms: Option<u64>,
        retention_bytes: Option<u64>,
        retention_messages: Option<u64>,
        max_message_bytes: Option<u32>,
        durability: &str,
        dedup_window_ms: Option<u64>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let changes = TopicConfig {
            retention_ms,
            retention_bytes,
            retention_messages,
            max_message_bytes,
            durability: to_durability(durability)?,
            dedup_window_ms,
            ..TopicConfig::default()
        };
        bridge(py, &self.runtime, asyncio, async move {
            admin.alter_topic(name, changes).await.map(TopicInfo::from)
        })
    }

    /// Creates a topic; `None` settings take the broker's defaults.
    #[pyo3(signature = (
        name, partitions=0, retention_ms=None, retention_bytes=None, retention_messages=None,
        max_message_bytes=None, storage="default", durability="unspecified",
        dedup_window_ms=None, replication_factor=None, asyncio=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn create_topic(
        &self,
        py: Python<'_>,
        name: String,
        partitions: u32,
        retention_ms: Option<u64>,
        retention_bytes: Option<u64>,
        retention_messages: Option<u64>,
        max_message_bytes: Option<u32>,
        storage: &str,
        durability: &str,
        dedup_window_ms: Option<u64>,
        replication_factor: Option<u32>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let config = TopicConfig {
            dedup_window_ms,
            replication_factor,
            partitions,
            retention_ms,
            retention_bytes,
            retention_messages,
            max_message_bytes,
            storage: to_storage(storage)?,
            durability: to_durability(durability)?,
        };
        bridge(py, &self.runtime, asyncio, async move {
            admin.create_topic(name, config).await.map(TopicInfo::from)
        })
    }

    /// Every topic of the tenant.
    #[pyo3(signature = (asyncio=false))]
    fn list_topics(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            let topics = admin.list_topics().await?;
            Ok(topics.into_iter().map(TopicInfo::from).collect::<Vec<_>>())
        })
    }

    /// One topic with its partitions.
    #[pyo3(signature = (name, asyncio=false))]
    fn describe_topic(&self, py: Python<'_>, name: String, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.describe_topic(name).await.map(TopicInfo::from)
        })
    }

    /// Deletes a topic and its subscriptions.
    #[pyo3(signature = (name, asyncio=false))]
    fn delete_topic(&self, py: Python<'_>, name: String, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.delete_topic(name).await
        })
    }

    /// Creates a stream subscription starting at `(kind, value)`.
    #[pyo3(signature = (topic, name, start, asyncio=false))]
    fn create_subscription(
        &self,
        py: Python<'_>,
        topic: String,
        name: String,
        start: (String, i64),
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let start = to_start(&start.0, start.1)?;
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .create_subscription(topic, name, start)
                .await
                .map(SubscriptionInfo::from)
        })
    }

    /// Creates a queue-mode subscription; `None` settings take the broker defaults.
    #[pyo3(signature = (
        topic, name, start, ack_deadline=None, max_deliveries=None, dead_letter_topic=None,
        asyncio=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn create_queue_subscription(
        &self,
        py: Python<'_>,
        topic: String,
        name: String,
        start: (String, i64),
        ack_deadline: Option<f64>,
        max_deliveries: Option<u32>,
        dead_letter_topic: Option<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let start = to_start(&start.0, start.1)?;
        let settings = core::QueueSettings {
            ack_deadline: ack_deadline
                .map(|d| to_duration(d, "ack_deadline"))
                .transpose()?,
            max_deliveries,
            dead_letter_topic,
        };
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .create_queue_subscription(topic, name, start, settings)
                .await
                .map(SubscriptionInfo::from)
        })
    }

    /// One page of the dead letters of `dead_letter_topic` not yet replayed: at most `max`
    /// (0: broker default), from `page_token` (a previous page's `next_page_token`) or the start.
    #[pyo3(signature = (dead_letter_topic, max=0, page_token=None, asyncio=false))]
    fn list_dead_letters(
        &self,
        py: Python<'_>,
        dead_letter_topic: String,
        max: u32,
        page_token: Option<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .list_dead_letters(dead_letter_topic, max, page_token.as_deref())
                .await
                .map(DeadLetterPage::from)
        })
    }

    /// Publishes up to `max` dead letters (None: broker default) back to their topics; says
    /// how many it published and how many are still pending.
    #[pyo3(signature = (dead_letter_topic, max=None, asyncio=false))]
    fn replay_dead_letters(
        &self,
        py: Python<'_>,
        dead_letter_topic: String,
        max: Option<u32>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .replay_dead_letters(dead_letter_topic, max)
                .await
                .map(DeadLetterReplay::from)
        })
    }

    /// Subscriptions of `topic`, or of every topic.
    #[pyo3(signature = (topic=None, asyncio=false))]
    fn list_subscriptions(
        &self,
        py: Python<'_>,
        topic: Option<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            let subs = admin.list_subscriptions(topic).await?;
            Ok(subs
                .into_iter()
                .map(SubscriptionInfo::from)
                .collect::<Vec<_>>())
        })
    }

    /// One subscription with its cursors, members and lag.
    #[pyo3(signature = (topic, name, asyncio=false))]
    fn describe_subscription(
        &self,
        py: Python<'_>,
        topic: String,
        name: String,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .describe_subscription(topic, name)
                .await
                .map(SubscriptionInfo::from)
        })
    }

    /// The total lag of a subscription.
    #[pyo3(signature = (topic, name, asyncio=false))]
    fn lag(
        &self,
        py: Python<'_>,
        topic: String,
        name: String,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.lag(topic, name).await
        })
    }

    /// Moves a subscription's cursor to `(kind, value)` on one partition or all.
    #[pyo3(signature = (topic, name, position, partition=None, asyncio=false))]
    fn seek_subscription(
        &self,
        py: Python<'_>,
        topic: String,
        name: String,
        position: (String, i64),
        partition: Option<u32>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let position = to_start(&position.0, position.1)?;
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .seek_subscription(topic, name, position, partition)
                .await
                .map(SubscriptionInfo::from)
        })
    }

    /// Deletes a subscription.
    #[pyo3(signature = (topic, name, asyncio=false))]
    fn delete_subscription(
        &self,
        py: Python<'_>,
        topic: String,
        name: String,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.delete_subscription(topic, name).await
        })
    }

    /// Broker version, uptime and counts.
    #[pyo3(signature = (asyncio=false))]
    fn status(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.status().await.map(BrokerStatus::from)
        })
    }

    /// The cluster as the answering node sees it.
    #[pyo3(signature = (asyncio=false))]
    fn cluster_status(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.cluster_status().await.map(ClusterStatus::from)
        })
    }

    /// Adds node `id`, reached by the other nodes at `cluster_addr`, to the metadata group.
    #[pyo3(signature = (id, cluster_addr, asyncio=false))]
    fn add_node(
        &self,
        py: Python<'_>,
        id: u64,
        cluster_addr: String,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .add_node(id, cluster_addr)
                .await
                .map(MembershipChange::from)
        })
    }

    /// Removes node `id` from the metadata group.
    #[pyo3(signature = (id, asyncio=false))]
    fn remove_node(&self, py: Python<'_>, id: u64, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.remove_node(id).await.map(MembershipChange::from)
        })
    }

    /// Hands each partition's leadership back to its preferred replica, on every node.
    #[pyo3(signature = (asyncio=false))]
    fn rebalance_leaders(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.rebalance_leaders().await.map(LeaderRebalance::from)
        })
    }

    /// Moves partition replicas so each voting node holds an even share, first off the nodes
    /// in `exclude`; with `dry_run`, only plans. The moves started (or planned).
    #[pyo3(signature = (exclude=Vec::new(), dry_run=false, asyncio=false))]
    fn rebalance_replicas(
        &self,
        py: Python<'_>,
        exclude: Vec<u64>,
        dry_run: bool,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            let moves = admin.rebalance_replicas(&exclude, dry_run).await?;
            Ok(moves.into_iter().map(ReplicaMove::from).collect::<Vec<_>>())
        })
    }

    /// The caller as the broker sees it.
    #[pyo3(signature = (asyncio=false))]
    fn whoami(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.whoami().await.map(Identity::from)
        })
    }

    /// Creates a user, with a password or (`None`) for API tokens only.
    #[pyo3(signature = (name, password=None, asyncio=false))]
    fn create_user(
        &self,
        py: Python<'_>,
        name: String,
        password: Option<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.create_user(name, password).await.map(UserInfo::from)
        })
    }

    /// Deletes a user and revokes its tokens.
    #[pyo3(signature = (name, asyncio=false))]
    fn delete_user(&self, py: Python<'_>, name: String, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.delete_user(name).await
        })
    }

    /// The users of the caller's tenant.
    #[pyo3(signature = (asyncio=false))]
    fn list_users(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            let users = admin.list_users().await?;
            Ok(users.into_iter().map(UserInfo::from).collect::<Vec<_>>())
        })
    }

    /// Sets a user's password.
    #[pyo3(signature = (name, password, asyncio=false))]
    fn set_password(
        &self,
        py: Python<'_>,
        name: String,
        password: String,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.set_password(name, password).await
        })
    }

    /// Creates an API token for `user` (the caller when `None`), expiring after `ttl` seconds.
    #[pyo3(signature = (user=None, description=String::new(), ttl=None, asyncio=false))]
    fn create_token(
        &self,
        py: Python<'_>,
        user: Option<String>,
        description: String,
        ttl: Option<f64>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let ttl = ttl.map(|t| to_duration(t, "ttl")).transpose()?;
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .create_token(user, description, ttl)
                .await
                .map(CreatedToken::from)
        })
    }

    /// The tokens of the caller's tenant (of one user when set), without secrets.
    #[pyo3(signature = (user=None, asyncio=false))]
    fn list_tokens(
        &self,
        py: Python<'_>,
        user: Option<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            let tokens = admin.list_tokens(user).await?;
            Ok(tokens.into_iter().map(TokenInfo::from).collect::<Vec<_>>())
        })
    }

    /// Revokes tokens (API or session) by id, at once.
    #[pyo3(signature = (ids, asyncio=false))]
    fn revoke_tokens(
        &self,
        py: Python<'_>,
        ids: Vec<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.revoke_tokens(ids).await
        })
    }

    /// Creates a custom role from permissions in their text form
    /// (`allow publish,describe topic:orders.*`).
    #[pyo3(signature = (name, permissions, asyncio=false))]
    fn create_role(
        &self,
        py: Python<'_>,
        name: String,
        permissions: Vec<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .create_role(name, &permissions)
                .await
                .map(RoleInfo::from)
        })
    }

    /// Deletes a custom role and its bindings.
    #[pyo3(signature = (name, asyncio=false))]
    fn delete_role(&self, py: Python<'_>, name: String, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.delete_role(name).await
        })
    }

    /// The built-in and custom roles of the caller's tenant.
    #[pyo3(signature = (asyncio=false))]
    fn list_roles(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            let roles = admin.list_roles().await?;
            Ok(roles.into_iter().map(RoleInfo::from).collect::<Vec<_>>())
        })
    }

    /// Binds `role` to `user` at `scope` (`"tenant"` or `"cluster"`).
    #[pyo3(signature = (user, role, scope="tenant", asyncio=false))]
    fn bind_role(
        &self,
        py: Python<'_>,
        user: String,
        role: String,
        scope: &str,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let scope = scope
            .parse::<BindingScope>()
            .map_err(crate::errors::to_py_err)?;
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .bind_role(user, role, scope)
                .await
                .map(RoleBinding::from)
        })
    }

    /// Removes a binding.
    #[pyo3(signature = (user, role, asyncio=false))]
    fn unbind_role(
        &self,
        py: Python<'_>,
        user: String,
        role: String,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.unbind_role(user, role).await
        })
    }

    /// The role bindings of the caller's tenant (of one user when set).
    #[pyo3(signature = (user=None, asyncio=false))]
    fn list_role_bindings(
        &self,
        py: Python<'_>,
        user: Option<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            let bindings = admin.list_role_bindings(user).await?;
            Ok(bindings
                .into_iter()
                .map(RoleBinding::from)
                .collect::<Vec<_>>())
        })
    }
    /// Creates a tenant (a cluster admin only); `None` quotas take the broker's defaults.
    #[pyo3(signature = (name, quotas=None, asyncio=false))]
    fn create_tenant(
        &self,
        py: Python<'_>,
        name: String,
        quotas: Option<PyRef<'_, TenantQuotas>>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let quotas = quotas
            .map(|q| core::TenantQuotas::from(&*q))
            .unwrap_or_default();
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .create_tenant(name, &quotas)
                .await
                .map(TenantInfo::from)
        })
    }

    /// Deletes an empty tenant (a cluster admin only).
    #[pyo3(signature = (name, asyncio=false))]
    fn delete_tenant(&self, py: Python<'_>, name: String, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.delete_tenant(name).await
        })
    }

    /// Every tenant, by name (a cluster admin only).
    #[pyo3(signature = (asyncio=false))]
    fn list_tenants(&self, py: Python<'_>, asyncio: bool) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            let tenants = admin.list_tenants().await?;
            Ok(tenants
                .into_iter()
                .map(TenantInfo::from)
                .collect::<Vec<_>>())
        })
    }

    /// A tenant's quotas in effect and its usage (`None`: the caller's tenant).
    #[pyo3(signature = (name=None, asyncio=false))]
    fn describe_tenant(
        &self,
        py: Python<'_>,
        name: Option<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        bridge(py, &self.runtime, asyncio, async move {
            admin.describe_tenant(name).await.map(TenantInfo::from)
        })
    }

    /// Changes some of a tenant's quotas: the set ones replace, those named in `reset` go back to
    /// the broker's defaults, the rest stay.
    #[pyo3(signature = (name, quotas=None, reset=Vec::new(), asyncio=false))]
    fn set_tenant_quotas(
        &self,
        py: Python<'_>,
        name: String,
        quotas: Option<PyRef<'_, TenantQuotas>>,
        reset: Vec<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let quotas = quotas
            .map(|q| core::TenantQuotas::from(&*q))
            .unwrap_or_default();
        bridge(py, &self.runtime, asyncio, async move {
            admin
                .set_tenant_quotas(name, &quotas, &reset)
                .await
                .map(TenantInfo::from)
        })
    }

    /// One page of the audit log, oldest first; every filter is optional.
    #[pyo3(signature = (
        since_ms=None, until_ms=None, actor=None, action_prefix=None, outcome=None, limit=None,
        page_token=None, asyncio=false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn list_audit_events(
        &self,
        py: Python<'_>,
        since_ms: Option<u64>,
        until_ms: Option<u64>,
        actor: Option<String>,
        action_prefix: Option<String>,
        outcome: Option<String>,
        limit: Option<u32>,
        page_token: Option<String>,
        asyncio: bool,
    ) -> PyResult<Py<PyAny>> {
        let admin = self.core.get()?.clone();
        let query = core::AuditQuery {
            since_ms,
            until_ms,
            actor,
            action_prefix,
            outcome,
            limit,
            page_token,
        };
        bridge(py, &self.runtime, asyncio, async move {
            admin.list_audit_events(&query).await.map(AuditPage::from)
        })
    }
}
