//! The harness of the authorization matrix: the names an operation acts on, what a call
//! answered, the calls themselves, and a broker with `--auth` whose callers hold exactly the
//! permissions a rule names.

use std::collections::HashMap;

use prost::Message as _;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use rapidmq_proto::{ERROR_CODE_METADATA, ErrorCode};
use rapidmq_testkit::{BrokerOptions, TestBroker};
use serde_json::Value;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tonic::transport::Channel;

use super::rules::{Call, Rule};

/// The password of the fixture user, which logins use.
pub const PASSWORD: &str = "authz-password-1";

#[derive(Debug, Clone)]
pub struct Names {
    pub topic: String,
    /// A stream subscription of `topic`.
    pub sub: String,
    /// A queue subscription of `topic`, dead-lettering to `dlq`.
    pub queue: String,
    pub dlq: String,
    /// A user with the password [`PASSWORD`] and one API token, `token_id`.
    pub user: String,
    pub token_id: String,
    /// A custom role, bound to `user`.
    pub role: String,
    /// A tenant (empty: no topics or users in it).
    pub tenant: String,
}

impl Names {
    pub fn existing(suffix: &str) -> Names {
        Names {
            topic: format!("authz-topic{suffix}"),
            sub: format!("authz-sub{suffix}"),
            queue: format!("authz-queue{suffix}"),
            dlq: format!("authz-dlq{suffix}"),
            user: format!("authz-victim{suffix}"),
            token_id: String::new(),
            role: format!("authz-role{suffix}"),
            tenant: format!("authz-tenant{suffix}"),
        }
    }

    /// Names of nothing.
    pub fn ghost() -> Names {
        Names {
            topic: "ghost-topic".into(),
            sub: "ghost-sub".into(),
            queue: "ghost-queue".into(),
            dlq: "ghost-dlq".into(),
            user: "ghost-user".into(),
            token_id: "ghostghostgh".into(),
            role: "ghost-role".into(),
            tenant: "ghost-tenant".into(),
        }
    }

    pub fn fill(&self, template: &str) -> String {
        template
            .replace("{topic}", &self.topic)
            .replace("{subscription}", &self.sub)
            .replace("{queue}", &self.queue)
            .replace("{dlq}", &self.dlq)
            .replace("{user}", &self.user)
            .replace("{id}", &self.token_id)
            .replace("{role}", &self.role)
            .replace("{tenant}", &self.tenant)
    }

    /// `text` with these names replaced by placeholders, so that answers about existing and
    /// nonexistent names compare equal when they say the same.
    pub fn blank(&self, text: &str) -> String {
        [
            (&self.topic, "{topic}"),
            (&self.sub, "{subscription}"),
            (&self.queue, "{queue}"),
            (&self.dlq, "{dlq}"),
            (&self.user, "{user}"),
            (&self.token_id, "{id}"),
            (&self.role, "{role}"),
            (&self.tenant, "{tenant}"),
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
pub struct Outcome {
    pub code: Option<ErrorCode>,
    /// The HTTP status (REST only).
    pub status: Option<u16>,
    pub message: String,
    /// The response (its `Debug` form for gRPC, the body for REST) on success.
    pub body: String,
}

impl Outcome {
    pub fn success(status: Option<u16>, body: String) -> Outcome {
        Outcome {
            code: None,
            status,
            message: String::new(),
            body,
        }
    }

    pub fn auth_error(&self) -> bool {
        matches!(
            self.code,
            Some(ErrorCode::Unauthenticated | ErrorCode::PermissionDenied)
        ) || matches!(self.status, Some(401 | 403))
    }

    pub fn blank(&self, names: &Names) -> Outcome {
        Outcome {
            message: names.blank(&self.message),
            body: names.blank(&self.body),
            ..self.clone()
        }
    }
}

pub fn grpc_outcome<T: std::fmt::Debug>(
    result: Result<tonic::Response<T>, tonic::Status>,
) -> Outcome {
    match result {
        Ok(response) => Outcome::success(None, format!("{:?}", response.into_inner())),
        Err(status) => status_outcome(&status),
    }
}

pub fn status_outcome(status: &tonic::Status) -> Outcome {
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

pub fn error_outcome(error: &pb::Error) -> Outcome {
    Outcome {
        code: Some(ErrorCode::from_code(error.code).unwrap_or(ErrorCode::Internal)),
        status: None,
        message: error.message.clone(),
        body: String::new(),
    }
}

pub fn http_outcome(status: u16, body: String) -> Outcome {
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

pub fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("a valid header"),
        );
    }
    request
}

/// The request, acting in `tenant` (`rapidmq-tenant`).
pub fn in_tenant<T>(mut request: tonic::Request<T>, tenant: &str) -> tonic::Request<T> {
    request.metadata_mut().insert(
        rapidmq_proto::TENANT_METADATA,
        tenant.parse().expect("a valid header"),
    );
    request
}

pub fn batch() -> bytes::Bytes {
    pb::MessageBatch {
        messages: vec![pb::Message {
            value: bytes::Bytes::from_static(b"m"),
            ..Default::default()
        }],
        base_timestamp_ms: 1_700_000_000_000,
        compression: 0,
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

pub fn earliest() -> pb::StartPosition {
    pb::StartPosition {
        kind: pb::StartKind::Earliest.into(),
        ..Default::default()
    }
}

pub fn permission(text: &str) -> pb::Permission {
    let permission: rapidmq_core::Permission = text.parse().expect("a permission");
    pb::Permission::from(&permission)
}

/// The first answer of a PublishStream with one request: the stream's status, or the
/// request's own result.
pub async fn publish_stream(channel: Channel, n: Names, token: Option<String>) -> Outcome {
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
pub async fn consume(channel: Channel, n: Names, token: Option<String>) -> Outcome {
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
pub struct Matrix {
    pub broker: TestBroker,
    pub channel: Channel,
    pub http: reqwest::Client,
    pub admin: String,
    /// Users (and their tokens) holding exactly a set of permissions, by that set. Each user's
    /// one role has the user's name.
    pub callers: HashMap<Vec<String>, (String, String)>,
}

impl Matrix {
    pub async fn start() -> Matrix {
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

    pub async fn run(&self, rule: &Rule, names: &Names, token: Option<&str>) -> Outcome {
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

    pub fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    /// Creates the topic, subscriptions, dead-letter topic, user, token and role `names` name
    /// (and fills in the token id).
    pub async fn fixtures(&self, names: &mut Names) {
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
        let tenant = pb::CreateTenantRequest {
            name: n.tenant.clone(),
            quotas: None,
        };
        client
            .create_tenant(with_token(tenant, Some(admin)))
            .await
            .expect("create a tenant");
    }

    /// The token of `stranger`, the admin (bound at tenant scope) of another tenant, `other`:
    /// whatever it may do in its tenant, nothing of this one may reach it.
    pub async fn foreign_admin(&self) -> String {
        let mut client = self.admin();
        let admin = Some(self.admin.as_str());
        let tenant = pb::CreateTenantRequest {
            name: "other".into(),
            quotas: None,
        };
        client
            .create_tenant(with_token(tenant, admin))
            .await
            .expect("create tenant `other`");
        let in_other = |request| in_tenant(with_token(request, admin), "other");
        let user = pb::CreateUserRequest {
            name: "stranger".into(),
            password: String::new(),
        };
        client
            .create_user(in_other(user))
            .await
            .expect("create other/stranger");
        let bind = pb::BindRoleRequest {
            user: "stranger".into(),
            role: "admin".into(),
            scope: pb::BindingScope::Tenant.into(),
        };
        client
            .bind_role(in_tenant(with_token(bind, admin), "other"))
            .await
            .expect("make other/stranger its tenant's admin");
        let token = pb::CreateTokenRequest {
            user: "stranger".into(),
            ..Default::default()
        };
        client
            .create_token(in_tenant(with_token(token, admin), "other"))
            .await
            .expect("a token for other/stranger")
            .into_inner()
            .token
    }

    /// The token of a user whose one role holds exactly `permissions` (text form); no role for
    /// none. Bound at cluster scope when a permission is on the cluster.
    pub async fn caller(&mut self, permissions: Vec<String>) -> String {
        self.caller_and_name(permissions).await.1
    }

    /// [`Matrix::caller`]'s user name (also its role's) and token.
    pub async fn caller_and_name(&mut self, permissions: Vec<String>) -> (String, String) {
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
pub fn grant(need: &str) -> String {
    let (action, resource) = need.split_once(' ').expect("<action> <resource>");
    match resource {
        "topic" | "subscription" => format!("allow {action} {resource}:*"),
        _ => format!("allow {action} {resource}"),
    }
}

/// Everything on every resource but `need`'s action on `need`'s resource.
pub fn everything_but(need: &str) -> Vec<String> {
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
