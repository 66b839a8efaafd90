//! The audit log against a real broker with `--auth` (slice 5 of docs/adr/0004-security.md,
//! docs/security.md "Audit log"): admin changes and authentication failures are recorded with
//! who, what, from where and how it ended, and survive a restart; a flood of failed logins
//! stays a handful of counted records; the export is JSON lines; a tenant admin sees only its
//! tenant's records.

mod common;

use std::collections::HashSet;

use common::*;
use rapidmq_broker::auth::Token;
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

async fn admin(broker: &TestBroker) -> AdminClient<Channel> {
    let channel = Channel::from_shared(broker.grpc_url())
        .unwrap()
        .connect()
        .await
        .expect("connect to broker");
    AdminClient::new(channel)
}

fn with_token<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    request
}

/// A REST answer: status and JSON body (`Null` when empty or not JSON).
async fn rest(
    broker: &TestBroker,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request =
        reqwest::Client::new().request(method, format!("{}{path}", broker.http_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("HTTP request");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

async fn failed_login(client: &reqwest::Client, broker: &TestBroker, user: &str) -> StatusCode {
    client
        .post(format!("{}/v1/auth/login", broker.http_url()))
        .json(&json!({"user": user, "password": "not-the-password"}))
        .send()
        .await
        .expect("login request")
        .status()
}

/// Every record `token` may see whose action starts with `prefix`, through `GET /v1/audit`,
/// following the page tokens.
async fn audit(broker: &TestBroker, token: &str, prefix: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut page_token = String::new();
    loop {
        let path = format!("/v1/audit?action_prefix={prefix}&limit=50&page_token={page_token}");
        let (status, body) = rest(broker, reqwest::Method::GET, &path, Some(token), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        events.extend(body["events"].as_array().unwrap().iter().cloned());
        match body["next_page_token"].as_str() {
            Some(next) => page_token = next.to_string(),
            None => return events,
        }
    }
}

fn find<'a>(events: &'a [Value], action: &str, target: &str) -> Option<&'a Value> {
    events
        .iter()
        .find(|e| e["action"] == action && e["target"] == target)
}

/// Creates user `name` in `default` with `role` bound (at tenant scope) and returns its token.
async fn user_with_role(
    admin: &mut AdminClient<Channel>,
    token: &str,
    name: &str,
    role: &str,
) -> String {
    let create = pb::CreateUserRequest {
        name: name.into(),
        password: String::new(),
    };
    admin.create_user(with_token(create, token)).await.unwrap();
    let bind = pb::BindRoleRequest {
        user: name.into(),
        role: role.into(),
        scope: pb::BindingScope::Tenant.into(),
    };
    admin.bind_role(with_token(bind, token)).await.unwrap();
    let issue = pb::CreateTokenRequest {
        user: name.into(),
        ..Default::default()
    };
    admin
        .create_token(with_token(issue, token))
        .await
        .unwrap()
        .into_inner()
        .token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_a_role_binding_and_a_topic_deletion_are_recorded_and_survive_a_restart() {
    let (mut broker, token) = auth_broker();
    let client = reqwest::Client::new();
    assert_eq!(
        failed_login(&client, &broker, "admin").await,
        StatusCode::UNAUTHORIZED
    );
    let mut admin = admin(&broker).await;
    user_with_role(&mut admin, &token, "bob", "producer").await;
    let topic = pb::CreateTopicRequest {
        name: "orders".into(),
        config: None,
    };
    admin.create_topic(with_token(topic, &token)).await.unwrap();
    let delete = pb::DeleteTopicRequest {
        name: "orders".into(),
    };
    admin
        .delete_topic(with_token(delete, &token))
        .await
        .unwrap();

    let check = |events: &[Value]| {
        let login = find(events, "auth.login", "user:default/admin").expect("the failed login");
        assert_eq!(login["outcome"], "failed", "{login}");
        assert_eq!(login["actor"], "default/admin", "{login}");
        assert_eq!(login["transport"], "http", "{login}");
        assert!(
            login["source_addr"]
                .as_str()
                .unwrap()
                .starts_with("127.0.0.1:"),
            "{login}"
        );
        assert!(
            !login.to_string().contains("not-the-password"),
            "no secret is recorded: {login}"
        );
        let bind = find(events, "role.bind", "user:default/bob").expect("the role binding");
        assert_eq!(bind["outcome"], "ok", "{bind}");
        assert_eq!(bind["actor"], "default/admin", "{bind}");
        assert_eq!(bind["transport"], "grpc", "{bind}");
        assert!(
            bind["detail"].as_str().unwrap().contains("producer"),
            "{bind}"
        );
        let deletion = find(events, "topic.delete", "topic:orders").expect("the deletion");
        assert_eq!(deletion["outcome"], "ok", "{deletion}");
        assert_eq!(deletion["actor"], "default/admin", "{deletion}");
        assert_eq!(deletion["count"], 1, "{deletion}");
    };
    // The admin changes are written with the change; the failure within a commit interval.
    eventually("the failed login is recorded", || async {
        find(
            &audit(&broker, &token, "auth.").await,
            "auth.login",
            "user:default/admin",
        )
        .is_some()
    })
    .await;
    let before = audit(&broker, &token, "").await;
    check(&before);

    broker.restart();
    let after = audit(&broker, &token, "").await;
    check(&after);
    assert_eq!(after, before, "the same records after the restart");
    // New records sort after the old ones: the sequence went on from the last key.
    let mut admin = crate::admin(&broker).await;
    let topic = pb::CreateTopicRequest {
        name: "later".into(),
        config: None,
    };
    admin.create_topic(with_token(topic, &token)).await.unwrap();
    let query = pb::ListAuditEventsRequest {
        action_prefix: "topic.".into(),
        ..Default::default()
    };
    let events = admin
        .list_audit_events(with_token(query, &token))
        .await
        .unwrap()
        .into_inner()
        .events;
    let targets: Vec<&str> = events.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["topic:orders", "topic:orders", "topic:later"]);
    let ids: Vec<&str> = events.iter().map(|e| e.id.as_str()).collect();
    assert!(
        ids.is_sorted() && ids.iter().collect::<HashSet<_>>().len() == 3,
        "{ids:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_failed_logins_stays_a_handful_of_counted_records() {
    let (mut broker, token) = auth_broker();
    let client = reqwest::Client::new();
    const ATTEMPTS: u64 = 2000;
    for _ in 0..ATTEMPTS {
        let status = failed_login(&client, &broker, "mallory").await;
        // Refused as bad credentials, or, once the address backs off, as too many.
        assert!(
            status == StatusCode::UNAUTHORIZED || status == StatusCode::TOO_MANY_REQUESTS,
            "{status}"
        );
    }
    // The queue kept up: nothing was dropped.
    let metrics = client
        .get(format!("{}/metrics", broker.http_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "rapidmq_audit_dropped_total 0"),
        "{metrics}"
    );
    // A graceful stop writes the counts still being coalesced.
    broker.restart();
    let events: Vec<Value> = audit(&broker, &token, "auth.login")
        .await
        .into_iter()
        .filter(|e| e["actor"] == "default/mallory")
        .collect();
    let counts: u64 = events.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(counts, ATTEMPTS, "every attempt is counted: {events:#?}");
    assert!(
        events.len() <= 8,
        "coalesced into a handful of records, not one per attempt: {events:#?}"
    );
    assert!(events.iter().all(|e| e["outcome"] == "failed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_export_is_json_lines_and_a_tenant_admin_sees_only_its_tenant() {
    let (broker, token) = auth_broker();
    let client = reqwest::Client::new();
    // A failed login of a user of tenant `acme` is recorded in `acme`.
    failed_login(&client, &broker, "acme/alice").await;
    let mut admin = admin(&broker).await;
    let tenant_admin = user_with_role(&mut admin, &token, "carol", "admin").await;
    let viewer = user_with_role(&mut admin, &token, "victor", "viewer").await;

    // A token the broker does not know: recorded by its id, never its secret.
    let stranger = Token::generate().unwrap();
    let (status, _) = rest(
        &broker,
        reqwest::Method::GET,
        "/v1/topics",
        Some(&stranger.to_string()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let stranger_actor = format!("token:{}", stranger.id());
    // Without `admin` on the tenant: refused, and the refusal is recorded.
    let (status, _) = rest(
        &broker,
        reqwest::Method::GET,
        "/v1/audit",
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    eventually("the denial and the acme failure are recorded", || async {
        let all = audit(&broker, &token, "").await;
        let denied = all.iter().any(|e| {
            e["action"] == "authz.denied"
                && e["actor"] == "default/victor"
                && e["outcome"] == "denied"
        });
        let token_failed = all
            .iter()
            .any(|e| e["action"] == "auth.token" && e["actor"] == stranger_actor.as_str());
        denied && token_failed && all.iter().any(|e| e["tenant"] == "acme")
    })
    .await;
    let secret = stranger.to_string();
    // rmq_<id>_<secret>: the id is base32, the secret base64url (it may hold '_').
    let secret = secret.splitn(3, '_').nth(2).unwrap();
    let all = audit(&broker, &token, "").await;
    assert!(
        !serde_json::to_string(&all).unwrap().contains(secret),
        "no token secret is recorded"
    );

    // The cluster admin sees both tenants; the tenant admin only `default`.
    let all = audit(&broker, &token, "").await;
    let mine = audit(&broker, &tenant_admin, "").await;
    assert!(!mine.is_empty());
    assert!(mine.iter().all(|e| e["tenant"] == "default"), "{mine:#?}");
    assert_eq!(
        mine.len(),
        all.iter().filter(|e| e["tenant"] == "default").count()
    );

    // The export: every record the caller may see, one JSON object per line.
    let response = client
        .get(format!("{}/v1/audit/export", broker.http_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
        .collect();
    assert!(text.ends_with('\n'));
    let ids = |events: &[Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Records written after the listing (none are expected) would only come last.
    assert_eq!(ids(&exported)[..all.len()], ids(&all)[..]);
    // Compressed, as browsers and most HTTP clients ask: the compression layer polls the body
    // once more after its end, which once panicked the handler and cut the answer short.
    let compressed = client
        .get(format!("{}/v1/audit/export", broker.http_url()))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(compressed.status(), StatusCode::OK);
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    let gzipped = compressed
        .bytes()
        .await
        .expect("the whole compressed export");
    assert!(!gzipped.is_empty());
    for e in &exported {
        for field in [
            "ts_ms",
            "actor",
            "action",
            "target",
            "outcome",
            "count",
            "source_addr",
        ] {
            assert!(!e[field].is_null(), "{field} in {e}");
        }
    }
    let filtered = client
        .get(format!(
            "{}/v1/audit/export?outcome=denied",
            broker.http_url()
        ))
        .bearer_auth(&tenant_admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let denied: Vec<Value> = filtered
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert!(!denied.is_empty());
    assert!(
        denied
            .iter()
            .all(|e| e["outcome"] == "denied" && e["tenant"] == "default")
    );
}
