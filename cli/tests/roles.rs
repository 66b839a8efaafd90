//! Roles and bindings against a real broker with `--auth` (slice 3 of docs/adr/0004-security.md,
//! docs/security.md): the built-in roles, custom roles and their validation, binding and
//! unbinding over gRPC and REST, administration refused to a viewer and cluster scope to a
//! tenant admin, persistence across a restart, and the upgrade of a data directory from before
//! roles.

mod common;

use common::*;
use rapidmq_broker::auth::Token;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// A broker with `--auth` whose first admin (a cluster admin) is created from a fresh token.
fn auth_broker() -> (TestBroker, String) {
    let token = Token::generate().unwrap().to_string();
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".to_string(), token.clone())],
        args: vec!["--auth".into()],
    });
    (broker, token)
}

/// The admin API as the holder of `token`.
struct As {
    admin: AdminClient<Channel>,
    token: String,
}

impl As {
    async fn new(broker: &TestBroker, token: &str) -> As {
        let channel = Channel::from_shared(broker.grpc_url())
            .unwrap()
            .connect()
            .await
            .expect("connect to broker");
        As {
            admin: AdminClient::new(channel),
            token: token.to_string(),
        }
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.token).parse().unwrap(),
        );
        request
    }

    async fn create_role(
        &mut self,
        name: &str,
        permissions: Vec<pb::Permission>,
    ) -> Result<pb::RoleInfo, tonic::Status> {
        let request = self.request(pb::CreateRoleRequest {
            name: name.into(),
            permissions,
        });
        self.admin
            .create_role(request)
            .await
            .map(|r| r.into_inner())
    }

    async fn delete_role(&mut self, name: &str) -> Result<(), tonic::Status> {
        let request = self.request(pb::DeleteRoleRequest { name: name.into() });
        self.admin.delete_role(request).await.map(drop)
    }

    async fn roles(&mut self) -> Result<Vec<pb::RoleInfo>, tonic::Status> {
        let request = self.request(pb::ListRolesRequest {});
        self.admin
            .list_roles(request)
            .await
            .map(|r| r.into_inner().roles)
    }

    async fn bind(
        &mut self,
        user: &str,
        role: &str,
        scope: pb::BindingScope,
    ) -> Result<pb::RoleBinding, tonic::Status> {
        let request = self.request(pb::BindRoleRequest {
            user: user.into(),
            role: role.into(),
            scope: scope.into(),
        });
        self.admin.bind_role(request).await.map(|r| r.into_inner())
    }

    async fn unbind(&mut self, user: &str, role: &str) -> Result<(), tonic::Status> {
        let request = self.request(pb::UnbindRoleRequest {
            user: user.into(),
            role: role.into(),
        });
        self.admin.unbind_role(request).await.map(drop)
    }

    /// `(user, role, scope)` of the bindings (of `user` when set).
    async fn bindings(
        &mut self,
        user: Option<&str>,
    ) -> Result<Vec<(String, String, pb::BindingScope)>, tonic::Status> {
        let request = self.request(pb::ListRoleBindingsRequest {
            user: user.unwrap_or_default().into(),
        });
        let bindings = self.admin.list_role_bindings(request).await?.into_inner();
        Ok(bindings
            .bindings
            .into_iter()
            .map(|b| {
                let scope = b.scope();
                (b.user, b.role, scope)
            })
            .collect())
    }

    async fn create_user(&mut self, name: &str) -> Result<(), tonic::Status> {
        let request = self.request(pb::CreateUserRequest {
            name: name.into(),
            password: String::new(),
        });
        self.admin.create_user(request).await.map(drop)
    }

    /// A new API token for `user`.
    async fn token_for(&mut self, user: &str) -> Result<String, tonic::Status> {
        let request = self.request(pb::CreateTokenRequest {
            user: user.into(),
            ..Default::default()
        });
        Ok(self.admin.create_token(request).await?.into_inner().token)
    }

    async fn set_password(&mut self, user: &str, password: &str) -> Result<(), tonic::Status> {
        let request = self.request(pb::SetPasswordRequest {
            name: user.into(),
            password: password.into(),
        });
        self.admin.set_password(request).await.map(drop)
    }
}

/// A user created by `admin` with `roles` bound in the tenant, and a client holding its token.
async fn user_with(broker: &TestBroker, admin: &mut As, name: &str, roles: &[&str]) -> As {
    admin.create_user(name).await.unwrap();
    for role in roles {
        admin
            .bind(name, role, pb::BindingScope::Tenant)
            .await
            .unwrap();
    }
    let token = admin.token_for(name).await.unwrap();
    As::new(broker, &token).await
}

fn permission(
    effect: pb::Effect,
    actions: &[pb::Action],
    resource: pb::ResourceType,
    pattern: &str,
    pattern_type: pb::PatternType,
) -> pb::Permission {
    pb::Permission {
        effect: effect.into(),
        actions: actions.iter().map(|&a| a.into()).collect(),
        resource: resource.into(),
        pattern: pattern.into(),
        pattern_type: pattern_type.into(),
    }
}

fn publish_orders() -> pb::Permission {
    permission(
        pb::Effect::Allow,
        &[pb::Action::Publish, pb::Action::Describe],
        pb::ResourceType::Topic,
        "orders.",
        pb::PatternType::Prefix,
    )
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(result: Result<T, tonic::Status>, code: ErrorCode) -> String {
    let status = result.expect_err("the call is refused");
    assert_eq!(error_code(&status), code, "{status:?}");
    status.message().to_string()
}

async fn rest(
    broker: &TestBroker,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", broker.http_url()))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_builtin_roles_are_listed_and_can_be_neither_created_nor_deleted() {
    let (broker, token) = auth_broker();
    let mut admin = As::new(&broker, &token).await;

    let roles = admin.roles().await.unwrap();
    let names: Vec<_> = roles.iter().map(|r| (r.name.as_str(), r.builtin)).collect();
    assert_eq!(
        names,
        [
            ("admin", true),
            ("producer", true),
            ("consumer", true),
            ("viewer", true)
        ]
    );
    let producer = &roles[1].permissions;
    assert_eq!(producer.len(), 1);
    assert_eq!(
        producer[0],
        permission(
            pb::Effect::Allow,
            &[pb::Action::Publish, pb::Action::Describe],
            pb::ResourceType::Topic,
            "",
            pb::PatternType::Prefix,
        )
    );

    assert_code(
        admin.create_role("viewer", vec![publish_orders()]).await,
        ErrorCode::RoleAlreadyExists,
    );
    let says = assert_code(admin.delete_role("admin").await, ErrorCode::InvalidArgument);
    assert!(says.contains("built in"), "{says}");

    // The bootstrap admin is a cluster admin.
    assert_eq!(
        admin.bindings(None).await.unwrap(),
        [(
            "admin".to_string(),
            "admin".to_string(),
            pb::BindingScope::Cluster
        )]
    );
}

#[tokio::test]
async fn a_custom_role_is_validated_bound_once_and_deleted_with_its_bindings() {
    let (broker, token) = auth_broker();
    let mut admin = As::new(&broker, &token).await;

    for (bad, says) in [
        (
            permission(
                pb::Effect::Allow,
                &[],
                pb::ResourceType::Topic,
                "orders",
                pb::PatternType::Literal,
            ),
            "at least one action",
        ),
        (
            permission(
                pb::Effect::Allow,
                &[pb::Action::Admin],
                pb::ResourceType::Tenant,
                "acme",
                pb::PatternType::Literal,
            ),
            "takes no pattern",
        ),
        (
            permission(
                pb::Effect::Allow,
                &[pb::Action::Publish],
                pb::ResourceType::Topic,
                "",
                pb::PatternType::Literal,
            ),
            "empty",
        ),
        (
            permission(
                pb::Effect::Allow,
                &[pb::Action::Publish],
                pb::ResourceType::Topic,
                "orders",
                pb::PatternType::Unspecified,
            ),
            "pattern type",
        ),
        (
            permission(
                pb::Effect::Allow,
                &[pb::Action::Publish],
                pb::ResourceType::Topic,
                "orders eu",
                pb::PatternType::Glob,
            ),
            "in no name",
        ),
    ] {
        let message = assert_code(
            admin.create_role("writer", vec![bad]).await,
            ErrorCode::InvalidArgument,
        );
        assert!(message.contains(says), "{message}: not `{says}`");
    }

    let deny_audit = permission(
        pb::Effect::Deny,
        &[pb::Action::Consume],
        pb::ResourceType::Subscription,
        "orders.*/audit-?",
        pb::PatternType::Glob,
    );
    let created = admin
        .create_role("writer", vec![publish_orders(), deny_audit.clone()])
        .await
        .unwrap();
    assert!(!created.builtin);
    assert_eq!(created.permissions, [publish_orders(), deny_audit]);
    assert_code(
        admin.create_role("writer", vec![publish_orders()]).await,
        ErrorCode::RoleAlreadyExists,
    );
    let listed: Vec<_> = admin
        .roles()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        listed,
        ["admin", "producer", "consumer", "viewer", "writer"]
    );

    admin.create_user("bob").await.unwrap();
    assert_code(
        admin
            .bind("bob", "nonesuch", pb::BindingScope::Tenant)
            .await,
        ErrorCode::RoleNotFound,
    );
    assert_code(
        admin
            .bind("nobody", "writer", pb::BindingScope::Tenant)
            .await,
        ErrorCode::UserNotFound,
    );
    for _ in 0..2 {
        let bound = admin
            .bind("bob", "writer", pb::BindingScope::Unspecified)
            .await
            .unwrap();
        assert_eq!(
            (bound.user.as_str(), bound.role.as_str(), bound.scope()),
            ("bob", "writer", pb::BindingScope::Tenant)
        );
    }
    admin
        .bind("bob", "viewer", pb::BindingScope::Tenant)
        .await
        .unwrap();
    let bob = |role: &str| {
        (
            "bob".to_string(),
            role.to_string(),
            pb::BindingScope::Tenant,
        )
    };
    assert_eq!(
        admin.bindings(Some("bob")).await.unwrap(),
        [bob("viewer"), bob("writer")]
    );

    // Deleting the role removes its binding and nothing else.
    admin.delete_role("writer").await.unwrap();
    assert_eq!(admin.bindings(Some("bob")).await.unwrap(), [bob("viewer")]);
    assert_code(admin.delete_role("writer").await, ErrorCode::RoleNotFound);
    assert_code(admin.unbind("bob", "writer").await, ErrorCode::RoleNotFound);
    admin.unbind("bob", "viewer").await.unwrap();
    assert_code(admin.unbind("bob", "viewer").await, ErrorCode::RoleNotFound);
    assert!(admin.bindings(Some("bob")).await.unwrap().is_empty());
}

#[tokio::test]
async fn roles_and_bindings_are_managed_over_rest_with_lowercase_permissions() {
    let (broker, token) = auth_broker();
    let mut admin = As::new(&broker, &token).await;
    admin.create_user("carol").await.unwrap();
    let post = |path: &'static str, body: Value| {
        rest(&broker, reqwest::Method::POST, path, &token, Some(body))
    };

    let permission = json!({
        "effect": "allow",
        "actions": ["consume", "describe"],
        "resource": "subscription",
        "pattern": "orders/billing",
        "pattern_type": "literal",
    });
    let (status, role) = post(
        "/v1/roles",
        json!({"name": "billing", "permissions": [permission.clone(), {"effect": "allow", "actions": ["describe"], "resource": "tenant"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");
    assert_eq!(role["permissions"][0], permission);
    assert_eq!(role["builtin"], false);

    let (status, problem) = post(
        "/v1/roles",
        json!({"name": "bad", "permissions": [{"effect": "allow", "actions": ["publish"], "resource": "topic", "pattern": "a*", "pattern_type": "literal"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["name"], "INVALID_ARGUMENT");
    let (status, role) = post(
        "/v1/roles",
        json!({"name": "plain", "permissions": [{"effect": "allow", "actions": ["publish"], "resource": "topic", "pattern": "orders"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{role}");
    assert_eq!(
        role["permissions"][0]["pattern_type"], "literal",
        "an absent pattern type is literal"
    );
    let (status, _) = rest(
        &broker,
        reqwest::Method::DELETE,
        "/v1/roles/plain",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = post(
        "/v1/roles",
        json!({"name": "producer", "permissions": [permission]}),
    )
    .await;
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::CONFLICT, &json!(6008))
    );

    let (status, binding) = post(
        "/v1/role-bindings",
        json!({"user": "carol", "role": "billing"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{binding}");
    assert_eq!(
        binding,
        json!({"tenant": "default", "user": "carol", "role": "billing", "scope": "tenant"})
    );
    let (status, listed) = rest(
        &broker,
        reqwest::Method::GET,
        "/v1/role-bindings?user=carol",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["bindings"], json!([binding]));
    let (_, roles) = rest(&broker, reqwest::Method::GET, "/v1/roles", &token, None).await;
    assert_eq!(roles["roles"].as_array().unwrap().len(), 5, "{roles}");

    let (status, _) = rest(
        &broker,
        reqwest::Method::DELETE,
        "/v1/role-bindings/carol/billing",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, problem) = rest(
        &broker,
        reqwest::Method::DELETE,
        "/v1/role-bindings/carol/billing",
        &token,
        None,
    )
    .await;
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::NOT_FOUND, &json!(6007))
    );
    let (status, _) = rest(
        &broker,
        reqwest::Method::DELETE,
        "/v1/roles/billing",
        &token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_viewer_may_not_administer_and_a_tenant_admin_may_not_reach_the_cluster() {
    let (broker, token) = auth_broker();
    let mut admin = As::new(&broker, &token).await;
    let mut vera = user_with(&broker, &mut admin, "vera", &["viewer"]).await;

    let denied = assert_code(
        vera.create_role("writer", vec![publish_orders()]).await,
        ErrorCode::PermissionDenied,
    );
    assert_eq!(denied, "user `vera` may not admin on the tenant");
    assert_code(vera.create_user("eve").await, ErrorCode::PermissionDenied);
    assert_code(
        vera.bind("vera", "admin", pb::BindingScope::Tenant).await,
        ErrorCode::PermissionDenied,
    );
    assert_code(vera.roles().await, ErrorCode::PermissionDenied);
    assert_code(vera.bindings(None).await, ErrorCode::PermissionDenied);
    assert_code(vera.token_for("admin").await, ErrorCode::PermissionDenied);
    let (status, problem) = rest(
        &broker,
        reqwest::Method::POST,
        "/v1/roles",
        &vera.token,
        Some(json!({"name": "writer", "permissions": [{"effect": "allow", "actions": ["admin"], "resource": "tenant"}]})),
    )
    .await;
    assert_eq!(
        (status, &problem["code"]),
        (StatusCode::FORBIDDEN, &json!(6002))
    );
    // Its own account needs no role.
    assert_eq!(vera.bindings(Some("vera")).await.unwrap().len(), 1);
    vera.token_for("vera").await.unwrap();
    vera.set_password("vera", "its own").await.unwrap();

    // A tenant admin administers the tenant, but not the cluster nor a cluster admin's account.
    let mut tad = user_with(&broker, &mut admin, "tad", &["admin"]).await;
    tad.create_user("eve").await.unwrap();
    tad.create_role("writer", vec![publish_orders()])
        .await
        .unwrap();
    tad.bind("eve", "writer", pb::BindingScope::Tenant)
        .await
        .unwrap();
    assert_code(
        tad.bind("eve", "admin", pb::BindingScope::Cluster).await,
        ErrorCode::PermissionDenied,
    );
    assert_code(
        tad.bind("tad", "admin", pb::BindingScope::Cluster).await,
        ErrorCode::PermissionDenied,
    );
    assert_code(
        tad.unbind("admin", "admin").await,
        ErrorCode::PermissionDenied,
    );
    assert_code(tad.token_for("admin").await, ErrorCode::PermissionDenied);
    assert_code(
        tad.set_password("admin", "mine now").await,
        ErrorCode::PermissionDenied,
    );
    assert_eq!(
        rest(&broker, reqwest::Method::GET, "/metrics", &tad.token, None)
            .await
            .0,
        StatusCode::FORBIDDEN,
        "/metrics is for cluster admins"
    );

    // The cluster admin may.
    admin
        .bind("eve", "admin", pb::BindingScope::Cluster)
        .await
        .unwrap();
    assert_code(tad.token_for("eve").await, ErrorCode::PermissionDenied);
    admin.unbind("eve", "admin").await.unwrap();
    tad.token_for("eve").await.unwrap();
}

#[tokio::test]
async fn roles_and_bindings_survive_a_restart_and_still_decide() {
    let (mut broker, token) = auth_broker();
    let mut admin = As::new(&broker, &token).await;
    let user_admin = permission(
        pb::Effect::Allow,
        &[pb::Action::Admin],
        pb::ResourceType::Tenant,
        "",
        pb::PatternType::Unspecified,
    );
    let describe = permission(
        pb::Effect::Allow,
        &[pb::Action::Describe],
        pb::ResourceType::Tenant,
        "",
        pb::PatternType::Unspecified,
    );
    admin
        .create_role("user-admin", vec![user_admin, describe])
        .await
        .unwrap();
    let dana = user_with(&broker, &mut admin, "dana", &["user-admin"]).await;
    let dana_token = dana.token.clone();

    broker.restart();
    let mut admin = As::new(&broker, &token).await;
    let mut dana = As::new(&broker, &dana_token).await;
    let roles = admin.roles().await.unwrap();
    let custom = roles.iter().find(|r| r.name == "user-admin").unwrap();
    assert_eq!(custom.permissions.len(), 2);
    assert_eq!(
        admin.bindings(Some("dana")).await.unwrap(),
        [(
            "dana".to_string(),
            "user-admin".to_string(),
            pb::BindingScope::Tenant
        )]
    );
    dana.create_user("frank").await.unwrap();

    // Deleting the user removes its bindings, and a new user of the same name has none.
    let request = admin.request(pb::DeleteUserRequest {
        name: "dana".into(),
    });
    admin.admin.delete_user(request).await.unwrap();
    admin.create_user("dana").await.unwrap();
    assert!(admin.bindings(Some("dana")).await.unwrap().is_empty());
    broker.restart();
    let mut admin = As::new(&broker, &token).await;
    assert!(admin.bindings(Some("dana")).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_data_dir_without_any_binding_gets_the_bootstrap_admin_bound_once() {
    let (mut broker, token) = auth_broker();
    let mut admin = As::new(&broker, &token).await;
    // What a data directory from before roles looks like: users, and no binding at all.
    admin.create_user("old-user").await.unwrap();
    admin.unbind("admin", "admin").await.unwrap();
    assert_code(admin.roles().await, ErrorCode::PermissionDenied);

    broker.restart();
    assert!(
        broker
            .log()
            .contains("upgraded a data directory from before roles"),
        "{}",
        broker.log()
    );
    let mut admin = As::new(&broker, &token).await;
    assert_eq!(
        admin.bindings(None).await.unwrap(),
        [(
            "admin".to_string(),
            "admin".to_string(),
            pb::BindingScope::Cluster
        )]
    );

    // Once there are bindings, a restart changes none of them.
    admin
        .bind("old-user", "viewer", pb::BindingScope::Tenant)
        .await
        .unwrap();
    admin.unbind("admin", "admin").await.unwrap();
    broker.restart();
    assert_eq!(
        broker.log().matches("upgraded a data directory").count(),
        1,
        "only the first restart upgraded (the log holds every run)"
    );
    let mut admin = As::new(&broker, &token).await;
    assert_code(admin.roles().await, ErrorCode::PermissionDenied);
}

#[tokio::test]
async fn a_user_without_a_role_may_say_who_it_is_and_do_nothing_else() {
    let (broker, token) = auth_broker();
    let mut admin = As::new(&broker, &token).await;
    let mut nobody = user_with(&broker, &mut admin, "nobody", &[]).await;

    let mut auth = rapidmq_proto::v1::auth_client::AuthClient::new(
        Channel::from_shared(broker.grpc_url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    let me = auth
        .who_am_i(nobody.request(pb::WhoAmIRequest {}))
        .await
        .expect("whoami needs no role")
        .into_inner();
    assert_eq!(me.user, "nobody");
    let (status, me) = rest(
        &broker,
        reqwest::Method::GET,
        "/v1/auth/whoami",
        &nobody.token,
        None,
    )
    .await;
    assert_eq!((status, &me["user"]), (StatusCode::OK, &json!("nobody")));

    let request = nobody.request(pb::CreateTopicRequest {
        name: "orders".into(),
        config: Some(topic_config(1)),
    });
    let refused = nobody.admin.create_topic(request).await;
    assert_code(refused, ErrorCode::PermissionDenied);
    assert_code(nobody.roles().await, ErrorCode::PermissionDenied);
    // Its own account needs no role.
    assert!(nobody.bindings(Some("nobody")).await.unwrap().is_empty());
    nobody.token_for("nobody").await.unwrap();
    nobody.set_password("nobody", "pw").await.unwrap();
    let (status, tokens) = rest(
        &broker,
        reqwest::Method::GET,
        "/v1/users/nobody/tokens",
        &nobody.token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 2);

    // Without credentials, nothing of it.
    let mut anonymous = AdminClient::new(
        Channel::from_shared(broker.grpc_url())
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    assert_code(
        anonymous.list_roles(pb::ListRolesRequest {}).await,
        ErrorCode::Unauthenticated,
    );
    assert_code(
        anonymous
            .list_role_bindings(pb::ListRoleBindingsRequest {
                user: "nobody".into(),
            })
            .await,
        ErrorCode::Unauthenticated,
    );
    let response = reqwest::get(format!("{}/v1/role-bindings", broker.http_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}
