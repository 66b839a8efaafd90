//! The rules of the authorization matrix: every operation the broker serves, what it needs
//! (docs/adr/0004-security.md §6) and how to call it. They also render `docs/security.md`'s
//! permission table.

use futures::future::BoxFuture;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_proto::v1::auth_client::AuthClient;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use tonic::transport::Channel;

use super::harness::{
    Names, Outcome, PASSWORD, batch, consume, earliest, grpc_outcome, permission, publish_stream,
    with_token,
};

/// What an operation needs.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// Each of these permissions (`"<action> <resource>"`), checked before any lookup.
    Needs(&'static [&'static str]),
    /// Any authenticated caller; the answer lists only what it may `Describe`. The string is a
    /// placeholder of a fixture the right role sees and others do not (empty: none to look for).
    Filtered(&'static str),
    /// Any authenticated caller.
    Authenticated,
    /// No caller needed.
    Public,
}

/// How to call an operation.
pub enum Call {
    /// A gRPC call, built from the names it acts on, with an optional bearer token.
    Grpc(GrpcCall),
    /// An HTTP request: the path (placeholders: see [`Names::fill`]) and an optional JSON body.
    /// The method is the operation's.
    Http {
        path: &'static str,
        body: Option<&'static str>,
    },
    /// A WebSocket handshake on the path.
    WebSocket { path: &'static str },
}

pub type GrpcCall = fn(Channel, Names, Option<String>) -> BoxFuture<'static, Outcome>;

pub struct Rule {
    /// `/rapidmq.v1.Admin/CreateTopic`, or `GET /v1/topics/{topic}`.
    pub op: &'static str,
    pub check: Check,
    pub call: Call,
    /// The right role's call changes or deletes what it names: it gets fresh fixtures.
    pub destructive: bool,
    /// What the table in `docs/security.md` adds about the check.
    pub note: &'static str,
}

impl Rule {
    pub fn note(self, note: &'static str) -> Rule {
        Rule { note, ..self }
    }
}

pub fn rule(op: &'static str, check: Check, call: Call) -> Rule {
    Rule {
        op,
        check,
        call,
        destructive: false,
        note: "",
    }
}

pub fn destructive(op: &'static str, check: Check, call: Call) -> Rule {
    Rule {
        destructive: true,
        ..rule(op, check, call)
    }
}

pub fn http(path: &'static str) -> Call {
    Call::Http { path, body: None }
}

pub fn http_json(path: &'static str, body: &'static str) -> Call {
    Call::Http {
        path,
        body: Some(body),
    }
}

/// A gRPC call: `unary!(Client, method, |names| request)`.
macro_rules! unary {
    ($client:ident, $method:ident, |$n:ident| $request:expr) => {
        Call::Grpc(|channel: Channel, $n: Names, token: Option<String>| {
            let _ = &$n;
            Box::pin(async move {
                let request = with_token($request, token.as_deref());
                grpc_outcome($client::new(channel).$method(request).await)
            })
        })
    };
}

pub use Check::{Authenticated, Filtered, Needs, Public};

pub const PUBLISH_TOPIC: Check = Needs(&["publish topic"]);
pub const CONSUME_SUB: Check = Needs(&["consume subscription"]);
pub const ADMIN_TENANT: Check = Needs(&["admin tenant"]);
pub const ADMIN_CLUSTER: Check = Needs(&["admin cluster"]);

pub const OTHER_TENANT: &str = "the caller's own tenant; another one needs `admin` on the \
     cluster, and without it is answered `TENANT_NOT_FOUND`, as a missing one";

pub const SUBSCRIBE: &str = "creating the subscription by subscribing also needs `create` on it (and \
     in queue mode `publish` on its dead-letter topic); a tail without a subscription needs \
     `consume` on the topic";
pub const QUEUE_DLQ: &str = "queue mode: + `publish` on its dead-letter topic";
pub const DLQ: &str = "on the dead-letter topic";
pub const OWN: &str = "one's own: authenticated";
pub const REPLAY: &str = "`consume` on the dead-letter topic + `publish` on each original topic";
pub const AUDIT: &str = "the tenant's records; `admin cluster` sees every tenant's";

/// Every operation and what it needs (docs/adr/0004-security.md §6).
pub fn rules() -> Vec<Rule> {
    vec![
        // ---- gRPC Messaging ----
        rule(
            "/rapidmq.v1.Messaging/Publish",
            PUBLISH_TOPIC,
            unary!(MessagingClient, publish, |n| pb::PublishRequest {
                topic: n.topic.clone(),
                batch: batch(),
                ..Default::default()
            }),
        ),
        rule(
            "/rapidmq.v1.Messaging/PublishStream",
            PUBLISH_TOPIC,
            Call::Grpc(|channel, n, token| Box::pin(publish_stream(channel, n, token))),
        ),
        rule(
            "/rapidmq.v1.Messaging/Consume",
            CONSUME_SUB,
            Call::Grpc(|channel, n, token| Box::pin(consume(channel, n, token))),
        )
        .note(SUBSCRIBE),
        rule(
            "/rapidmq.v1.Messaging/Fetch",
            Needs(&["consume topic"]),
            unary!(MessagingClient, fetch, |n| pb::FetchRequest {
                topic: n.topic.clone(),
                max_messages: 1,
                ..Default::default()
            }),
        ),
        rule(
            "/rapidmq.v1.Messaging/GetMetadata",
            Needs(&["describe topic"]),
            unary!(MessagingClient, get_metadata, |n| pb::GetMetadataRequest {
                topics: vec![n.topic.clone()],
            }),
        ),
        rule(
            "/rapidmq.v1.Messaging/CommitOffset",
            CONSUME_SUB,
            unary!(MessagingClient, commit_offset, |n| {
                pb::CommitOffsetRequest {
                    topic: n.topic.clone(),
                    subscription: n.sub.clone(),
                    offsets: vec![pb::PartitionOffset {
                        partition: 0,
                        offset: 0,
                    }],
                }
            }),
        ),
        // ---- gRPC Admin: topics and subscriptions ----
        rule(
            "/rapidmq.v1.Admin/CreateTopic",
            Needs(&["create topic"]),
            unary!(AdminClient, create_topic, |n| pb::CreateTopicRequest {
                name: n.topic.clone(),
                config: None,
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/ListTopics",
            Filtered("{topic}"),
            unary!(AdminClient, list_topics, |n| pb::ListTopicsRequest {}),
        ),
        rule(
            "/rapidmq.v1.Admin/DescribeTopic",
            Needs(&["describe topic"]),
            unary!(AdminClient, describe_topic, |n| pb::DescribeTopicRequest {
                name: n.topic.clone(),
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/AlterTopic",
            Needs(&["alter topic"]),
            unary!(AdminClient, alter_topic, |n| pb::AlterTopicRequest {
                name: n.topic.clone(),
                config: Some(pb::TopicConfig {
                    retention_ms: Some(3_600_000),
                    ..Default::default()
                }),
            }),
        ),
        destructive(
            "/rapidmq.v1.Admin/DeleteTopic",
            Needs(&["delete topic"]),
            unary!(AdminClient, delete_topic, |n| pb::DeleteTopicRequest {
                name: n.topic.clone(),
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/CreateSubscription",
            Needs(&["create subscription"]),
            unary!(AdminClient, create_subscription, |n| {
                pb::CreateSubscriptionRequest {
                    topic: n.topic.clone(),
                    name: n.sub.clone(),
                    ..Default::default()
                }
            }),
        )
        .note(QUEUE_DLQ),
        rule(
            "/rapidmq.v1.Admin/ListSubscriptions",
            Filtered("{subscription}"),
            unary!(AdminClient, list_subscriptions, |n| {
                pb::ListSubscriptionsRequest {
                    topic: n.topic.clone(),
                }
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/DescribeSubscription",
            Needs(&["describe subscription"]),
            unary!(AdminClient, describe_subscription, |n| {
                pb::DescribeSubscriptionRequest {
                    topic: n.topic.clone(),
                    name: n.sub.clone(),
                }
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/SeekSubscription",
            Needs(&["alter subscription"]),
            unary!(AdminClient, seek_subscription, |n| {
                pb::SeekSubscriptionRequest {
                    topic: n.topic.clone(),
                    name: n.sub.clone(),
                    position: Some(earliest()),
                    partition: None,
                }
            }),
        ),
        destructive(
            "/rapidmq.v1.Admin/DeleteSubscription",
            Needs(&["delete subscription"]),
            unary!(AdminClient, delete_subscription, |n| {
                pb::DeleteSubscriptionRequest {
                    topic: n.topic.clone(),
                    name: n.sub.clone(),
                }
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/ListDeadLetters",
            Needs(&["consume topic"]),
            unary!(AdminClient, list_dead_letters, |n| {
                pb::ListDeadLettersRequest {
                    dead_letter_topic: n.dlq.clone(),
                    ..Default::default()
                }
            }),
        )
        .note(DLQ),
        rule(
            "/rapidmq.v1.Admin/ReplayDeadLetters",
            Needs(&["consume topic", "publish topic"]),
            unary!(AdminClient, replay_dead_letters, |n| {
                pb::ReplayDeadLettersRequest {
                    dead_letter_topic: n.dlq.clone(),
                    ..Default::default()
                }
            }),
        )
        .note(REPLAY),
        rule(
            "/rapidmq.v1.Admin/GetStatus",
            Needs(&["describe tenant"]),
            unary!(AdminClient, get_status, |n| pb::GetStatusRequest {}),
        ),
        rule(
            "/rapidmq.v1.Admin/GetClusterStatus",
            Needs(&["describe cluster"]),
            unary!(AdminClient, get_cluster_status, |n| {
                pb::GetClusterStatusRequest {}
            }),
        ),
        // A single-node broker answers the right role INVALID_ARGUMENT (not in cluster mode).
        rule(
            "/rapidmq.v1.Admin/AddNode",
            ADMIN_CLUSTER,
            unary!(AdminClient, add_node, |n| pb::AddNodeRequest {
                node_id: 2,
                cluster_addr: "127.0.0.1:7002".into(),
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/RemoveNode",
            ADMIN_CLUSTER,
            unary!(AdminClient, remove_node, |n| pb::RemoveNodeRequest {
                node_id: 2
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/RebalanceReplicas",
            ADMIN_CLUSTER,
            unary!(AdminClient, rebalance_replicas, |n| {
                pb::RebalanceReplicasRequest {
                    exclude: Vec::new(),
                    dry_run: true,
                }
            }),
        ),
        // A single-node broker answers the right role 0 transfers.
        rule(
            "/rapidmq.v1.Admin/RebalanceLeaders",
            ADMIN_CLUSTER,
            unary!(AdminClient, rebalance_leaders, |n| {
                pb::RebalanceLeadersRequest {}
            }),
        ),
        // ---- gRPC Admin: users, tokens, roles ----
        rule(
            "/rapidmq.v1.Admin/CreateUser",
            ADMIN_TENANT,
            unary!(AdminClient, create_user, |n| pb::CreateUserRequest {
                name: n.user.clone(),
                password: String::new(),
            }),
        ),
        destructive(
            "/rapidmq.v1.Admin/DeleteUser",
            ADMIN_TENANT,
            unary!(AdminClient, delete_user, |n| pb::DeleteUserRequest {
                name: n.user.clone(),
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/ListUsers",
            ADMIN_TENANT,
            unary!(AdminClient, list_users, |n| pb::ListUsersRequest {}),
        ),
        rule(
            "/rapidmq.v1.Admin/ListAuditEvents",
            ADMIN_TENANT,
            unary!(AdminClient, list_audit_events, |n| {
                pb::ListAuditEventsRequest::default()
            }),
        )
        .note(AUDIT),
        rule(
            "/rapidmq.v1.Admin/SetPassword",
            ADMIN_TENANT,
            unary!(AdminClient, set_password, |n| pb::SetPasswordRequest {
                name: n.user.clone(),
                password: PASSWORD.into(),
            }),
        )
        .note(OWN),
        rule(
            "/rapidmq.v1.Admin/CreateToken",
            ADMIN_TENANT,
            unary!(AdminClient, create_token, |n| pb::CreateTokenRequest {
                user: n.user.clone(),
                ..Default::default()
            }),
        )
        .note(OWN),
        rule(
            "/rapidmq.v1.Admin/ListTokens",
            ADMIN_TENANT,
            unary!(AdminClient, list_tokens, |n| pb::ListTokensRequest {
                user: n.user.clone(),
            }),
        )
        .note(OWN),
        destructive(
            "/rapidmq.v1.Admin/RevokeTokens",
            ADMIN_TENANT,
            unary!(AdminClient, revoke_tokens, |n| pb::RevokeTokensRequest {
                ids: vec![n.token_id.clone()],
            }),
        )
        .note(OWN),
        rule(
            "/rapidmq.v1.Admin/CreateRole",
            ADMIN_TENANT,
            unary!(AdminClient, create_role, |n| pb::CreateRoleRequest {
                name: n.role.clone(),
                permissions: vec![permission("allow describe topic:*")],
            }),
        ),
        destructive(
            "/rapidmq.v1.Admin/DeleteRole",
            ADMIN_TENANT,
            unary!(AdminClient, delete_role, |n| pb::DeleteRoleRequest {
                name: n.role.clone(),
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/ListRoles",
            ADMIN_TENANT,
            unary!(AdminClient, list_roles, |n| pb::ListRolesRequest {}),
        ),
        rule(
            "/rapidmq.v1.Admin/BindRole",
            ADMIN_TENANT,
            unary!(AdminClient, bind_role, |n| pb::BindRoleRequest {
                user: n.user.clone(),
                role: n.role.clone(),
                scope: pb::BindingScope::Tenant.into(),
            }),
        ),
        destructive(
            "/rapidmq.v1.Admin/UnbindRole",
            ADMIN_TENANT,
            unary!(AdminClient, unbind_role, |n| pb::UnbindRoleRequest {
                user: n.user.clone(),
                role: n.role.clone(),
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/ListRoleBindings",
            ADMIN_TENANT,
            unary!(AdminClient, list_role_bindings, |n| {
                pb::ListRoleBindingsRequest {
                    user: n.user.clone(),
                }
            }),
        )
        .note(OWN),
        rule(
            "/rapidmq.v1.Admin/CreateTenant",
            ADMIN_CLUSTER,
            unary!(AdminClient, create_tenant, |n| pb::CreateTenantRequest {
                name: n.tenant.clone(),
                quotas: None,
            }),
        ),
        destructive(
            "/rapidmq.v1.Admin/DeleteTenant",
            ADMIN_CLUSTER,
            unary!(AdminClient, delete_tenant, |n| pb::DeleteTenantRequest {
                name: n.tenant.clone(),
            }),
        ),
        rule(
            "/rapidmq.v1.Admin/ListTenants",
            ADMIN_CLUSTER,
            unary!(AdminClient, list_tenants, |n| pb::ListTenantsRequest {}),
        ),
        rule(
            "/rapidmq.v1.Admin/DescribeTenant",
            Needs(&["describe tenant"]),
            unary!(AdminClient, describe_tenant, |n| {
                pb::DescribeTenantRequest {
                    name: String::new(),
                }
            }),
        )
        .note(OTHER_TENANT),
        rule(
            "/rapidmq.v1.Admin/SetTenantQuotas",
            ADMIN_CLUSTER,
            unary!(AdminClient, set_tenant_quotas, |n| {
                pb::SetTenantQuotasRequest {
                    name: n.tenant.clone(),
                    quotas: Some(pb::TenantQuotas {
                        max_topics: Some(5),
                        ..Default::default()
                    }),
                    reset: Vec::new(),
                }
            }),
        ),
        // ---- gRPC Auth ----
        rule(
            "/rapidmq.v1.Auth/Login",
            Public,
            unary!(AuthClient, login, |n| pb::LoginRequest {
                user: n.user.clone(),
                password: PASSWORD.into(),
            }),
        ),
        rule(
            "/rapidmq.v1.Auth/WhoAmI",
            Authenticated,
            unary!(AuthClient, who_am_i, |n| pb::WhoAmIRequest {}),
        ),
        // ---- REST ----
        rule(
            "GET /v1/status",
            Needs(&["describe tenant"]),
            http("/v1/status"),
        ),
        rule(
            "GET /v1/cluster",
            Needs(&["describe cluster"]),
            http("/v1/cluster"),
        ),
        rule(
            "POST /v1/cluster/nodes",
            ADMIN_CLUSTER,
            http_json(
                "/v1/cluster/nodes",
                r#"{"id": 2, "cluster_addr": "127.0.0.1:7002"}"#,
            ),
        ),
        rule(
            "DELETE /v1/cluster/nodes/{id}",
            ADMIN_CLUSTER,
            http("/v1/cluster/nodes/2"),
        ),
        rule(
            "POST /v1/cluster/rebalance-leaders",
            ADMIN_CLUSTER,
            http("/v1/cluster/rebalance-leaders"),
        ),
        rule(
            "POST /v1/cluster/rebalance-replicas",
            ADMIN_CLUSTER,
            http_json("/v1/cluster/rebalance-replicas", r#"{"dry_run": true}"#),
        ),
        rule(
            "GET /v1/metadata",
            Needs(&["describe topic"]),
            http("/v1/metadata?topics={topic}"),
        ),
        rule(
            "GET /v1/flow-events",
            Filtered("{topic}"),
            http("/v1/flow-events"),
        ),
        rule(
            "POST /v1/auth/login",
            Public,
            http_json(
                "/v1/auth/login",
                r#"{"user": "{user}", "password": "authz-password-1"}"#,
            ),
        ),
        rule(
            "GET /v1/auth/whoami",
            Authenticated,
            http("/v1/auth/whoami"),
        ),
        rule("GET /v1/users", ADMIN_TENANT, http("/v1/users")),
        rule(
            "POST /v1/users",
            ADMIN_TENANT,
            http_json("/v1/users", r#"{"name": "{user}"}"#),
        ),
        destructive(
            "DELETE /v1/users/{user}",
            ADMIN_TENANT,
            http("/v1/users/{user}"),
        ),
        rule(
            "PUT /v1/users/{user}/password",
            ADMIN_TENANT,
            http_json(
                "/v1/users/{user}/password",
                r#"{"password": "authz-password-1"}"#,
            ),
        )
        .note(OWN),
        rule(
            "GET /v1/users/{user}/tokens",
            ADMIN_TENANT,
            http("/v1/users/{user}/tokens"),
        )
        .note(OWN),
        rule(
            "POST /v1/users/{user}/tokens",
            ADMIN_TENANT,
            http_json("/v1/users/{user}/tokens", "{}"),
        )
        .note(OWN),
        destructive(
            "DELETE /v1/tokens/{id}",
            ADMIN_TENANT,
            http("/v1/tokens/{id}"),
        )
        .note(OWN),
        rule("GET /v1/audit", ADMIN_TENANT, http("/v1/audit")).note(AUDIT),
        rule(
            "GET /v1/audit/export",
            ADMIN_TENANT,
            http("/v1/audit/export"),
        )
        .note(AUDIT),
        rule("GET /v1/roles", ADMIN_TENANT, http("/v1/roles")),
        rule(
            "POST /v1/roles",
            ADMIN_TENANT,
            http_json(
                "/v1/roles",
                r#"{"name": "{role}", "permissions": [{"effect": "allow", "actions": ["describe"], "resource": "topic", "pattern": "t", "pattern_type": "literal"}]}"#,
            ),
        ),
        destructive(
            "DELETE /v1/roles/{role}",
            ADMIN_TENANT,
            http("/v1/roles/{role}"),
        ),
        rule(
            "GET /v1/role-bindings",
            ADMIN_TENANT,
            http("/v1/role-bindings?user={user}"),
        )
        .note(OWN),
        rule(
            "POST /v1/role-bindings",
            ADMIN_TENANT,
            http_json(
                "/v1/role-bindings",
                r#"{"user": "{user}", "role": "{role}"}"#,
            ),
        ),
        destructive(
            "DELETE /v1/role-bindings/{user}/{role}",
            ADMIN_TENANT,
            http("/v1/role-bindings/{user}/{role}"),
        ),
        rule("GET /v1/tenants", ADMIN_CLUSTER, http("/v1/tenants")),
        rule(
            "POST /v1/tenants",
            ADMIN_CLUSTER,
            http_json("/v1/tenants", r#"{"name": "{tenant}"}"#),
        ),
        rule(
            "GET /v1/tenants/{tenant}",
            Needs(&["describe tenant"]),
            http("/v1/tenants/default"),
        )
        .note(OTHER_TENANT),
        destructive(
            "DELETE /v1/tenants/{tenant}",
            ADMIN_CLUSTER,
            http("/v1/tenants/{tenant}"),
        ),
        rule(
            "PATCH /v1/tenants/{tenant}/quotas",
            ADMIN_CLUSTER,
            http_json(
                "/v1/tenants/{tenant}/quotas",
                r#"{"quotas": {"max_topics": 5}}"#,
            ),
        ),
        rule("GET /v1/topics", Filtered("{topic}"), http("/v1/topics")),
        rule(
            "POST /v1/topics",
            Needs(&["create topic"]),
            http_json("/v1/topics", r#"{"name": "{topic}"}"#),
        ),
        rule(
            "GET /v1/topics/{topic}",
            Needs(&["describe topic"]),
            http("/v1/topics/{topic}"),
        ),
        rule(
            "PATCH /v1/topics/{topic}",
            Needs(&["alter topic"]),
            http_json("/v1/topics/{topic}", r#"{"retention_ms": 3600000}"#),
        ),
        destructive(
            "DELETE /v1/topics/{topic}",
            Needs(&["delete topic"]),
            http("/v1/topics/{topic}"),
        ),
        rule(
            "GET /v1/subscriptions",
            Filtered("{subscription}"),
            http("/v1/subscriptions"),
        ),
        rule(
            "GET /v1/topics/{topic}/subscriptions",
            Filtered("{subscription}"),
            http("/v1/topics/{topic}/subscriptions"),
        ),
        rule(
            "POST /v1/topics/{topic}/subscriptions",
            Needs(&["create subscription"]),
            http_json(
                "/v1/topics/{topic}/subscriptions",
                r#"{"name": "{subscription}"}"#,
            ),
        )
        .note(QUEUE_DLQ),
        rule(
            "GET /v1/topics/{topic}/subscriptions/{subscription}",
            Needs(&["describe subscription"]),
            http("/v1/topics/{topic}/subscriptions/{subscription}"),
        ),
        destructive(
            "DELETE /v1/topics/{topic}/subscriptions/{subscription}",
            Needs(&["delete subscription"]),
            http("/v1/topics/{topic}/subscriptions/{subscription}"),
        ),
        rule(
            "POST /v1/topics/{topic}/subscriptions/{subscription}/seek",
            Needs(&["alter subscription"]),
            http_json(
                "/v1/topics/{topic}/subscriptions/{subscription}/seek",
                r#"{"position": {"kind": "earliest"}}"#,
            ),
        ),
        rule(
            "POST /v1/topics/{topic}/message",
            PUBLISH_TOPIC,
            http_json("/v1/topics/{topic}/message", r#"{"value": "m"}"#),
        ),
        rule(
            "POST /v1/topics/{topic}/messages",
            PUBLISH_TOPIC,
            http_json(
                "/v1/topics/{topic}/messages",
                r#"{"messages": [{"value": "m"}]}"#,
            ),
        ),
        rule(
            "GET /v1/topics/{topic}/partitions/{partition}/messages",
            Needs(&["consume topic"]),
            http("/v1/topics/{topic}/partitions/0/messages?wait_ms=0"),
        ),
        rule(
            "GET /v1/topics/{topic}/subscriptions/{subscription}/messages",
            CONSUME_SUB,
            http("/v1/topics/{topic}/subscriptions/{queue}/messages?wait_ms=0"),
        ),
        rule(
            "POST /v1/topics/{topic}/subscriptions/{subscription}/ack",
            CONSUME_SUB,
            http_json(
                "/v1/topics/{topic}/subscriptions/{queue}/ack",
                r#"{"receipts": []}"#,
            ),
        ),
        rule(
            "POST /v1/topics/{topic}/subscriptions/{subscription}/nack",
            CONSUME_SUB,
            http_json(
                "/v1/topics/{topic}/subscriptions/{queue}/nack",
                r#"{"receipts": []}"#,
            ),
        ),
        rule(
            "POST /v1/topics/{topic}/subscriptions/{subscription}/extend",
            CONSUME_SUB,
            http_json(
                "/v1/topics/{topic}/subscriptions/{queue}/extend",
                r#"{"receipts": [], "extend_ms": 1000}"#,
            ),
        ),
        rule(
            "POST /v1/topics/{topic}/subscriptions/{subscription}/commit",
            CONSUME_SUB,
            http_json(
                "/v1/topics/{topic}/subscriptions/{subscription}/commit",
                r#"{"offsets": [{"partition": 0, "offset": 0}]}"#,
            ),
        ),
        rule(
            "GET /v1/topics/{topic}/subscriptions/{subscription}/events",
            CONSUME_SUB,
            http("/v1/topics/{topic}/subscriptions/{subscription}/events"),
        ),
        rule(
            "GET /v1/topics/{topic}/subscriptions/{subscription}/ws",
            CONSUME_SUB,
            Call::WebSocket {
                path: "/v1/topics/{topic}/subscriptions/{subscription}/ws",
            },
        ),
        rule(
            "GET /v1/topics/{topic}/dead-letters",
            Needs(&["consume topic"]),
            http("/v1/topics/{dlq}/dead-letters"),
        )
        .note(DLQ),
        rule(
            "POST /v1/topics/{topic}/dead-letters/replay",
            Needs(&["consume topic", "publish topic"]),
            http_json("/v1/topics/{dlq}/dead-letters/replay", "{}"),
        )
        .note(REPLAY),
        // ---- routes the authentication layer checks itself ----
        rule(
            "GET /metrics",
            Needs(&["describe cluster"]),
            http("/metrics"),
        )
        .note("none with `auth.metrics_open`"),
        rule("GET /", Needs(&["describe cluster"]), http("/"))
            .note("the dashboard, and everything under `/dashboard/`"),
        rule(
            "GET /v1/openapi.json",
            Authenticated,
            http("/v1/openapi.json"),
        )
        .note("none with `auth.docs_open`; also gRPC reflection"),
        rule("GET /v1/docs", Authenticated, http("/v1/docs")).note("none with `auth.docs_open`"),
    ]
}

/// Routes of the authentication layer's own table, which the OpenAPI document does not list.
pub const LAYER_ROUTES: &[&str] = &[
    "GET /metrics",
    "GET /",
    "GET /v1/openapi.json",
    "GET /v1/docs",
];
