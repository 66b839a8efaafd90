//! The authorization matrix (docs/adr/0004-security.md §6): every operation the broker serves,
//! run by every kind of caller against a real broker with `--auth`.
//!
//! Operations are enumerated, not listed by hand: every gRPC method of
//! `rapidmq_proto::FILE_DESCRIPTOR_SET` and every path × method of the served
//! `/v1/openapi.json`, plus the routes the authentication layer checks itself. Each needs a row
//! in [`rules`] (what it needs, and how to build a request); one without a row fails the test
//! by name. Each row runs as:
//! - anonymous → `UNAUTHENTICATED` / 401 (but public operations);
//! - a user without roles, and one whose role has everything but the action needed →
//!   `PERMISSION_DENIED` / 403, the same answer for an existing and a nonexistent name;
//! - a user whose role grants exactly what the row needs → no auth error.
//!
//! Lists are never refused: they show only what the caller may describe.
//!
//! The rows also render the permission table of `docs/security.md`; the test fails when the
//! document differs, and `UPDATE_DOCS=1` rewrites it.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use futures::future::BoxFuture;
use prost::Message as _;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_proto::v1::auth_client::AuthClient;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use rapidmq_proto::{ERROR_CODE_METADATA, ErrorCode};
use rapidmq_testkit::{BrokerOptions, TestBroker};
use serde_json::Value;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tonic::transport::Channel;

const PASSWORD: &str = "authz-password-1";
const DOCS_BEGIN: &str = "<!-- permission-table:begin -->";
const DOCS_END: &str = "<!-- permission-table:end -->";

// ---- the rules ----

/// What an operation needs.
#[derive(Debug, Clone, Copy)]
enum Check {
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
enum Call {
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

type GrpcCall = fn(Channel, Names, Option<String>) -> BoxFuture<'static, Outcome>;

struct Rule {
    /// `/rapidmq.v1.Admin/CreateTopic`, or `GET /v1/topics/{topic}`.
    op: &'static str,
    check: Check,
    call: Call,
    /// The right role's call changes or deletes what it names: it gets fresh fixtures.
    destructive: bool,
    /// What the table in `docs/security.md` adds about the check.
    note: &'static str,
}

impl Rule {
    fn note(self, note: &'static str) -> Rule {
        Rule { note, ..self }
    }
}

fn rule(op: &'static str, check: Check, call: Call) -> Rule {
    Rule {
        op,
        check,
        call,
        destructive: false,
        note: "",
    }
}

fn destructive(op: &'static str, check: Check, call: Call) -> Rule {
    Rule {
        destructive: true,
        ..rule(op, check, call)
    }
}

fn http(path: &'static str) -> Call {
    Call::Http { path, body: None }
}

fn http_json(path: &'static str, body: &'static str) -> Call {
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

use Check::{Authenticated, Filtered, Needs, Public};

const PUBLISH_TOPIC: Check = Needs(&["publish topic"]);
const CONSUME_SUB: Check = Needs(&["consume subscription"]);
const ADMIN_TENANT: Check = Needs(&["admin tenant"]);

const SUBSCRIBE: &str = "creating the subscription by subscribing also needs `create` on it (and \
     in queue mode `publish` on its dead-letter topic); a tail without a subscription needs \
     `consume` on the topic";
const QUEUE_DLQ: &str = "queue mode: + `publish` on its dead-letter topic";
const DLQ: &str = "on the dead-letter topic";
const OWN: &str = "one's own: authenticated";
const REPLAY: &str = "`consume` on the dead-letter topic + `publish` on each original topic";

/// Every operation and what it needs (docs/adr/0004-security.md §6).
fn rules() -> Vec<Rule> {
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
const LAYER_ROUTES: &[&str] = &[
    "GET /metrics",
    "GET /",
    "GET /v1/openapi.json",
    "GET /v1/docs",
];

// ---- the names an operation acts on ----

#[derive(Debug, Clone)]
struct Names {
    topic: String,
    /// A stream subscription of `topic`.
    sub: String,
    /// A queue subscription of `topic`, dead-lettering to `dlq`.
    queue: String,
    dlq: String,
    /// A user with the password [`PASSWORD`] and one API token, `token_id`.
    user: String,
    token_id: String,
    /// A custom role, bound to `user`.
    role: String,
}

impl Names {
    fn existing(suffix: &str) -> Names {
        Names {
            topic: format!("authz-topic{suffix}"),
            sub: format!("authz-sub{suffix}"),
            queue: format!("authz-queue{suffix}"),
            dlq: format!("authz-dlq{suffix}"),
            user: format!("authz-victim{suffix}"),
            token_id: String::new(),
            role: format!("authz-role{suffix}"),
        }
    }

    /// Names of nothing.
    fn ghost() -> Names {
        Names {
            topic: "ghost-topic".into(),
            sub: "ghost-sub".into(),
            queue: "ghost-queue".into(),
            dlq: "ghost-dlq".into(),
            user: "ghost-user".into(),
            token_id: "ghostghostgh".into(),
            role: "ghost-role".into(),
        }
    }

    fn fill(&self, template: &str) -> String {
        template
            .replace("{topic}", &self.topic)
            .replace("{subscription}", &self.sub)
            .replace("{queue}", &self.queue)
            .replace("{dlq}", &self.dlq)
            .replace("{user}", &self.user)
            .replace("{id}", &self.token_id)
            .replace("{role}", &self.role)
    }

    /// `text` with these names replaced by placeholders, so that answers about existing and
    /// nonexistent names compare equal when they say the same.
    fn blank(&self, text: &str) -> String {
        [
            (&self.topic, "{topic}"),
            (&self.sub, "{subscription}"),
            (&self.queue, "{queue}"),
            (&self.dlq, "{dlq}"),
            (&self.user, "{user}"),
            (&self.token_id, "{id}"),
            (&self.role, "{role}"),
        ]
        .iter()
        .filter(|(name, _)| !name.is_empty())
        .fold(text.to_string(), |text, (name, placeholder)| {
            text.replace(name.as_str(), placeholder)
        })
    }
}

// ---- outcomes ----

/// What a call answered: `code` is `None` on success.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Outcome {
    code: Option<ErrorCode>,
    /// The HTTP status (REST only).
    status: Option<u16>,
    message: String,
    /// The response (its `Debug` form for gRPC, the body for REST) on success.
    body: String,
}

impl Outcome {
    fn success(status: Option<u16>, body: String) -> Outcome {
        Outcome {
            code: None,
            status,
            message: String::new(),
            body,
        }
    }

    fn auth_error(&self) -> bool {
        matches!(
            self.code,
            Some(ErrorCode::Unauthenticated | ErrorCode::PermissionDenied)
        ) || matches!(self.status, Some(401 | 403))
    }

    fn blank(&self, names: &Names) -> Outcome {
        Outcome {
            message: names.blank(&self.message),
            body: names.blank(&self.body),
            ..self.clone()
        }
    }
}

fn grpc_outcome<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>) -> Outcome {
    match result {
        Ok(response) => Outcome::success(None, format!("{:?}", response.into_inner())),
        Err(status) => status_outcome(&status),
    }
}

fn status_outcome(status: &tonic::Status) -> Outcome {
    let code = status
        .metadata()
        .get(ERROR_CODE_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .and_then(ErrorCode::from_code);
    Outcome {
        code: Some(code.unwrap_or(ErrorCode::Internal)),
        status: None,
        message: format!("{:?}: {}", status.code(), status.message()),
        body: String::new(),
    }
}

fn error_outcome(error: &pb::Error) -> Outcome {
    Outcome {
        code: Some(ErrorCode::from_code(error.code).unwrap_or(ErrorCode::Internal)),
        status: None,
        message: error.message.clone(),
        body: String::new(),
    }
}

fn http_outcome(status: u16, body: String) -> Outcome {
    if status < 400 {
        return Outcome::success(Some(status), body);
    }
    let problem: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let code = problem["code"]
        .as_u64()
        .and_then(|c| u32::try_from(c).ok())
        .and_then(ErrorCode::from_code);
    Outcome {
        code: Some(code.unwrap_or(ErrorCode::Internal)),
        status: Some(status),
        message: problem["detail"].as_str().unwrap_or_default().to_string(),
        body,
    }
}

// ---- calls ----

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("a valid header"),
        );
    }
    request
}

fn batch() -> bytes::Bytes {
    pb::MessageBatch {
        messages: vec![pb::Message {
            value: bytes::Bytes::from_static(b"m"),
            ..Default::default()
        }],
        base_timestamp_ms: 1_700_000_000_000,
        compression: 0,
    }
    .encode_to_vec()
    .into()
}

fn earliest() -> pb::StartPosition {
    pb::StartPosition {
        kind: pb::StartKind::Earliest.into(),
        ..Default::default()
    }
}

fn permission(text: &str) -> pb::Permission {
    let permission: rapidmq_core::Permission = text.parse().expect("a permission");
    pb::Permission::from(&permission)
}

/// The first answer of a PublishStream with one request: the stream's status, or the
/// request's own result.
async fn publish_stream(channel: Channel, n: Names, token: Option<String>) -> Outcome {
    let request = pb::PublishStreamRequest {
        correlation_id: 1,
        request: Some(pb::PublishRequest {
            topic: n.topic.clone(),
            batch: batch(),
            ..Default::default()
        }),
    };
    let outbound = futures::stream::iter(vec![request]);
    let response = MessagingClient::new(channel)
        .publish_stream(with_token(outbound, token.as_deref()))
        .await;
    let mut inbound = match response {
        Ok(response) => response.into_inner(),
        Err(status) => return status_outcome(&status),
    };
    match inbound.message().await {
        Ok(Some(pb::PublishStreamResponse {
            result: Some(pb::publish_stream_response::Result::Error(error)),
            ..
        })) => error_outcome(&error),
        Ok(Some(response)) => Outcome::success(None, format!("{response:?}")),
        Ok(None) => Outcome::success(None, String::new()),
        Err(status) => status_outcome(&status),
    }
}

/// A Consume stream's answer to Subscribe on the stream subscription.
async fn consume(channel: Channel, n: Names, token: Option<String>) -> Outcome {
    let subscribe = pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscribe(pb::Subscribe {
            topic: n.topic.clone(),
            subscription: n.sub.clone(),
            credits: 1,
            consumer_name: "authz".into(),
            ..Default::default()
        })),
    };
    let outbound = futures::stream::iter(vec![subscribe]);
    let response = MessagingClient::new(channel)
        .consume(with_token(outbound, token.as_deref()))
        .await;
    match response {
        Ok(response) => {
            let mut inbound = response.into_inner();
            match inbound.message().await {
                Ok(Some(pb::ConsumeResponse {
                    kind: Some(pb::consume_response::Kind::Error(error)),
                })) => error_outcome(&error),
                Ok(first) => Outcome::success(None, format!("{first:?}")),
                Err(status) => status_outcome(&status),
            }
        }
        Err(status) => status_outcome(&status),
    }
}

/// A broker with `--auth`, its bootstrap admin's token, and clients.
struct Matrix {
    broker: TestBroker,
    channel: Channel,
    http: reqwest::Client,
    admin: String,
    /// Users (and their tokens) holding exactly a set of permissions, by that set. Each user's
    /// one role has the user's name.
    callers: HashMap<Vec<String>, (String, String)>,
}

impl Matrix {
    async fn start() -> Matrix {
        let admin = rapidmq_broker::auth::Token::generate()
            .expect("a token")
            .to_string();
        let broker = TestBroker::start_with(BrokerOptions {
            env: vec![
                ("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".into(), admin.clone()),
                // Every publish leaves flow events, so the flow-event list has items to filter.
                (
                    "RAPIDMQ_OBSERVABILITY__FLOW_ALL_MESSAGES".into(),
                    "true".into(),
                ),
            ],
            args: vec!["--auth".into()],
        });
        let channel = Channel::from_shared(broker.grpc_url())
            .expect("a URL")
            .connect()
            .await
            .expect("connect to the broker");
        Matrix {
            broker,
            channel,
            http: reqwest::Client::new(),
            admin,
            callers: HashMap::new(),
        }
    }

    async fn run(&self, rule: &Rule, names: &Names, token: Option<&str>) -> Outcome {
        let token = token.map(str::to_string);
        match &rule.call {
            Call::Grpc(call) => call(self.channel.clone(), names.clone(), token).await,
            Call::Http { path, body } => {
                let (method, _) = rule.op.split_once(' ').expect("METHOD /path");
                let method: reqwest::Method = method.parse().expect("an HTTP method");
                let url = format!("{}{}", self.broker.http_url(), names.fill(path));
                let mut request = self.http.request(method, url);
                if let Some(token) = &token {
                    request = request.bearer_auth(token);
                }
                if let Some(body) = body {
                    request = request
                        .header("content-type", "application/json")
                        .body(names.fill(body));
                }
                let response = request.send().await.expect("an HTTP answer");
                let status = response.status().as_u16();
                // A live stream (SSE) answers its headers and then never ends: its status says
                // enough.
                let streaming = response
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"));
                let body = if streaming {
                    String::new()
                } else {
                    response.text().await.unwrap_or_default()
                };
                http_outcome(status, body)
            }
            Call::WebSocket { path } => {
                let url = format!(
                    "{}{}",
                    self.broker.http_url().replacen("http", "ws", 1),
                    names.fill(path)
                );
                let mut request = url.into_client_request().expect("a WebSocket request");
                if let Some(token) = &token {
                    request.headers_mut().insert(
                        "authorization",
                        format!("Bearer {token}").parse().expect("a header"),
                    );
                }
                match tokio_tungstenite::connect_async(request).await {
                    Ok((_socket, response)) => {
                        Outcome::success(Some(response.status().as_u16()), String::new())
                    }
                    Err(tungstenite::Error::Http(response)) => {
                        let body = response
                            .body()
                            .as_deref()
                            .map(|b| String::from_utf8_lossy(b).into_owned())
                            .unwrap_or_default();
                        http_outcome(response.status().as_u16(), body)
                    }
                    Err(err) => panic!("WebSocket handshake failed: {err}"),
                }
            }
        }
    }

    fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    /// Creates the topic, subscriptions, dead-letter topic, user, token and role `names` name
    /// (and fills in the token id).
    async fn fixtures(&self, names: &mut Names) {
        let n = names.clone();
        let admin = &self.admin;
        let mut client = self.admin();
        for topic in [&n.topic, &n.dlq] {
            let request = pb::CreateTopicRequest {
                name: topic.clone(),
                config: Some(pb::TopicConfig {
                    partitions: Some(1),
                    ..Default::default()
                }),
            };
            client
                .create_topic(with_token(request, Some(admin)))
                .await
                .expect("create a topic");
        }
        MessagingClient::new(self.channel.clone())
            .publish(with_token(
                pb::PublishRequest {
                    topic: n.topic.clone(),
                    batch: batch(),
                    ..Default::default()
                },
                Some(admin),
            ))
            .await
            .expect("publish");
        let stream = pb::CreateSubscriptionRequest {
            topic: n.topic.clone(),
            name: n.sub.clone(),
            start: Some(earliest()),
            ..Default::default()
        };
        client
            .create_subscription(with_token(stream, Some(admin)))
            .await
            .expect("create a stream subscription");
        let queue = pb::CreateSubscriptionRequest {
            topic: n.topic.clone(),
            name: n.queue.clone(),
            mode: pb::SubscriptionMode::Queue.into(),
            queue: Some(pb::QueueSettings {
                dead_letter_topic: Some(n.dlq.clone()),
                ..Default::default()
            }),
            ..Default::default()
        };
        client
            .create_subscription(with_token(queue, Some(admin)))
            .await
            .expect("create a queue subscription");
        let user = pb::CreateUserRequest {
            name: n.user.clone(),
            password: PASSWORD.into(),
        };
        client
            .create_user(with_token(user, Some(admin)))
            .await
            .expect("create a user");
        let token = pb::CreateTokenRequest {
            user: n.user.clone(),
            ..Default::default()
        };
        let token = client
            .create_token(with_token(token, Some(admin)))
            .await
            .expect("create a token")
            .into_inner();
        names.token_id = token.info.expect("token info").id;
        let role = pb::CreateRoleRequest {
            name: n.role.clone(),
            permissions: vec![permission("allow describe topic:*")],
        };
        client
            .create_role(with_token(role, Some(admin)))
            .await
            .expect("create a role");
        let bind = pb::BindRoleRequest {
            user: n.user.clone(),
            role: n.role.clone(),
            scope: pb::BindingScope::Tenant.into(),
        };
        client
            .bind_role(with_token(bind, Some(admin)))
            .await
            .expect("bind a role");
    }

    /// The token of a user whose one role holds exactly `permissions` (text form); no role for
    /// none. Bound at cluster scope when a permission is on the cluster.
    async fn caller(&mut self, permissions: Vec<String>) -> String {
        self.caller_and_name(permissions).await.1
    }

    /// [`Matrix::caller`]'s user name (also its role's) and token.
    async fn caller_and_name(&mut self, permissions: Vec<String>) -> (String, String) {
        if let Some(caller) = self.callers.get(&permissions) {
            return caller.clone();
        }
        let name = format!("authz-caller-{}", self.callers.len());
        let admin = self.admin.clone();
        let mut client = self.admin();
        let user = pb::CreateUserRequest {
            name: name.clone(),
            password: String::new(),
        };
        client
            .create_user(with_token(user, Some(&admin)))
            .await
            .expect("create a caller");
        if !permissions.is_empty() {
            let role = pb::CreateRoleRequest {
                name: name.clone(),
                permissions: permissions.iter().map(|p| permission(p)).collect(),
            };
            client
                .create_role(with_token(role, Some(&admin)))
                .await
                .expect("create a caller's role");
            let cluster = permissions.iter().any(|p| p.ends_with(" cluster"));
            let scope = if cluster {
                pb::BindingScope::Cluster
            } else {
                pb::BindingScope::Tenant
            };
            let bind = pb::BindRoleRequest {
                user: name.clone(),
                role: name.clone(),
                scope: scope.into(),
            };
            client
                .bind_role(with_token(bind, Some(&admin)))
                .await
                .expect("bind a caller's role");
        }
        let token = pb::CreateTokenRequest {
            user: name.clone(),
            ..Default::default()
        };
        let token = client
            .create_token(with_token(token, Some(&admin)))
            .await
            .expect("create a caller's token")
            .into_inner()
            .token;
        self.callers
            .insert(permissions, (name.clone(), token.clone()));
        (name, token)
    }
}

/// `"publish topic"` as a permission granting it on every name.
fn grant(need: &str) -> String {
    let (action, resource) = need.split_once(' ').expect("<action> <resource>");
    match resource {
        "topic" | "subscription" => format!("allow {action} {resource}:*"),
        _ => format!("allow {action} {resource}"),
    }
}

/// Everything on every resource but `need`'s action on `need`'s resource.
fn everything_but(need: &str) -> Vec<String> {
    let (action, resource) = need.split_once(' ').expect("<action> <resource>");
    let actions = [
        "publish", "consume", "create", "delete", "alter", "describe", "admin",
    ];
    ["topic", "subscription", "tenant", "cluster"]
        .iter()
        .map(|&r| {
            let granted: Vec<&str> = actions
                .iter()
                .copied()
                .filter(|&a| !(r == resource && a == action))
                .collect();
            grant(&format!("{} {r}", granted.join(",")))
        })
        .collect()
}

// ---- enumeration ----

/// Every `/{package}.{Service}/{Method}` the broker's descriptor set declares.
fn grpc_methods() -> BTreeSet<String> {
    let set = prost_types::FileDescriptorSet::decode(rapidmq_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set decodes");
    let mut methods = BTreeSet::new();
    for file in &set.file {
        let package = file.package();
        for service in &file.service {
            for method in &service.method {
                methods.insert(format!("/{package}.{}/{}", service.name(), method.name()));
            }
        }
    }
    methods
}

/// Every `METHOD /path` of the served OpenAPI document, plus the layer's own routes.
async fn rest_operations(matrix: &Matrix) -> BTreeSet<String> {
    let url = format!("{}/v1/openapi.json", matrix.broker.http_url());
    let document: Value = matrix
        .http
        .get(url)
        .bearer_auth(&matrix.admin)
        .send()
        .await
        .expect("the OpenAPI document")
        .json()
        .await
        .expect("the OpenAPI document is JSON");
    let mut operations: BTreeSet<String> = LAYER_ROUTES.iter().map(|s| s.to_string()).collect();
    let paths = document["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            let method = method.to_ascii_uppercase();
            if ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"].contains(&&*method) {
                operations.insert(format!("{method} {path}"));
            }
        }
    }
    operations
}

// ---- the permission table ----

fn render_check(check: Check) -> String {
    match check {
        Needs(needs) => needs
            .iter()
            .map(|need| {
                let (action, resource) = need.split_once(' ').expect("<action> <resource>");
                format!("`{action}` on {resource}")
            })
            .collect::<Vec<_>>()
            .join(" + "),
        Filtered(_) => "authenticated; lists only what the caller may `describe`".into(),
        Authenticated => "authenticated".into(),
        Public => "none".into(),
    }
}

/// The permission table of `docs/security.md`, between its markers.
fn permission_table(rules: &[Rule]) -> String {
    let mut out = String::new();
    out.push_str(DOCS_BEGIN);
    out.push_str(
        "\n<!-- Generated by cli/tests/authz_matrix.rs from its RULES; rewrite with \
         `UPDATE_DOCS=1 cargo test -p rapidmq-cli --test authz_matrix`. -->\n",
    );
    out.push_str("\n| operation | needs | notes |\n|---|---|---|\n");
    for rule in rules {
        let check = render_check(rule.check);
        out.push_str(&format!("| `{}` | {check} | {} |\n", rule.op, rule.note));
    }
    out.push_str(DOCS_END);
    out
}

fn security_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/security.md")
}

/// Checks (or with `UPDATE_DOCS=1` rewrites) the table in `docs/security.md`.
fn check_docs(rules: &[Rule]) {
    let path = security_md();
    let doc = std::fs::read_to_string(&path).expect("docs/security.md");
    let table = permission_table(rules);
    let current = match (doc.find(DOCS_BEGIN), doc.find(DOCS_END)) {
        (Some(begin), Some(end)) if begin < end => Some((begin, end + DOCS_END.len())),
        _ => None,
    };
    let updated = match current {
        Some((begin, end)) => format!("{}{table}{}", &doc[..begin], &doc[end..]),
        None => format!(
            "{}\n{table}\n",
            doc.trim_end_matches('\n').to_string() + "\n"
        ),
    };
    if updated == doc {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, updated).expect("write docs/security.md");
        return;
    }
    panic!(
        "docs/security.md's permission table differs from the RULES of cli/tests/authz_matrix.rs; \
         rewrite it with `UPDATE_DOCS=1 cargo test -p rapidmq-cli --test authz_matrix`"
    );
}

// ---- the tests ----

#[test]
fn the_permission_table_in_security_md_is_the_one_rules_render() {
    check_docs(&rules());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_refuses_callers_without_the_permission_it_needs() {
    let rules = rules();
    let mut matrix = Matrix::start().await;

    // Every operation the broker serves has a rule, and every rule an operation.
    let mut served = grpc_methods();
    served.extend(rest_operations(&matrix).await);
    let ruled: BTreeSet<String> = rules.iter().map(|r| r.op.to_string()).collect();
    let missing: Vec<&String> = served.difference(&ruled).collect();
    let stale: Vec<&String> = ruled.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "operations without a rule in cli/tests/authz_matrix.rs: {missing:?}; rules for no \
         served operation: {stale:?}"
    );

    let mut names = Names::existing("");
    matrix.fixtures(&mut names).await;
    let ghost = Names::ghost();
    let nobody = matrix.caller(Vec::new()).await;
    let mut failures = Vec::new();
    let mut fresh = 0;
    for rule in &rules {
        let op = rule.op;
        let anonymous = matrix.run(rule, &names, None).await;
        match rule.check {
            Public => {
                if anonymous.code.is_some() {
                    failures.push(format!(
                        "{op}: public, yet refused anonymously: {anonymous:?}"
                    ));
                }
                continue;
            }
            _ => {
                if anonymous.code != Some(ErrorCode::Unauthenticated)
                    || anonymous.status.is_some_and(|s| s != 401)
                {
                    failures.push(format!("{op}: anonymous got {anonymous:?}"));
                }
            }
        }
        match rule.check {
            Needs(needs) => {
                let wrong = matrix.caller(everything_but(needs[0])).await;
                for (who, token) in [("no role", &nobody), ("a role without it", &wrong)] {
                    let there = matrix.run(rule, &names, Some(token)).await;
                    let not_there = matrix.run(rule, &ghost, Some(token)).await;
                    if there.code != Some(ErrorCode::PermissionDenied)
                        || there.status.is_some_and(|s| s != 403)
                    {
                        failures.push(format!("{op}: {who} got {there:?}"));
                    } else if there.blank(&names) != not_there.blank(&ghost) {
                        failures.push(format!(
                            "{op}: {who} is answered differently for a nonexistent name: \
                             {there:?} vs {not_there:?}"
                        ));
                    }
                }
                let right = matrix
                    .caller(needs.iter().map(|n| grant(n)).collect())
                    .await;
                let target = if rule.destructive {
                    fresh += 1;
                    let mut target = Names::existing(&format!("-{fresh}"));
                    matrix.fixtures(&mut target).await;
                    target
                } else {
                    names.clone()
                };
                let answer = matrix.run(rule, &target, Some(&right)).await;
                if answer.auth_error() {
                    failures.push(format!("{op}: the right role got {answer:?}"));
                }
            }
            Filtered(shown) => {
                let hidden = matrix.run(rule, &names, Some(&nobody)).await;
                let shown = names.fill(shown);
                if hidden.code.is_some() {
                    failures.push(format!("{op}: a list refused a caller: {hidden:?}"));
                } else if hidden.body.contains(&shown) {
                    failures.push(format!("{op}: listed {shown} to a caller without roles"));
                }
                let describer = matrix
                    .caller(vec![
                        grant("describe topic"),
                        grant("describe subscription"),
                    ])
                    .await;
                let seen = matrix.run(rule, &names, Some(&describer)).await;
                if seen.code.is_some() || !seen.body.contains(&shown) {
                    failures.push(format!(
                        "{op}: a caller who may describe {shown} did not see it: {seen:?}"
                    ));
                }
            }
            Authenticated => {
                let answer = matrix.run(rule, &names, Some(&nobody)).await;
                if answer.code.is_some() {
                    failures.push(format!("{op}: an authenticated caller got {answer:?}"));
                }
            }
            Public => unreachable!(),
        }
    }
    assert!(
        failures.is_empty(),
        "{} authorization failures:\n{}\n--- broker log ---\n{}",
        failures.len(),
        failures.join("\n"),
        matrix.broker.log()
    );
}

/// The next answer on a Consume stream that is an error, as an outcome (`None` if the stream
/// ended without one).
async fn next_error(inbound: &mut tonic::Streaming<pb::ConsumeResponse>) -> Option<Outcome> {
    loop {
        match inbound.message().await {
            Ok(Some(pb::ConsumeResponse {
                kind: Some(pb::consume_response::Kind::Error(error)),
            })) => return Some(error_outcome(&error)),
            Ok(Some(_)) => continue,
            Ok(None) => return None,
            Err(status) => return Some(status_outcome(&status)),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_consumer_ends_with_permission_denied_when_its_role_is_unbound() {
    let mut matrix = Matrix::start().await;
    let mut names = Names::existing("");
    matrix.fixtures(&mut names).await;
    let (user, token) = matrix
        .caller_and_name(vec![grant("consume subscription")])
        .await;
    let subscribe = pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscribe(pb::Subscribe {
            topic: names.topic.clone(),
            subscription: names.sub.clone(),
            credits: 100,
            consumer_name: "authz".into(),
            ..Default::default()
        })),
    };
    // Kept open: the stream must end because of the unbinding, not because the client left.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(subscribe).await.expect("queue Subscribe");
    let mut inbound = MessagingClient::new(matrix.channel.clone())
        .consume(with_token(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            Some(&token),
        ))
        .await
        .expect("the consumer may subscribe")
        .into_inner();
    let first = inbound.message().await.expect("a first answer");
    assert!(
        matches!(
            first,
            Some(pb::ConsumeResponse {
                kind: Some(pb::consume_response::Kind::Subscribed(_))
            })
        ),
        "{first:?}"
    );
    let unbind = pb::UnbindRoleRequest {
        user: user.clone(),
        role: user,
    };
    matrix
        .admin()
        .unbind_role(with_token(unbind, Some(&matrix.admin)))
        .await
        .expect("unbind the consumer's role");
    let ended = tokio::time::timeout(std::time::Duration::from_secs(2), next_error(&mut inbound))
        .await
        .expect("the consumer ends within 2 s of losing its role");
    let ended = ended.expect("the stream ends with an error");
    assert_eq!(ended.code, Some(ErrorCode::PermissionDenied), "{ended:?}");
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_a_queue_subscription_into_existence_needs_create_and_publish_on_its_dead_letters()
 {
    let mut matrix = Matrix::start().await;
    let mut names = Names::existing("");
    matrix.fixtures(&mut names).await;
    let subscribe = |subscription: &str, queue: bool| {
        let (mode, settings) = match queue {
            true => (
                pb::SubscriptionMode::Queue,
                Some(pb::QueueSettings::default()),
            ),
            false => (pb::SubscriptionMode::Stream, None),
        };
        pb::ConsumeRequest {
            kind: Some(pb::consume_request::Kind::Subscribe(pb::Subscribe {
                topic: names.topic.clone(),
                subscription: subscription.into(),
                mode: mode.into(),
                queue: settings,
                credits: 1,
                consumer_name: "authz".into(),
                ..Default::default()
            })),
        }
    };
    let channel = matrix.channel.clone();
    let consume = async |token: &str, request: pb::ConsumeRequest| {
        let outbound = futures::stream::iter(vec![request]);
        match MessagingClient::new(channel.clone())
            .consume(with_token(outbound, Some(token)))
            .await
        {
            Ok(_) => None,
            Err(status) => Some(status_outcome(&status).code),
        }
    };
    let consumer = matrix.caller(vec![grant("consume subscription")]).await;
    let creator = matrix
        .caller(vec![
            grant("consume subscription"),
            grant("create subscription"),
        ])
        .await;
    let dead_letterer = matrix
        .caller(vec![
            grant("consume subscription"),
            grant("create subscription"),
            grant("publish topic"),
        ])
        .await;
    let denied = Some(Some(ErrorCode::PermissionDenied));
    // Joining an existing subscription needs only `consume`; creating one needs `create`.
    assert_eq!(consume(&consumer, subscribe(&names.sub, false)).await, None);
    assert_eq!(
        consume(&consumer, subscribe("new-stream", false)).await,
        denied
    );
    assert_eq!(
        consume(&creator, subscribe("new-stream", false)).await,
        None
    );
    // A new queue subscription also makes the broker write its dead letters: `publish` there.
    assert_eq!(
        consume(&creator, subscribe("new-queue", true)).await,
        denied
    );
    assert_eq!(
        consume(&dead_letterer, subscribe("new-queue", true)).await,
        None
    );
}
