//! Credentials against a broker with `--auth` (docs/security.md): an API token, a user and
//! password (with its session renewed before it expires, and logging in again on a call after
//! it has), wrong credentials failing at connect
//! with `UNAUTHENTICATED`, users, tokens, roles and bindings managed through the admin API, and
//! a user's bound roles deciding what it may do (`PERMISSION_DENIED`) (C23).

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{eventually, guarded};
use rapidmq::{
    BindingScope, Client, Credentials, ErrorCode, Permission, RoleBinding, RoleInfo, TopicConfig,
};
use rapidmq_testkit::{BrokerOptions, TestBroker};

/// A fresh `rmq_` token from `rapidmq token generate`.
fn generate_token() -> String {
    let out = std::process::Command::new(rapidmq_testkit::broker_binary())
        .args(["token", "generate"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A broker with auth on whose `admin` has this token, or this password.
fn broker(env: &[(&str, &str)]) -> TestBroker {
    tokio::task::block_in_place(|| {
        TestBroker::start_with(BrokerOptions {
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args: vec!["--auth".into()],
        })
    })
}

async fn connect(broker: &TestBroker, credentials: Option<Credentials>) -> rapidmq::Result<Client> {
    let mut builder = Client::builder().endpoint(broker.grpc_url());
    if let Some(credentials) = credentials {
        builder = builder.credentials(credentials);
    }
    builder.connect().await
}

/// A client logged in as the bootstrap admin with the password `correct horse`.
async fn connect_as_admin(broker: &TestBroker) -> Client {
    let credentials = Credentials::UserPassword {
        user: "admin".into(),
        password: "correct horse".into(),
    };
    connect(broker, Some(credentials))
        .await
        .expect("log in as admin")
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_token_authenticates_every_call_and_a_wrong_one_fails_at_connect() {
    guarded("token", async {
        let token = generate_token();
        let broker = broker(&[("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", &token)]);
        let client = connect(&broker, Some(Credentials::Token(token.clone())))
            .await
            .expect("connect with the admin token");
        assert_eq!(
            client.core().whoami().await.unwrap(),
            ("default".into(), "admin".into())
        );
        let admin = client.admin();
        admin
            .create_topic(
                "orders",
                TopicConfig {
                    partitions: 1,
                    ..TopicConfig::default()
                },
            )
            .await
            .unwrap();
        let producer = client.producer("orders").build().await.unwrap();
        let receipt = producer.send(rapidmq::Message::new("hello")).await.unwrap();
        receipt
            .await
            .expect("the publish is acknowledged over the authenticated stream");
        assert_eq!(admin.list_topics().await.unwrap().len(), 1);

        for wrong in [generate_token(), "not-a-token".to_string()] {
            let err = connect(&broker, Some(Credentials::Token(wrong)))
                .await
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
            assert!(!err.is_retriable());
        }
        let err = connect(&broker, None).await.err();
        // Without credentials the connection opens, and the first call is refused.
        let anonymous = match err {
            None => Client::connect(broker.grpc_url()).await.unwrap(),
            Some(err) => panic!("connect without credentials: {err}"),
        };
        let err = anonymous.admin().list_topics().await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_and_password_log_in_and_the_session_is_renewed_before_it_expires() {
    guarded("user and password", async {
        let broker = broker(&[
            ("RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD", "correct horse"),
            ("RAPIDMQ_AUTH__SESSION_TTL_MS", "1500"),
        ]);
        let client = connect_as_admin(&broker).await;
        let admin = client.admin();
        admin.list_topics().await.unwrap();
        let sessions = || async {
            let tokens = admin.list_tokens(Some("admin".into())).await.unwrap();
            tokens
                .into_iter()
                .filter(|t| t.kind == "session")
                .collect::<Vec<_>>()
        };
        let first = sessions().await;
        assert_eq!(first.len(), 1, "{first:?}");
        let (first_id, first_expiry) = (first[0].id.clone(), first[0].expires_at_ms.unwrap());
        // A second session appears (renewed at 80 % of 1.5 s) and the first one expires.
        eventually(
            "the session is renewed and the first one has expired",
            || async {
                let renewed = sessions().await.iter().any(|s| s.id != first_id);
                renewed && now_ms() > first_expiry
            },
        )
        .await;
        admin.list_topics().await.expect("the session was renewed");

        for (user, password) in [("admin", "wrong horse"), ("mallory", "correct horse")] {
            let err = connect(
                &broker,
                Some(Credentials::UserPassword {
                    user: user.into(),
                    password: password.into(),
                }),
            )
            .await
            .unwrap_err();
            assert_eq!(err.code(), ErrorCode::Unauthenticated, "{user}: {err}");
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_and_password_client_whose_session_expired_logs_in_again_on_its_next_call() {
    guarded("expired session", async {
        // Sessions live 250 ms and the client renews no sooner than 1 s after a login, so from
        // 250 ms to 1 s the client holds an expired session, as after a suspend.
        let broker = broker(&[
            ("RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD", "correct horse"),
            ("RAPIDMQ_AUTH__SESSION_TTL_MS", "250"),
        ]);
        let client = connect_as_admin(&broker).await;
        let admin = client.admin();
        let sessions = admin.list_tokens(Some("admin".into())).await.unwrap();
        let expiry = sessions
            .iter()
            .filter_map(|t| t.expires_at_ms)
            .max()
            .expect("a session");
        eventually("the session expires", || async { now_ms() > expiry }).await;

        // The broker answers `rapidmq-auth-reason: expired`; the client logs in and calls again.
        admin
            .list_topics()
            .await
            .expect("the client logged in again after its session expired");
        let sessions = admin.list_tokens(Some("admin".into())).await.unwrap();
        assert!(
            sessions
                .iter()
                .any(|t| t.expires_at_ms.unwrap_or(0) > expiry),
            "a new session: {sessions:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_and_password_client_keeps_its_streams_when_the_session_they_opened_with_expires() {
    guarded("streams across sessions", async {
        // A stream lives on the session it was opened with and ends when that one expires
        // (2 s here), although the client renewed it at 80 %: the consumer and the producer must
        // reopen their streams on the new session instead of failing with UNAUTHENTICATED.
        let broker = broker(&[
            ("RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD", "correct horse"),
            ("RAPIDMQ_AUTH__SESSION_TTL_MS", "2000"),
        ]);
        let client = connect_as_admin(&broker).await;
        let admin = client.admin();
        admin
            .create_topic(
                "orders",
                TopicConfig {
                    partitions: 1,
                    ..TopicConfig::default()
                },
            )
            .await
            .unwrap();
        let first_expiry = admin
            .list_tokens(Some("admin".into()))
            .await
            .unwrap()
            .iter()
            .filter_map(|t| t.expires_at_ms)
            .min()
            .expect("a session");
        let consumer = client
            .consumer("orders")
            .subscription("sessions")
            .start(rapidmq::StartPosition::Earliest)
            .subscribe()
            .await
            .unwrap();
        let producer = client.producer("orders").build().await.unwrap();

        // Publish steadily from before the first session expires until well after, so requests
        // are in flight on the producer's stream when the broker ends it.
        let mut receipts = Vec::new();
        let mut sent = 0u32;
        while now_ms() < first_expiry + 500 {
            let message = rapidmq::Message::new(sent.to_string());
            receipts.push(producer.send(message).await.unwrap());
            sent += 1;
            tokio::time::sleep(Duration::from_millis(2)).await; // pacing, not synchronisation
        }
        for receipt in receipts {
            receipt
                .await
                .expect("a publish across the session change is acknowledged");
        }

        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < sent as usize {
            let messages = consumer
                .poll(1000, Duration::from_secs(1))
                .await
                .expect("the consumer outlives the session it subscribed with");
            for m in messages {
                let value: u32 = std::str::from_utf8(&m.value).unwrap().parse().unwrap();
                seen.insert(value);
            }
        }
        assert_eq!(seen.len(), sent as usize);
        assert!(
            consumer.stats().reconnects >= 1,
            "the consume stream was reopened on the new session"
        );
    })
    .await;
}

fn now_ms() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    u64::try_from(now.as_millis()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_and_tokens_are_managed_and_a_revoked_token_is_refused() {
    guarded("users and tokens", async {
        let token = generate_token();
        let broker = broker(&[("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", &token)]);
        let client = connect(&broker, Some(Credentials::Token(token)))
            .await
            .unwrap();
        let admin = client.admin();
        let alice = admin
            .create_user("alice", Some("s3cret".into()))
            .await
            .unwrap();
        assert!(alice.name == "alice" && alice.has_password);
        assert!(
            !admin
                .create_user("ci-bot", None)
                .await
                .unwrap()
                .has_password
        );
        let names: Vec<_> = admin
            .list_users()
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.name)
            .collect();
        assert_eq!(names, ["admin", "alice", "ci-bot"]);
        let err = admin
            .create_user("alice", Some("again".into()))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::UserAlreadyExists);

        // A user may do only what a role bound to it allows (deny by default).
        for user in ["alice", "ci-bot"] {
            admin
                .bind_role(user, "viewer", BindingScope::Tenant)
                .await
                .unwrap();
        }

        let created = admin
            .create_token(
                Some("ci-bot".into()),
                "deploys",
                Some(Duration::from_secs(3600)),
            )
            .await
            .unwrap();
        assert!(created.token.starts_with("rmq_"));
        assert_eq!(
            (created.info.user.as_str(), created.info.kind.as_str()),
            ("ci-bot", "api")
        );
        assert!(created.info.expires_at_ms.is_some());
        // rmq_<id>_<secret>: the id is base32, the secret base64url (it may hold '_').
        let secret = created.token.splitn(3, '_').nth(2).unwrap();
        assert!(!format!("{created:?}").contains(secret));
        let listed = admin.list_tokens(Some("ci-bot".into())).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, created.info.id);

        let bot = connect(&broker, Some(Credentials::Token(created.token.clone())))
            .await
            .unwrap();
        assert_eq!(bot.core().whoami().await.unwrap().1, "ci-bot");
        admin
            .revoke_tokens(vec![created.info.id.clone()])
            .await
            .unwrap();
        let err = bot.admin().list_topics().await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
        let err = connect(&broker, Some(Credentials::Token(created.token.clone())))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
        let err = admin
            .revoke_tokens(vec![created.info.id.clone()])
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::TokenNotFound);

        let login = |user: &str, password: &str| {
            connect(
                &broker,
                Some(Credentials::UserPassword {
                    user: user.into(),
                    password: password.into(),
                }),
            )
        };
        admin.set_password("alice", "n3w").await.unwrap();
        let err = login("alice", "s3cret").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
        let as_alice = login("alice", "n3w").await.unwrap();
        assert_eq!(as_alice.admin().whoami().await.unwrap().1, "alice");
        admin.delete_user("alice").await.unwrap();
        let err = admin.delete_user("alice").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::UserNotFound);
        let err = login("alice", "n3w").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_token_ends_an_open_consumer() {
    guarded("revoked consumer", async {
        let token = generate_token();
        let broker = broker(&[("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", &token)]);
        let client = connect(&broker, Some(Credentials::Token(token)))
            .await
            .unwrap();
        let admin = client.admin();
        admin
            .create_topic(
                "orders",
                TopicConfig {
                    partitions: 1,
                    ..TopicConfig::default()
                },
            )
            .await
            .unwrap();
        let created = admin.create_token(None, "consumer", None).await.unwrap();
        let bot = connect(&broker, Some(Credentials::Token(created.token.clone())))
            .await
            .unwrap();
        let consumer = bot
            .consumer("orders")
            .subscription("auth")
            .start(rapidmq::StartPosition::Earliest)
            .subscribe()
            .await
            .unwrap();
        admin.revoke_tokens(vec![created.info.id]).await.unwrap();
        // The stream ends with UNAUTHENTICATED; poll returns it rather than reconnecting.
        let err = loop {
            match consumer.poll(1, Duration::from_millis(500)).await {
                Ok(messages) => assert!(messages.is_empty()),
                Err(err) => break err,
            }
        };
        assert_eq!(err.code(), ErrorCode::Unauthenticated, "{err}");
    })
    .await;
}

/// `p` with its actions in a fixed order, so permissions compare whatever order the broker
/// lists actions in.
fn normalized(p: &Permission) -> Permission {
    let mut p = p.clone();
    p.actions.sort_by_key(|a| a.as_str());
    p
}

/// The permissions of `role` in `roles`, normalized.
fn permissions_of(roles: &[RoleInfo], role: &str) -> Vec<Permission> {
    let role = roles
        .iter()
        .find(|r| r.name == role)
        .unwrap_or_else(|| panic!("no role `{role}` in {roles:?}"));
    role.permissions.iter().map(normalized).collect()
}

/// Parsed and normalized permissions from their text form.
fn parsed(texts: &[&str]) -> Vec<Permission> {
    texts
        .iter()
        .map(|t| normalized(&t.parse::<Permission>().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_and_bindings_are_managed_through_the_admin_api() {
    guarded("roles", async {
        let token = generate_token();
        let broker = broker(&[("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", &token)]);
        let client = connect(&broker, Some(Credentials::Token(token)))
            .await
            .unwrap();
        let admin = client.admin();

        let roles = admin.list_roles().await.unwrap();
        let mut builtin: Vec<_> = roles
            .iter()
            .filter(|r| r.builtin)
            .map(|r| r.name.as_str())
            .collect();
        builtin.sort_unstable();
        assert_eq!(builtin, ["admin", "consumer", "producer", "viewer"]);
        assert_eq!(roles.len(), 4, "{roles:?}");
        assert_eq!(
            permissions_of(&roles, "producer"),
            parsed(&["allow publish,describe topic:*"])
        );
        assert_eq!(
            permissions_of(&roles, "consumer"),
            parsed(&[
                "allow consume,describe topic:*",
                "allow consume,describe,create subscription:*"
            ])
        );

        let texts = [
            "allow publish,describe topic:orders.*".to_string(),
            "deny publish topic:orders.audit".to_string(),
        ];
        let writer = admin.create_role("orders-writer", &texts).await.unwrap();
        assert!(!writer.builtin);
        let shown: Vec<String> = writer.permissions.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown, texts);
        let roles = admin.list_roles().await.unwrap();
        assert_eq!(
            permissions_of(&roles, "orders-writer"),
            parsed(&[&texts[0], &texts[1]])
        );
        for taken in ["orders-writer", "admin"] {
            let err = admin.create_role(taken, &texts).await.unwrap_err();
            assert_eq!(err.code(), ErrorCode::RoleAlreadyExists, "{taken}: {err}");
        }
        let err = admin
            .create_role("typo", &["allow publsh topic:orders".to_string()])
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
        assert!(err.to_string().contains("publsh"), "{err}");

        // The bootstrap admin is a cluster admin.
        let bindings = admin
            .list_role_bindings(Some("admin".into()))
            .await
            .unwrap();
        assert_eq!(
            bindings,
            [RoleBinding {
                tenant: "default".into(),
                user: "admin".into(),
                role: "admin".into(),
                scope: BindingScope::Cluster,
            }]
        );

        admin.create_user("ci-bot", None).await.unwrap();
        let bound = admin
            .bind_role("ci-bot", "orders-writer", BindingScope::Tenant)
            .await
            .unwrap();
        assert_eq!(
            (bound.user.as_str(), bound.role.as_str()),
            ("ci-bot", "orders-writer")
        );
        assert_eq!(bound.scope, BindingScope::Tenant);
        admin
            .bind_role("ci-bot", "orders-writer", BindingScope::Tenant)
            .await
            .expect("binding twice is not an error");
        admin
            .bind_role("ci-bot", "viewer", BindingScope::Tenant)
            .await
            .unwrap();
        let roles_of = |user: &'static str| {
            let admin = admin.clone();
            async move {
                let mut roles: Vec<String> = admin
                    .list_role_bindings(Some(user.into()))
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|b| b.role)
                    .collect();
                roles.sort();
                roles
            }
        };
        assert_eq!(roles_of("ci-bot").await, ["orders-writer", "viewer"]);
        let everyone = admin.list_role_bindings(None).await.unwrap();
        assert_eq!(everyone.len(), 3, "{everyone:?}");
        for (user, role, code) in [
            ("ci-bot", "no-such-role", ErrorCode::RoleNotFound),
            ("nobody", "viewer", ErrorCode::UserNotFound),
        ] {
            let err = admin
                .bind_role(user, role, BindingScope::Tenant)
                .await
                .unwrap_err();
            assert_eq!(err.code(), code, "{user} {role}: {err}");
        }

        admin.unbind_role("ci-bot", "viewer").await.unwrap();
        let err = admin.unbind_role("ci-bot", "viewer").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::RoleNotFound, "{err}");
        assert_eq!(roles_of("ci-bot").await, ["orders-writer"]);

        let err = admin.delete_role("admin").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{err}");
        admin.delete_role("orders-writer").await.unwrap();
        assert!(roles_of("ci-bot").await.is_empty());
        let err = admin.delete_role("orders-writer").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::RoleNotFound, "{err}");

        admin
            .bind_role("ci-bot", "producer", BindingScope::Tenant)
            .await
            .unwrap();
        admin.delete_user("ci-bot").await.unwrap();
        let left = admin.list_role_bindings(None).await.unwrap();
        assert!(left.iter().all(|b| b.user != "ci-bot"), "{left:?}");
    })
    .await;
}

/// C23, PERMISSION_DENIED: a user bound to `consumer` can consume but not publish, nor
/// administer roles.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_bound_to_consumer_can_consume_and_is_denied_publishing() {
    guarded("permission denied", async {
        let token = generate_token();
        let broker = broker(&[("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", &token)]);
        let client = connect(&broker, Some(Credentials::Token(token)))
            .await
            .unwrap();
        let admin = client.admin();
        admin
            .create_topic(
                "orders",
                TopicConfig {
                    partitions: 1,
                    ..TopicConfig::default()
                },
            )
            .await
            .unwrap();
        let producer = client.producer("orders").build().await.unwrap();
        let receipt = producer
            .send(rapidmq::Message::new("order-1"))
            .await
            .unwrap();
        guarded("admin's publish", receipt).await.unwrap();
        admin
            .create_user("reader", Some("s3cret".into()))
            .await
            .unwrap();
        admin
            .bind_role("reader", "consumer", BindingScope::Tenant)
            .await
            .unwrap();

        let reader = connect(
            &broker,
            Some(Credentials::UserPassword {
                user: "reader".into(),
                password: "s3cret".into(),
            }),
        )
        .await
        .unwrap();
        let denied = async {
            let producer = reader.producer("orders").build().await?;
            let receipt = producer.send(rapidmq::Message::new("forged")).await?;
            receipt.await
        };
        let err = denied.await.expect_err("a consumer published");
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        assert!(!err.is_retriable());
        assert!(err.to_string().contains("orders"), "{err}");

        let consumer = reader
            .consumer("orders")
            .subscription("billing")
            .start(rapidmq::StartPosition::Earliest)
            .subscribe()
            .await
            .unwrap();
        let messages = consumer.poll(10, Duration::from_secs(10)).await.unwrap();
        let values: Vec<_> = messages.iter().map(|m| common::text(&m.value)).collect();
        assert_eq!(values, ["order-1"]);

        let err = reader
            .admin()
            .create_role("mine", &["allow all topic:*".to_string()])
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::PermissionDenied, "{err}");
        let roles = reader.admin().list_roles().await;
        assert_eq!(
            roles.unwrap_err().code(),
            ErrorCode::PermissionDenied,
            "consumer grants nothing on the tenant"
        );
    })
    .await;
}
