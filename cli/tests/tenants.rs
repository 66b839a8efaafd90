//! Tenants and their quotas against a real broker with `--auth` (slice 4 of
//! docs/adr/0004-security.md, docs/security.md#tenants-and-quotas): a producer held to its
//! tenant's bytes per second while another tenant's is not slowed, unary and REST publishes
//! refused with the quota named, a storage quota that refuses and then accepts once retention
//! frees space, the count quotas, the connection quota, a consumer held to its consume rate,
//! and tenants surviving a restart.
//!
//! Rates are asserted over seconds of real traffic: the quota is the thing under test, and its
//! tolerance (±10 %) is the issue's, so these are not performance assertions.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rapidmq::{Client, Credentials, Message};
use rapidmq_broker::auth::Token;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use rapidmq_proto::{ErrorCode, QUOTA_METADATA, RETRY_AFTER_METADATA, TENANT_METADATA};
use tonic::transport::Channel;

/// A broker with `--auth` and a cluster admin from a fresh token, plus `env`.
fn auth_broker(env: &[(&str, &str)]) -> (TestBroker, String) {
    let token = Token::generate().unwrap().to_string();
    let mut vars = vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".to_string(), token.clone())];
    vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let broker = TestBroker::start_with(BrokerOptions {
        env: vars,
        args: vec!["--auth".into()],
    });
    (broker, token)
}

async fn channel(broker: &TestBroker) -> Channel {
    Channel::from_shared(broker.grpc_url())
        .unwrap()
        .connect()
        .await
        .expect("connect to broker")
}

/// `message` with a bearer token and, if set, `rapidmq-tenant`.
fn request<T>(message: T, token: &str, tenant: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
    if let Some(tenant) = tenant {
        metadata.insert(TENANT_METADATA, tenant.parse().unwrap());
    }
    request
}

fn quota(status: &tonic::Status) -> Option<&str> {
    status
        .metadata()
        .get(QUOTA_METADATA)
        .and_then(|v| v.to_str().ok())
}

/// As the cluster admin: creates `tenant` with `quotas` and a user `tenant/app` that is the
/// tenant's admin; returns that user's token.
async fn tenant_with_admin(
    admin: &mut AdminClient<Channel>,
    root: &str,
    tenant: &str,
    quotas: pb::TenantQuotas,
) -> String {
    admin
        .create_tenant(request(
            pb::CreateTenantRequest {
                name: tenant.into(),
                quotas: Some(quotas),
            },
            root,
            None,
        ))
        .await
        .expect("create the tenant");
    admin
        .create_user(request(
            pb::CreateUserRequest {
                name: "app".into(),
                password: String::new(),
            },
            root,
            Some(tenant),
        ))
        .await
        .expect("create tenant/app");
    admin
        .bind_role(request(
            pb::BindRoleRequest {
                user: "app".into(),
                role: "admin".into(),
                scope: pb::BindingScope::Tenant.into(),
            },
            root,
            Some(tenant),
        ))
        .await
        .expect("make tenant/app the tenant's admin");
    admin
        .create_token(request(
            pb::CreateTokenRequest {
                user: "app".into(),
                ..Default::default()
            },
            root,
            Some(tenant),
        ))
        .await
        .expect("a token for tenant/app")
        .into_inner()
        .token
}

async fn create_topic(
    admin: &mut AdminClient<Channel>,
    token: &str,
    name: &str,
    config: pb::TopicConfig,
) -> Result<pb::TopicInfo, tonic::Status> {
    admin
        .create_topic(request(
            pb::CreateTopicRequest {
                name: name.into(),
                config: Some(config),
            },
            token,
            None,
        ))
        .await
        .map(|r| r.into_inner())
}

fn one_partition() -> pb::TopicConfig {
    pb::TopicConfig {
        partitions: Some(1),
        ..Default::default()
    }
}

fn batch_of(messages: usize, bytes: usize) -> bytes::Bytes {
    use prost::Message as _;
    pb::MessageBatch {
        messages: (0..messages)
            .map(|_| pb::Message {
                value: vec![b'x'; bytes].into(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
    .encode_to_vec()
    .into()
}

async fn publish(
    messaging: &mut MessagingClient<Channel>,
    token: &str,
    topic: &str,
    batch: bytes::Bytes,
) -> Result<(), tonic::Status> {
    messaging
        .publish(request(
            pb::PublishRequest {
                topic: topic.into(),
                batch,
                ..Default::default()
            },
            token,
            None,
        ))
        .await
        .map(|_| ())
}

async fn describe(admin: &mut AdminClient<Channel>, token: &str) -> pb::TenantInfo {
    admin
        .describe_tenant(request(pb::DescribeTenantRequest::default(), token, None))
        .await
        .expect("describe the tenant")
        .into_inner()
}

/// Sends 1000-byte messages through the SDK as fast as acknowledgements allow, 20 at a time,
/// and returns the payload bytes per second acknowledged between `warmup` and
/// `warmup + window`.
async fn produce_for(
    broker: &TestBroker,
    token: &str,
    topic: &str,
    warmup: Duration,
    window: Duration,
) -> f64 {
    let client = Client::builder()
        .endpoint(broker.grpc_url())
        .credentials(Credentials::Token(token.to_string()))
        .connect()
        .await
        .expect("connect the producer");
    let producer = client.producer(topic).build().await.expect("a producer");
    let payload = vec![b'x'; 1000];
    let started = Instant::now();
    let (from, to) = (started + warmup, started + warmup + window);
    let mut counted = 0u64;
    loop {
        let mut receipts = Vec::with_capacity(20);
        for _ in 0..20 {
            receipts.push(producer.send(Message::new(payload.clone())).await.unwrap());
        }
        for receipt in receipts {
            receipt.await.expect("acknowledged");
        }
        let now = Instant::now();
        if now >= to {
            break;
        }
        if now >= from {
            counted += 20 * 1000;
        }
    }
    counted as f64 / window.as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_producer_is_held_to_its_tenant_s_bytes_per_second_and_another_tenant_s_is_not_slowed() {
    let (broker, root) = auth_broker(&[]);
    let mut admin = AdminClient::new(channel(&broker).await);
    const QUOTA: u64 = 200_000;
    let slow = tenant_with_admin(
        &mut admin,
        &root,
        "slow",
        pb::TenantQuotas {
            publish_bytes_per_sec: Some(QUOTA),
            ..Default::default()
        },
    )
    .await;
    let fast = tenant_with_admin(&mut admin, &root, "fast", Default::default()).await;
    for token in [&slow, &fast] {
        create_topic(&mut admin, token, "load", one_partition())
            .await
            .expect("create the topic");
    }
    let (warmup, window) = (Duration::from_secs(1), Duration::from_secs(10));
    let (slow_rate, fast_rate) = tokio::join!(
        produce_for(&broker, &slow, "load", warmup, window),
        produce_for(&broker, &fast, "load", warmup, window),
    );
    println!(
        "throttled tenant: {slow_rate:.0} B/s (quota {QUOTA}); other tenant: {fast_rate:.0} B/s"
    );
    // The quota counts the batches as sent; 1000-byte values carry a few bytes of framing.
    let quota = QUOTA as f64;
    assert!(
        (quota * 0.9..=quota * 1.1).contains(&slow_rate),
        "the throttled tenant published {slow_rate:.0} B/s against a quota of {QUOTA}"
    );
    assert!(
        fast_rate > 3.0 * quota,
        "the other tenant published only {fast_rate:.0} B/s next to the throttled one"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unary_and_rest_publishes_over_the_rate_are_refused_naming_the_quota() {
    let (broker, root) = auth_broker(&[]);
    let channel = channel(&broker).await;
    let mut admin = AdminClient::new(channel.clone());
    let mut messaging = MessagingClient::new(channel);
    let token = tenant_with_admin(
        &mut admin,
        &root,
        "acme",
        pb::TenantQuotas {
            publish_msgs_per_sec: Some(1),
            ..Default::default()
        },
    )
    .await;
    create_topic(&mut admin, &token, "orders", one_partition())
        .await
        .unwrap();
    publish(&mut messaging, &token, "orders", batch_of(5, 10))
        .await
        .expect("the first batch passes, into debt");
    let refused = publish(&mut messaging, &token, "orders", batch_of(1, 10))
        .await
        .unwrap_err();
    assert_eq!(
        error_code(&refused),
        ErrorCode::ResourceExhausted,
        "{refused:?}"
    );
    assert_eq!(quota(&refused), Some("publish_msgs_per_sec"));
    let retry_after: u64 = refused
        .metadata()
        .get(RETRY_AFTER_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a retry hint");
    assert!((1..=5_000).contains(&retry_after), "{retry_after}");

    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}/v1/topics/orders/message", broker.http_url()))
        .bearer_auth(&token)
        .json(&serde_json::json!({"value": "hi"}))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let headers = answer.headers().clone();
    let problem: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(status, 429, "{problem}");
    assert_eq!(headers.get(QUOTA_METADATA).unwrap(), "publish_msgs_per_sec");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(problem["name"], "RESOURCE_EXHAUSTED");
    assert_eq!(problem["quota"], "publish_msgs_per_sec");

    // Another tenant, and the default one, publish freely meanwhile.
    let other = tenant_with_admin(&mut admin, &root, "other", Default::default()).await;
    create_topic(&mut admin, &other, "orders", one_partition())
        .await
        .unwrap();
    for _ in 0..5 {
        publish(&mut messaging, &other, "orders", batch_of(5, 10))
            .await
            .expect("another tenant is not throttled");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_storage_quota_refuses_publishes_until_retention_frees_space() {
    let (broker, root) = auth_broker(&[("RAPIDMQ_RETENTION__CHECK_INTERVAL_MS", "200")]);
    let channel = channel(&broker).await;
    let mut admin = AdminClient::new(channel.clone());
    let mut messaging = MessagingClient::new(channel);
    const STORAGE: u64 = 20_000;
    let token = tenant_with_admin(
        &mut admin,
        &root,
        "acme",
        pb::TenantQuotas {
            storage_bytes: Some(STORAGE),
            ..Default::default()
        },
    )
    .await;
    create_topic(
        &mut admin,
        &token,
        "events",
        pb::TopicConfig {
            partitions: Some(1),
            retention_ms: Some(2_000),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let mut accepted = 0;
    let refused = loop {
        match publish(&mut messaging, &token, "events", batch_of(5, 1000)).await {
            Ok(()) => accepted += 1,
            Err(status) => break status,
        }
        assert!(
            accepted < 10,
            "20 KB of quota took {accepted} batches of 5 KB"
        );
    };
    assert_eq!(
        error_code(&refused),
        ErrorCode::ResourceExhausted,
        "{refused:?}"
    );
    assert_eq!(quota(&refused), Some("storage_bytes"));
    let stored = describe(&mut admin, &token)
        .await
        .usage
        .unwrap()
        .storage_bytes;
    assert!(stored >= STORAGE, "refused at {stored} stored bytes");
    // Retention drops the batches once they are 2 s old; publishes are accepted again.
    let deadline = Instant::now() + PATIENCE;
    loop {
        match publish(&mut messaging, &token, "events", batch_of(5, 1000)).await {
            Ok(()) => break,
            Err(status) => {
                assert_eq!(quota(&status), Some("storage_bytes"), "{status:?}");
                assert!(Instant::now() < deadline, "retention never freed space");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let stored = describe(&mut admin, &token)
        .await
        .usage
        .unwrap()
        .storage_bytes;
    assert!(stored < STORAGE, "{stored}");
}

#[tokio::test(flavor = "multi_thread")]
async fn topic_and_partition_quotas_are_counted_per_tenant() {
    let (broker, root) = auth_broker(&[]);
    let mut admin = AdminClient::new(channel(&broker).await);
    let token = tenant_with_admin(
        &mut admin,
        &root,
        "acme",
        pb::TenantQuotas {
            max_topics: Some(2),
            max_partitions: Some(3),
            ..Default::default()
        },
    )
    .await;
    let partitions = |n| pb::TopicConfig {
        partitions: Some(n),
        ..Default::default()
    };
    create_topic(&mut admin, &token, "a", partitions(2))
        .await
        .unwrap();
    let refused = create_topic(&mut admin, &token, "b", partitions(2))
        .await
        .unwrap_err();
    assert_eq!(error_code(&refused), ErrorCode::ResourceExhausted);
    assert_eq!(quota(&refused), Some("max_partitions"));
    create_topic(&mut admin, &token, "b", partitions(1))
        .await
        .unwrap();
    let refused = create_topic(&mut admin, &token, "c", partitions(1))
        .await
        .unwrap_err();
    assert_eq!(quota(&refused), Some("max_topics"));
    // The default tenant's own count is untouched by acme's.
    create_topic(&mut admin, &root, "c", partitions(1))
        .await
        .expect("the default tenant has its own count");
    let usage = describe(&mut admin, &token).await.usage.unwrap();
    assert_eq!((usage.topics, usage.partitions, usage.users), (2, 3, 1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_quota_refuses_a_second_connection_until_the_first_closes() {
    let (broker, root) = auth_broker(&[]);
    let mut admin = AdminClient::new(channel(&broker).await);
    let token = tenant_with_admin(
        &mut admin,
        &root,
        "acme",
        pb::TenantQuotas {
            max_connections: Some(1),
            ..Default::default()
        },
    )
    .await;
    let mut first = AdminClient::new(channel(&broker).await);
    describe(&mut first, &token).await;
    let mut second = AdminClient::new(channel(&broker).await);
    let refused = second
        .describe_tenant(request(pb::DescribeTenantRequest::default(), &token, None))
        .await
        .unwrap_err();
    assert_eq!(error_code(&refused), ErrorCode::ResourceExhausted);
    assert_eq!(quota(&refused), Some("max_connections"));
    // The connection counted is the one already open: it goes on working.
    describe(&mut first, &token).await;
    drop(first);
    let deadline = Instant::now() + PATIENCE;
    loop {
        match second
            .describe_tenant(request(pb::DescribeTenantRequest::default(), &token, None))
            .await
        {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(quota(&status), Some("max_connections"), "{status:?}");
                assert!(
                    Instant::now() < deadline,
                    "the closed connection still counts"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// A broker whose tenant `acme` may consume 100 KB/s, with `batches` batches of 10 KB
/// published to its topic `events`; the token of `acme/app` and a messaging client.
async fn consume_limited(batches: usize) -> (TestBroker, String, MessagingClient<Channel>) {
    let (broker, root) = auth_broker(&[]);
    let channel = channel(&broker).await;
    let mut admin = AdminClient::new(channel.clone());
    let mut messaging = MessagingClient::new(channel);
    let token = tenant_with_admin(
        &mut admin,
        &root,
        "acme",
        pb::TenantQuotas {
            consume_bytes_per_sec: Some(100_000),
            ..Default::default()
        },
    )
    .await;
    create_topic(&mut admin, &token, "events", one_partition())
        .await
        .unwrap();
    for _ in 0..batches {
        publish(&mut messaging, &token, "events", batch_of(10, 1000))
            .await
            .unwrap();
    }
    (broker, token, messaging)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_consumer_is_held_to_its_tenant_s_consume_rate() {
    // 300 KB in 30 batches of 10 KB, under 100 KB/s.
    let (_broker, token, mut messaging) = consume_limited(30).await;
    let started = Instant::now();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscribe(pb::Subscribe {
            topic: "events".into(),
            subscription: "reader".into(),
            credits: 1000,
            consumer_name: "reader".into(),
            start: Some(start(pb::StartKind::Earliest)),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut inbound = messaging
        .consume(request(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            &token,
            None,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    let mut received = 0;
    while received < 300 {
        let response = tokio::time::timeout(PATIENCE, inbound.message())
            .await
            .expect("deliveries keep coming")
            .expect("the stream works")
            .expect("the stream stays open");
        if let Some(pb::consume_response::Kind::Batch(batch)) = response.kind {
            received += (batch.count - batch.skip) as usize;
        }
    }
    // 300 KB at 100 KB/s, less the 10 KB burst: at least 2.5 s, whatever the machine.
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(2_500),
        "300 KB consumed in {elapsed:?} under a 100 KB/s quota"
    );
    drop(tx);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fetch_over_the_consume_rate_waits_within_its_max_wait_or_answers_nothing() {
    let (_broker, token, mut messaging) = consume_limited(20).await;
    let mut fetch = async |offset: u64, max_wait_ms: u32| {
        messaging
            .fetch(request(
                pb::FetchRequest {
                    topic: "events".into(),
                    partition: 0,
                    offset,
                    max_messages: 1000,
                    max_wait_ms,
                },
                &token,
                None,
            ))
            .await
            .expect("fetch")
            .into_inner()
    };
    // 200 KB at once puts the tenant ~2 s into debt.
    let first = fetch(0, 0).await;
    let count: u32 = first.batches.iter().map(|b| b.count - b.skip).sum();
    assert_eq!(count, 200);
    let refused = fetch(0, 0).await;
    assert!(refused.batches.is_empty(), "{refused:?}");
    let started = Instant::now();
    let waited = fetch(0, 10_000).await;
    assert!(!waited.batches.is_empty());
    assert!(
        started.elapsed() >= Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_and_quotas_survive_a_restart_and_only_an_empty_tenant_is_deleted() {
    let (mut broker, root) = auth_broker(&[]);
    let mut admin = AdminClient::new(channel(&broker).await);
    let token = tenant_with_admin(
        &mut admin,
        &root,
        "acme",
        pb::TenantQuotas {
            storage_bytes: Some(1 << 20),
            ..Default::default()
        },
    )
    .await;
    admin
        .set_tenant_quotas(request(
            pb::SetTenantQuotasRequest {
                name: "acme".into(),
                quotas: Some(pb::TenantQuotas {
                    max_topics: Some(7),
                    ..Default::default()
                }),
                reset: vec!["storage_bytes".into()],
            },
            &root,
            None,
        ))
        .await
        .unwrap();
    broker.restart();
    let mut admin = AdminClient::new(channel(&broker).await);
    let acme = describe(&mut admin, &token).await;
    let quotas = acme.quotas.unwrap();
    assert_eq!(quotas.max_topics, Some(7));
    assert_eq!(
        quotas.storage_bytes,
        Some(0),
        "reset to the default: unlimited"
    );
    let names: Vec<String> = admin
        .list_tenants(request(pb::ListTenantsRequest {}, &root, None))
        .await
        .unwrap()
        .into_inner()
        .tenants
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["acme", "default"]);

    let delete = |name: &str| request(pb::DeleteTenantRequest { name: name.into() }, &root, None);
    let refused = admin.delete_tenant(delete("acme")).await.unwrap_err();
    assert_eq!(error_code(&refused), ErrorCode::TenantNotEmpty);
    admin
        .delete_user(request(
            pb::DeleteUserRequest { name: "app".into() },
            &root,
            Some("acme"),
        ))
        .await
        .unwrap();
    admin.delete_tenant(delete("acme")).await.unwrap();
    let gone = admin.delete_tenant(delete("acme")).await.unwrap_err();
    assert_eq!(error_code(&gone), ErrorCode::TenantNotFound);
    let refused = admin.delete_tenant(delete("default")).await.unwrap_err();
    assert_eq!(error_code(&refused), ErrorCode::PermissionDenied);
    let created = admin
        .create_tenant(request(
            pb::CreateTenantRequest {
                name: "default".into(),
                quotas: None,
            },
            &root,
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(error_code(&created), ErrorCode::TenantAlreadyExists);

    // Each change is in the audit log, filed under the tenant it changed.
    let events = admin
        .list_audit_events(request(
            pb::ListAuditEventsRequest {
                action_prefix: "tenant.".into(),
                ..Default::default()
            },
            &root,
            None,
        ))
        .await
        .unwrap()
        .into_inner()
        .events;
    let seen: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.tenant.as_str(),
                e.actor.as_str(),
                e.outcome.as_str(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("tenant.create", "acme", "default/admin", "ok"),
            ("tenant.quotas", "acme", "default/admin", "ok"),
            ("tenant.delete", "acme", "default/admin", "ok"),
        ]
    );
    assert_eq!(events[1].detail, "max_topics=7 storage_bytes=default");
}
