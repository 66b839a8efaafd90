//! Tenants and the audit log through the Rust SDK against a broker with `--auth`
//! (docs/security.md): a cluster admin creates a tenant with quotas, acts inside it with
//! `ClientBuilder::tenant`, sees its usage, changes its quotas, deletes it once it is empty,
//! and finds what it did inside the tenant in the audit log, filed under the tenant.

use rapidmq::{AuditQuery, Client, Credentials, ErrorCode, TenantQuotas, TopicConfig};
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

/// A broker with auth on whose bootstrap admin (a cluster admin) has `token`.
fn broker(token: &str) -> TestBroker {
    tokio::task::block_in_place(|| {
        TestBroker::start_with(BrokerOptions {
            env: vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".into(), token.into())],
            args: vec!["--auth".into()],
        })
    })
}

async fn connect(
    broker: &TestBroker,
    token: &str,
    tenant: Option<&str>,
) -> rapidmq::Result<Client> {
    let mut builder = Client::builder()
        .endpoint(broker.grpc_url())
        .credentials(Credentials::Token(token.into()));
    if let Some(tenant) = tenant {
        builder = builder.tenant(tenant);
    }
    builder.connect().await
}

#[track_caller]
fn assert_code<T: std::fmt::Debug>(result: rapidmq::Result<T>, code: ErrorCode) {
    match result {
        Err(err) => assert_eq!(err.code(), code, "{err}"),
        Ok(value) => panic!("expected {code}, got {value:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cluster_admin_manages_a_tenant_and_acts_inside_it() {
    let token = generate_token();
    let broker = broker(&token);
    let admin = connect(&broker, &token, None).await.unwrap().admin();

    let quotas = TenantQuotas {
        max_topics: Some(2),
        publish_bytes_per_sec: Some(1 << 20),
        ..TenantQuotas::default()
    };
    let acme = admin.create_tenant("acme", &quotas).await.unwrap();
    assert_eq!(acme.name, "acme");
    assert_eq!(acme.quotas.max_topics, Some(2));
    assert_eq!(acme.quotas.publish_bytes_per_sec, Some(1 << 20));
    assert!(
        acme.quotas.iter().all(|(_, value)| value.is_some()),
        "every quota in effect is set: {acme:?}"
    );
    assert_code(
        admin.create_tenant("acme", &TenantQuotas::default()).await,
        ErrorCode::TenantAlreadyExists,
    );
    let names: Vec<String> = admin
        .list_tenants()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert!(names.contains(&"acme".into()) && names.contains(&"default".into()));

    let inside = connect(&broker, &token, Some("acme"))
        .await
        .unwrap()
        .admin();
    inside
        .create_topic("orders", TopicConfig::default())
        .await
        .unwrap();
    let shown = inside.describe_tenant(None).await.unwrap();
    assert_eq!(shown.name, "acme");
    assert_eq!(shown.usage.topics, 1);
    assert!(
        admin
            .list_topics()
            .await
            .unwrap()
            .iter()
            .all(|t| t.name != "orders"),
        "the topic is in acme, not default"
    );

    let changed = admin
        .set_tenant_quotas(
            "acme",
            &TenantQuotas {
                max_topics: Some(0),
                ..TenantQuotas::default()
            },
            &["publish_bytes_per_sec".to_string()],
        )
        .await
        .unwrap();
    assert_eq!(changed.quotas.max_topics, Some(0), "0 is unlimited");
    let default = admin.describe_tenant(Some("default".into())).await.unwrap();
    assert_eq!(
        changed.quotas.publish_bytes_per_sec, default.quotas.publish_bytes_per_sec,
        "reset to the broker's default"
    );

    assert_code(admin.delete_tenant("acme").await, ErrorCode::TenantNotEmpty);
    inside.delete_topic("orders").await.unwrap();
    admin.delete_tenant("acme").await.unwrap();
    assert_code(
        admin.describe_tenant(Some("acme".into())).await,
        ErrorCode::TenantNotFound,
    );

    // The changes made inside acme are filed under acme.
    let page = admin
        .list_audit_events(&AuditQuery {
            action_prefix: Some("topic.".into()),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let changes: Vec<(&str, &str, &str)> = page
        .events
        .iter()
        .map(|e| (e.tenant.as_str(), e.action.as_str(), e.target.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("acme", "topic.create", "topic:orders"),
            ("acme", "topic.delete", "topic:orders"),
        ]
    );
    assert_eq!(page.next_page_token, None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_in_a_missing_or_malformed_tenant_is_refused() {
    let token = generate_token();
    let broker = broker(&token);
    let missing = match connect(&broker, &token, Some("nosuch")).await {
        Ok(client) => client.admin().list_topics().await.map(drop),
        Err(err) => Err(err),
    };
    assert_code(missing, ErrorCode::TenantNotFound);
    assert_code(
        connect(&broker, &token, Some("no/such")).await,
        ErrorCode::InvalidArgument,
    );
}
