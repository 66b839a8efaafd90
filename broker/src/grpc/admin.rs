//! The `Admin` service: topics, subscriptions, broker status, users, tokens, roles, bindings
//! and the audit log.

use std::sync::Arc;

use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_server::Admin;
use tonic::{Request, Response, Status};
use tracing::instrument;

use super::{convert, principal};
use crate::audit::{self, AuditQuery};
use crate::auth::{Action, Resource};
use crate::engine::{DEFAULT_PAGE, DEFAULT_REPLAY, Engine};
use crate::rest::cluster::ClusterHandle;

pub struct AdminService {
    engine: Arc<Engine>,
    cluster: ClusterHandle,
}

impl AdminService {
    pub fn new(engine: Arc<Engine>, cluster: ClusterHandle) -> AdminService {
        AdminService { engine, cluster }
    }
}

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Admin for AdminService {
    #[instrument(skip_all, fields(topic = %request.get_ref().name))]
    async fn create_topic(&self, request: Request<pb::CreateTopicRequest>) -> Reply<pb::TopicInfo> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let spec = convert::topic_spec(r.config)?;
        let topic = self.engine.create_topic(&principal, &r.name, spec).await?;
        Ok(Response::new(topic.into()))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().name))]
    async fn alter_topic(&self, request: Request<pb::AlterTopicRequest>) -> Reply<pb::TopicInfo> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let spec = convert::topic_spec(r.config)?;
        let topic = self.engine.alter_topic(&principal, &r.name, spec).await?;
        Ok(Response::new(topic.into()))
    }

    async fn list_topics(
        &self,
        request: Request<pb::ListTopicsRequest>,
    ) -> Reply<pb::ListTopicsResponse> {
        let principal = principal(&request)?;
        let topics = self
            .engine
            .list_topics_described(&principal)
            .await?
            .into_iter()
            .map(Into::into)
            .collect();
        Ok(Response::new(pb::ListTopicsResponse { topics }))
    }

    async fn describe_topic(
        &self,
        request: Request<pb::DescribeTopicRequest>,
    ) -> Reply<pb::TopicInfo> {
        let principal = principal(&request)?;
        Ok(Response::new(
            self.engine
                .describe_topic(&principal, &request.get_ref().name)
                .await?
                .into(),
        ))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().name))]
    async fn delete_topic(
        &self,
        request: Request<pb::DeleteTopicRequest>,
    ) -> Reply<pb::DeleteTopicResponse> {
        let principal = principal(&request)?;
        self.engine
            .delete_topic(&principal, &request.get_ref().name)
            .await?;
        Ok(Response::new(pb::DeleteTopicResponse {}))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().topic, subscription = %request.get_ref().name))]
    async fn create_subscription(
        &self,
        request: Request<pb::CreateSubscriptionRequest>,
    ) -> Reply<pb::SubscriptionInfo> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let mode = convert::subscription_mode(r.mode)?;
        let start = convert::start_position(r.start)?;
        let sub = self
            .engine
            .create_subscription(
                &principal,
                &r.topic,
                &r.name,
                mode,
                start,
                Some(&convert::queue_spec(r.queue)),
            )
            .await?;
        Ok(Response::new(sub.into()))
    }

    async fn list_subscriptions(
        &self,
        request: Request<pb::ListSubscriptionsRequest>,
    ) -> Reply<pb::ListSubscriptionsResponse> {
        let principal = principal(&request)?;
        let topic = &request.get_ref().topic;
        let subs = self
            .engine
            .list_subscriptions(&principal, (!topic.is_empty()).then_some(topic.as_str()))
            .await?;
        Ok(Response::new(pb::ListSubscriptionsResponse {
            subscriptions: subs.into_iter().map(Into::into).collect(),
        }))
    }

    async fn describe_subscription(
        &self,
        request: Request<pb::DescribeSubscriptionRequest>,
    ) -> Reply<pb::SubscriptionInfo> {
        let principal = principal(&request)?;
        let r = request.get_ref();
        Ok(Response::new(
            self.engine
                .describe_subscription(&principal, &r.topic, &r.name)
                .await?
                .into(),
        ))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().topic, subscription = %request.get_ref().name))]
    async fn seek_subscription(
        &self,
        request: Request<pb::SeekSubscriptionRequest>,
    ) -> Reply<pb::SubscriptionInfo> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let position = convert::start_position(r.position)?;
        let sub = self
            .engine
            .seek_subscription(&principal, &r.topic, &r.name, position, r.partition)
            .await?;
        Ok(Response::new(sub.into()))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().topic, subscription = %request.get_ref().name))]
    async fn delete_subscription(
        &self,
        request: Request<pb::DeleteSubscriptionRequest>,
    ) -> Reply<pb::DeleteSubscriptionResponse> {
        let principal = principal(&request)?;
        let r = request.get_ref();
        self.engine
            .delete_subscription(&principal, &r.topic, &r.name)
            .await?;
        Ok(Response::new(pb::DeleteSubscriptionResponse {}))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().dead_letter_topic))]
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Reply<pb::ListDeadLettersResponse> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let max = if r.max == 0 {
            DEFAULT_PAGE
        } else {
            r.max as usize
        };
        let page = self
            .engine
            .list_dead_letters(
                &principal,
                &r.dead_letter_topic,
                max,
                Some(r.page_token.as_str()),
            )
            .await?;
        Ok(Response::new(pb::ListDeadLettersResponse {
            dead_letters: page.letters.into_iter().map(Into::into).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    #[instrument(skip_all, fields(topic = %request.get_ref().dead_letter_topic))]
    async fn replay_dead_letters(
        &self,
        request: Request<pb::ReplayDeadLettersRequest>,
    ) -> Reply<pb::ReplayDeadLettersResponse> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let max = if r.max == 0 {
            DEFAULT_REPLAY
        } else {
            r.max as usize
        };
        let outcome = self
            .engine
            .replay_dead_letters(&principal, &r.dead_letter_topic, max)
            .await?;
        Ok(Response::new(pb::ReplayDeadLettersResponse {
            replayed: outcome.replayed,
            remaining: outcome.remaining,
        }))
    }

    async fn get_status(&self, request: Request<pb::GetStatusRequest>) -> Reply<pb::BrokerStatus> {
        let principal = principal(&request)?;
        let status = self.engine.status(&principal)?;
        Ok(Response::new(pb::BrokerStatus {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_ms: status.uptime.as_millis() as u64,
            topics: status.topics,
            subscriptions: status.subscriptions,
            node_id: "single".to_string(),
            fsyncs: status.fsyncs,
        }))
    }

    async fn get_cluster_status(
        &self,
        request: Request<pb::GetClusterStatusRequest>,
    ) -> Reply<pb::ClusterStatus> {
        let principal = principal(&request)?;
        self.engine
            .auth()
            .authorize(&principal, Action::Describe, Resource::Cluster)?;
        let status = crate::rest::cluster::status(&self.engine, self.cluster.as_deref());
        Ok(Response::new(pb::ClusterStatus {
            mode: status.mode,
            moving_partitions: status.moving_partitions,
            cluster_id: status.cluster_id.unwrap_or_default(),
            node_id: status.node_id.unwrap_or_default(),
            leader_id: status.leader_id,
            term: status.term,
            last_applied: status.last_applied,
            membership: status.membership,
            nodes: status
                .nodes
                .into_iter()
                .map(|n| pb::ClusterNode {
                    id: n.id,
                    cluster_addr: n.cluster_addr,
                    grpc_addr: n.grpc_addr,
                    http_addr: n.http_addr,
                    reachable: n.reachable,
                    role: n.role,
                    matched: n.matched,
                })
                .collect(),
        }))
    }

    #[instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn add_node(&self, request: Request<pb::AddNodeRequest>) -> Reply<pb::MembershipChange> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let changed = crate::rest::cluster::add_node(
            &self.engine,
            &principal,
            self.cluster.as_deref(),
            r.node_id,
            r.cluster_addr,
        )
        .await?;
        Ok(Response::new(pb::MembershipChange {
            voters: changed.voters,
            note: changed.note,
        }))
    }

    #[instrument(skip_all)]
    async fn rebalance_leaders(
        &self,
        request: Request<pb::RebalanceLeadersRequest>,
    ) -> Reply<pb::RebalanceLeadersResponse> {
        let principal = principal(&request)?;
        let rebalanced = crate::rest::cluster::rebalance_leaders(
            &self.engine,
            &principal,
            self.cluster.as_deref(),
        )
        .await?;
        Ok(Response::new(pb::RebalanceLeadersResponse {
            transfers: rebalanced.transfers,
            unreachable: rebalanced.unreachable,
        }))
    }

    #[instrument(skip_all)]
    async fn rebalance_replicas(
        &self,
        request: Request<pb::RebalanceReplicasRequest>,
    ) -> Reply<pb::RebalanceReplicasResponse> {
        let principal = principal(&request)?;
        let asked = request.into_inner();
        let moves = crate::rest::cluster::rebalance_replicas(
            &self.engine,
            &principal,
            self.cluster.as_deref(),
            &asked.exclude,
            asked.dry_run,
        )
        .await?;
        Ok(Response::new(pb::RebalanceReplicasResponse {
            moves: moves
                .into_iter()
                .map(|m| pb::ReplicaMove {
                    tenant: m.tenant,
                    topic: m.topic,
                    partition: m.partition,
                    from: m.from,
                    to: m.to,
                })
                .collect(),
        }))
    }

    #[instrument(skip_all, fields(node_id = request.get_ref().node_id))]
    async fn remove_node(
        &self,
        request: Request<pb::RemoveNodeRequest>,
    ) -> Reply<pb::MembershipChange> {
        let principal = principal(&request)?;
        let id = request.into_inner().node_id;
        let changed = crate::rest::cluster::remove_node(
            &self.engine,
            &principal,
            self.cluster.as_deref(),
            id,
        )
        .await?;
        Ok(Response::new(pb::MembershipChange {
            voters: changed.voters,
            note: changed.note,
        }))
    }

    #[instrument(skip_all, fields(user = %request.get_ref().name))]
    async fn create_user(&self, request: Request<pb::CreateUserRequest>) -> Reply<pb::UserInfo> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let password = Some(r.password).filter(|p| !p.is_empty());
        let user = self
            .engine
            .create_user(&principal, &r.name, password)
            .await?;
        Ok(Response::new(pb::UserInfo::from(&*user)))
    }

    #[instrument(skip_all, fields(user = %request.get_ref().name))]
    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Reply<pb::DeleteUserResponse> {
        let principal = principal(&request)?;
        self.engine
            .delete_user(&principal, &request.get_ref().name)
            .await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Reply<pb::ListUsersResponse> {
        let principal = principal(&request)?;
        let users = self.engine.list_users(&principal)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.iter().map(|u| pb::UserInfo::from(&**u)).collect(),
        }))
    }

    #[instrument(skip_all, fields(user = %request.get_ref().name))]
    async fn set_password(
        &self,
        request: Request<pb::SetPasswordRequest>,
    ) -> Reply<pb::SetPasswordResponse> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        self.engine
            .set_password(&principal, &r.name, r.password)
            .await?;
        Ok(Response::new(pb::SetPasswordResponse {}))
    }

    async fn create_token(
        &self,
        request: Request<pb::CreateTokenRequest>,
    ) -> Reply<pb::CreateTokenResponse> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let user = Some(r.user.as_str()).filter(|u| !u.is_empty());
        let issued = self
            .engine
            .create_token(&principal, user, &r.description, r.ttl_ms)
            .await?;
        Ok(Response::new(pb::CreateTokenResponse {
            token: issued.token.to_string(),
            info: Some(pb::TokenInfo::from(&issued.record)),
        }))
    }

    async fn list_tokens(
        &self,
        request: Request<pb::ListTokensRequest>,
    ) -> Reply<pb::ListTokensResponse> {
        let principal = principal(&request)?;
        let user = Some(request.get_ref().user.as_str()).filter(|u| !u.is_empty());
        let tokens = self.engine.list_tokens(&principal, user)?;
        Ok(Response::new(pb::ListTokensResponse {
            tokens: tokens.iter().map(|t| pb::TokenInfo::from(&**t)).collect(),
        }))
    }

    async fn revoke_tokens(
        &self,
        request: Request<pb::RevokeTokensRequest>,
    ) -> Reply<pb::RevokeTokensResponse> {
        let principal = principal(&request)?;
        self.engine
            .revoke_tokens(&principal, &request.get_ref().ids)
            .await?;
        Ok(Response::new(pb::RevokeTokensResponse {}))
    }

    #[instrument(skip_all, fields(role = %request.get_ref().name))]
    async fn create_role(&self, request: Request<pb::CreateRoleRequest>) -> Reply<pb::RoleInfo> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let permissions = r
            .permissions
            .into_iter()
            .map(convert::permission)
            .collect::<crate::error::Result<Vec<_>>>()?;
        let role = self
            .engine
            .create_role(&principal, &r.name, permissions)
            .await?;
        Ok(Response::new(role.into()))
    }

    #[instrument(skip_all, fields(role = %request.get_ref().name))]
    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Reply<pb::DeleteRoleResponse> {
        let principal = principal(&request)?;
        self.engine
            .delete_role(&principal, &request.get_ref().name)
            .await?;
        Ok(Response::new(pb::DeleteRoleResponse {}))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Reply<pb::ListRolesResponse> {
        let principal = principal(&request)?;
        let roles = self.engine.list_roles(&principal)?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.into_iter().map(Into::into).collect(),
        }))
    }

    #[instrument(skip_all, fields(user = %request.get_ref().user, role = %request.get_ref().role))]
    async fn bind_role(&self, request: Request<pb::BindRoleRequest>) -> Reply<pb::RoleBinding> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let scope = convert::binding_scope(r.scope)?;
        let binding = self
            .engine
            .bind_role(&principal, &r.user, &r.role, scope)
            .await?;
        Ok(Response::new(binding.into()))
    }

    #[instrument(skip_all, fields(user = %request.get_ref().user, role = %request.get_ref().role))]
    async fn unbind_role(
        &self,
        request: Request<pb::UnbindRoleRequest>,
    ) -> Reply<pb::UnbindRoleResponse> {
        let principal = principal(&request)?;
        let r = request.get_ref();
        self.engine
            .unbind_role(&principal, &r.user, &r.role)
            .await?;
        Ok(Response::new(pb::UnbindRoleResponse {}))
    }

    async fn list_role_bindings(
        &self,
        request: Request<pb::ListRoleBindingsRequest>,
    ) -> Reply<pb::ListRoleBindingsResponse> {
        let principal = principal(&request)?;
        let user = Some(request.get_ref().user.as_str()).filter(|u| !u.is_empty());
        let bindings = self.engine.list_role_bindings(&principal, user)?;
        Ok(Response::new(pb::ListRoleBindingsResponse {
            bindings: bindings.into_iter().map(Into::into).collect(),
        }))
    }

    #[instrument(skip_all, fields(tenant = %request.get_ref().name))]
    async fn create_tenant(
        &self,
        request: Request<pb::CreateTenantRequest>,
    ) -> Reply<pb::TenantInfo> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let quotas = convert::tenant_quotas(r.quotas.unwrap_or_default());
        let tenant = self
            .engine
            .create_tenant(&principal, &r.name, quotas)
            .await?;
        Ok(Response::new(tenant.into()))
    }

    #[instrument(skip_all, fields(tenant = %request.get_ref().name))]
    async fn delete_tenant(
        &self,
        request: Request<pb::DeleteTenantRequest>,
    ) -> Reply<pb::DeleteTenantResponse> {
        let principal = principal(&request)?;
        self.engine
            .delete_tenant(&principal, &request.get_ref().name)
            .await?;
        Ok(Response::new(pb::DeleteTenantResponse {}))
    }

    async fn list_tenants(
        &self,
        request: Request<pb::ListTenantsRequest>,
    ) -> Reply<pb::ListTenantsResponse> {
        let principal = principal(&request)?;
        let tenants = self.engine.list_tenants(&principal)?;
        Ok(Response::new(pb::ListTenantsResponse {
            tenants: tenants.into_iter().map(Into::into).collect(),
        }))
    }

    async fn describe_tenant(
        &self,
        request: Request<pb::DescribeTenantRequest>,
    ) -> Reply<pb::TenantInfo> {
        let principal = principal(&request)?;
        let tenant = self
            .engine
            .describe_tenant(&principal, Some(request.get_ref().name.as_str()))?;
        Ok(Response::new(tenant.into()))
    }

    #[instrument(skip_all, fields(tenant = %request.get_ref().name))]
    async fn set_tenant_quotas(
        &self,
        request: Request<pb::SetTenantQuotasRequest>,
    ) -> Reply<pb::TenantInfo> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let quotas = convert::tenant_quotas(r.quotas.unwrap_or_default());
        let tenant = self
            .engine
            .set_tenant_quotas(&principal, &r.name, quotas, &r.reset)
            .await?;
        Ok(Response::new(tenant.into()))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Reply<pb::ListAuditEventsResponse> {
        let principal = principal(&request)?;
        let r = request.into_inner();
        let nonempty = |s: String| Some(s).filter(|s| !s.is_empty());
        let query = AuditQuery {
            since_ms: r.since_ms,
            until_ms: r.until_ms,
            actor: nonempty(r.actor),
            action_prefix: nonempty(r.action_prefix),
            outcome: nonempty(r.outcome)
                .map(|o| audit::parse_outcome(&o))
                .transpose()?,
            tenant: None,
            limit: r.limit,
            page_token: nonempty(r.page_token),
        };
        let page = self.engine.list_audit(&principal, query).await?;
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: page
                .records
                .into_iter()
                .map(|(id, record)| convert::audit_event(id, record))
                .collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }
}
