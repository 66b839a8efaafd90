//! Credentials against a broker with `--auth` (docs/security.md): an API token, a user and
//! password (with its session renewed before it expires), and wrong credentials failing at
//! connect with `UNAUTHENTICATED`.

mod common;

use std::time::Duration;

use common::guarded;
use rapidmq::{Client, Credentials, ErrorCode, TopicConfig};
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
        let client = connect(
            &broker,
            Some(Credentials::UserPassword {
                user: "admin".into(),
                password: "correct horse".into(),
            }),
        )
        .await
        .expect("log in as admin");
        let admin = client.admin();
        admin.list_topics().await.unwrap();
        // Twice the session's life: the first session has expired, the renewed one works.
        tokio::time::sleep(Duration::from_millis(3_000)).await;
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
