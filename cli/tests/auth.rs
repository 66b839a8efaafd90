//! Authentication against a real broker (issue 16 slice 2, docs/adr/0004-security.md §3–§5):
//! the bootstrap admin, bearer tokens on gRPC and REST, anonymous callers refused, one answer
//! for every credential that does not work, password logins and sessions, revocation, expiry,
//! open streams ending when their credential does, persistence across a restart, the CLI, and
//! auth off changing nothing.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use rapidmq_broker::auth::Token;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_proto::v1::auth_client::AuthClient;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tonic::transport::Channel;

/// A broker with `--auth` whose first admin is created from a fresh token.
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

async fn get(broker: &TestBroker, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    rest(broker, reqwest::Method::GET, path, token, None).await
}

async fn post(
    broker: &TestBroker,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    rest(broker, reqwest::Method::POST, path, token, Some(body)).await
}

#[track_caller]
fn assert_unauthenticated(reply: &(StatusCode, Value)) {
    assert_eq!(reply.0, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.1["code"], 6001, "{reply:?}");
    assert_eq!(reply.1["name"], "UNAUTHENTICATED", "{reply:?}");
}

async fn channel(broker: &TestBroker) -> Channel {
    Channel::from_shared(broker.grpc_url())
        .unwrap()
        .connect()
        .await
        .expect("connect to broker")
}

fn with_token<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    request
}

/// Binds `role` to `user` (in the tenant) as `admin`: a user may do only what a role allows.
async fn bind(broker: &TestBroker, admin: &str, user: &str, role: &str) {
    AdminClient::new(channel(broker).await)
        .bind_role(with_token(
            pb::BindRoleRequest {
                user: user.into(),
                role: role.into(),
                scope: pb::BindingScope::Tenant.into(),
            },
            Some(admin),
        ))
        .await
        .expect("bind a role");
}

async fn grpc_list_topics(broker: &TestBroker, token: Option<&str>) -> Result<(), tonic::Status> {
    AdminClient::new(channel(broker).await)
        .list_topics(with_token(pb::ListTopicsRequest {}, token))
        .await
        .map(drop)
}

async fn grpc_whoami(
    broker: &TestBroker,
    token: Option<&str>,
) -> Result<pb::WhoAmIResponse, tonic::Status> {
    AuthClient::new(channel(broker).await)
        .who_am_i(with_token(pb::WhoAmIRequest {}, token))
        .await
        .map(tonic::Response::into_inner)
}

#[test]
fn a_broker_with_auth_and_no_bootstrap_secret_refuses_to_start_and_says_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let output = rapidmq_testkit::cli_command()
        .arg("serve")
        .arg("--auth")
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args([
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .env_remove("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN")
        .env_remove("RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run rapidmq serve");
    assert!(!output.status.success(), "the broker started");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN")
            && stderr.contains("RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD")
            && stderr.contains("rapidmq token generate"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_bootstrap_token_works_on_grpc_and_rest_and_anonymous_callers_are_refused() {
    let (broker, admin) = auth_broker(&[]);

    assert_eq!(
        get(&broker, "/v1/topics", Some(&admin)).await.0,
        StatusCode::OK
    );
    let (status, me) = get(&broker, "/v1/auth/whoami", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["user"], "admin");
    assert_eq!(me["tenant"], "default");
    assert_eq!(me["auth_enabled"], true);
    grpc_list_topics(&broker, Some(&admin)).await.unwrap();
    let me = grpc_whoami(&broker, Some(&admin)).await.unwrap();
    assert_eq!((me.user.as_str(), me.kind.as_str()), ("admin", "user"));

    for path in [
        "/v1/topics",
        "/v1/auth/whoami",
        "/metrics",
        "/v1/openapi.json",
        "/",
    ] {
        assert_unauthenticated(&get(&broker, path, None).await);
    }
    assert_unauthenticated(&post(&broker, "/v1/topics", None, json!({"name": "t"})).await);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(get(&broker, path, None).await.0, StatusCode::OK, "{path}");
    }
    assert_eq!(
        get(&broker, "/metrics", Some(&admin)).await.0,
        StatusCode::OK
    );

    let refused = grpc_list_topics(&broker, None).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert_eq!(
        error_code(&refused),
        rapidmq_proto::ErrorCode::Unauthenticated
    );
    let refused = grpc_whoami(&broker, None).await.unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
}

#[tokio::test]
async fn metrics_open_lets_scrapers_in_without_credentials_and_nothing_else() {
    let (broker, _admin) = auth_broker(&[("RAPIDMQ_AUTH__METRICS_OPEN", "true")]);
    assert_eq!(get(&broker, "/metrics", None).await.0, StatusCode::OK);
    assert_unauthenticated(&get(&broker, "/v1/topics", None).await);
}

#[tokio::test]
async fn a_wrong_secret_is_refused_exactly_like_an_unknown_or_malformed_token() {
    let (broker, admin) = auth_broker(&[]);
    // The admin token's id with another secret.
    let other = Token::generate().unwrap().to_string();
    let wrong_secret = format!("{}{}", &admin[..17], &other[17..]);
    let unknown = Token::generate().unwrap().to_string();
    let mut answers = Vec::new();
    for token in [wrong_secret.as_str(), unknown.as_str(), "rmq_nonsense", "x"] {
        let reply = get(&broker, "/v1/topics", Some(token)).await;
        assert_unauthenticated(&reply);
        answers.push(reply.1);
        let refused = grpc_list_topics(&broker, Some(token)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert_eq!(refused.message(), "invalid or expired credentials");
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    // Another scheme is a bad credential too, not an anonymous request.
    let basic = reqwest::Client::new()
        .get(format!("{}/v1/topics", broker.http_url()))
        .basic_auth("admin", Some("x"))
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_login_gives_a_session_token_and_every_failed_login_looks_the_same() {
    let (broker, admin) = auth_broker(&[]);
    let (status, user) = post(
        &broker,
        "/v1/users",
        Some(&admin),
        json!({"name": "alice", "password": "correct horse"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(user["has_password"], true);
    bind(&broker, &admin, "alice", "viewer").await;

    let (status, session) = post(
        &broker,
        "/v1/auth/login",
        None,
        json!({"user": "alice", "password": "correct horse"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{session}");
    let token = session["token"].as_str().unwrap();
    let (_, me) = get(&broker, "/v1/auth/whoami", Some(token)).await;
    assert_eq!(me["user"], "alice");
    assert_eq!(me["token_id"], session["token_id"]);
    assert!(me["expires_at_ms"].as_u64().is_some());
    grpc_list_topics(&broker, Some(token)).await.unwrap();

    let login = |user: &'static str, password: &'static str| {
        let broker = &broker;
        async move {
            post(
                broker,
                "/v1/auth/login",
                None,
                json!({"user": user, "password": password}),
            )
            .await
        }
    };
    let wrong_password = login("alice", "wrong horse").await;
    let unknown_user = login("mallory", "correct horse").await;
    let no_password = login("admin", "anything").await;
    for reply in [&wrong_password, &unknown_user, &no_password] {
        assert_unauthenticated(reply);
    }
    assert_eq!(wrong_password.1, unknown_user.1);
    assert_eq!(wrong_password.1, no_password.1);

    let mut auth = AuthClient::new(channel(&broker).await);
    let session = auth
        .login(pb::LoginRequest {
            user: "alice".into(),
            password: "correct horse".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        grpc_whoami(&broker, Some(&session.token))
            .await
            .unwrap()
            .user,
        "alice"
    );
    let mut messages = Vec::new();
    for (user, password) in [("alice", "wrong horse"), ("mallory", "correct horse")] {
        let refused = auth
            .login(pb::LoginRequest {
                user: user.into(),
                password: password.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        messages.push(refused.message().to_string());
    }
    assert_eq!(messages[0], messages[1]);
}

/// A REST login of `user` from the local address `from` (any of 127.0.0.0/8 reaches the
/// broker): status, `Retry-After` and body.
async fn login_from(
    broker: &TestBroker,
    from: &str,
    user: &str,
    password: &str,
) -> (StatusCode, Option<String>, Value) {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let response = client
        .post(format!("{}/v1/auth/login", broker.http_url()))
        .json(&json!({"user": user, "password": password}))
        .send()
        .await
        .expect("HTTP request");
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_string());
    (
        response.status(),
        retry_after,
        response.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn failed_logins_back_off_per_address_and_user_even_for_the_right_password() {
    let (broker, admin) = auth_broker(&[]);
    for name in ["alice", "bob"] {
        let (status, body) = post(
            &broker,
            "/v1/users",
            Some(&admin),
            json!({"name": name, "password": "correct horse"}),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let mut auth = AuthClient::new(channel(&broker).await);
    let login = |user: &str, password: &str| pb::LoginRequest {
        user: user.into(),
        password: password.into(),
    };

    // Five failures are free; the next ones close alice's logins from this address. A refusal
    // with most of its backoff left is what the rest of the test relies on.
    let mut failures = 0;
    let hint_ms = loop {
        let refused = auth.login(login("alice", "wrong")).await.unwrap_err();
        match refused.code() {
            tonic::Code::Unauthenticated => {
                failures += 1;
                assert!(failures <= 12, "still no backoff after {failures} failures");
            }
            tonic::Code::ResourceExhausted => {
                assert!(failures > 5, "only {failures} failures before the backoff");
                let hint: u64 = refused
                    .metadata()
                    .get("retry-after-ms")
                    .expect("a retry hint")
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!(hint <= 60_000, "{hint}");
                if hint >= 250 {
                    break hint;
                }
            }
            other => panic!("unexpected {other:?}: {refused:?}"),
        }
    };
    assert!(hint_ms >= 250);

    // The right password does not help while the backoff lasts, on gRPC or REST.
    let refused = auth
        .login(login("alice", "correct horse"))
        .await
        .unwrap_err();
    assert_eq!(
        refused.code(),
        tonic::Code::ResourceExhausted,
        "{refused:?}"
    );
    assert!(refused.metadata().get("retry-after-ms").is_some());
    let (status, retry_after, body) =
        login_from(&broker, "127.0.0.1", "alice", "correct horse").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["name"], "RESOURCE_EXHAUSTED");
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&seconds), "{seconds}");

    // Another user from this address, and alice from another address, are not affected.
    let (status, _, body) = login_from(&broker, "127.0.0.1", "bob", "correct horse").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = login_from(&broker, "127.0.0.2", "alice", "correct horse").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A success forgets the failures before it: four, a success, five more are all free.
    for _ in 0..4 {
        let reply = login_from(&broker, "127.0.0.3", "alice", "wrong").await;
        assert_eq!(reply.0, StatusCode::UNAUTHORIZED, "{reply:?}");
    }
    let reply = login_from(&broker, "127.0.0.3", "alice", "correct horse").await;
    assert_eq!(reply.0, StatusCode::OK, "{reply:?}");
    for _ in 0..5 {
        let reply = login_from(&broker, "127.0.0.3", "alice", "wrong").await;
        assert_eq!(reply.0, StatusCode::UNAUTHORIZED, "{reply:?}");
    }
}

#[tokio::test]
async fn plaintext_password_logins_from_this_host_still_work_without_allowing_plaintext() {
    // Non-loopback peers need TLS unless auth.allow_plaintext_passwords (unit-tested on
    // PeerInfo: a test can only reach the broker over loopback). Loopback stays open, over
    // any of 127.0.0.0/8, on gRPC and REST, with the setting explicitly off.
    let (broker, admin) = auth_broker(&[("RAPIDMQ_AUTH__ALLOW_PLAINTEXT_PASSWORDS", "false")]);
    let (status, body) = post(
        &broker,
        "/v1/users",
        Some(&admin),
        json!({"name": "alice", "password": "correct horse"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    bind(&broker, &admin, "alice", "viewer").await;
    for from in ["127.0.0.1", "127.0.0.9"] {
        let (status, _, body) = login_from(&broker, from, "alice", "correct horse").await;
        assert_eq!(status, StatusCode::OK, "from {from}: {body}");
    }
    let session = AuthClient::new(channel(&broker).await)
        .login(pb::LoginRequest {
            user: "alice".into(),
            password: "correct horse".into(),
        })
        .await
        .expect("a loopback login over plaintext gRPC")
        .into_inner();
    assert_eq!(
        grpc_whoami(&broker, Some(&session.token))
            .await
            .unwrap()
            .user,
        "alice"
    );
}

#[tokio::test]
async fn revoked_and_expired_tokens_and_sessions_are_refused() {
    let (broker, admin) = auth_broker(&[("RAPIDMQ_AUTH__SESSION_TTL_MS", "1500")]);
    let (status, created) = post(
        &broker,
        "/v1/users/admin/tokens",
        Some(&admin),
        json!({"description": "ci"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap();
    let id = created["info"]["id"].as_str().unwrap();
    assert_eq!(
        get(&broker, "/v1/topics", Some(token)).await.0,
        StatusCode::OK
    );
    let (_, listed) = get(&broker, "/v1/users/admin/tokens", Some(&admin)).await;
    assert!(
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["id"] == id),
        "{listed}"
    );
    assert!(
        !listed.to_string().contains(&token[17..]),
        "a listing shows no secret"
    );

    let (status, _) = rest(
        &broker,
        reqwest::Method::DELETE,
        &format!("/v1/tokens/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_unauthenticated(&get(&broker, "/v1/topics", Some(token)).await);
    assert!(grpc_list_topics(&broker, Some(token)).await.is_err());
    let (status, body) = rest(
        &broker,
        reqwest::Method::DELETE,
        &format!("/v1/tokens/{id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (StatusCode::NOT_FOUND, Some("TOKEN_NOT_FOUND"))
    );

    // An API token with a short life.
    let (_, created) = post(
        &broker,
        "/v1/users/admin/tokens",
        Some(&admin),
        json!({"ttl_ms": 1}),
    )
    .await;
    let short = created["token"].as_str().unwrap().to_string();
    eventually("a 1 ms token is refused", || async {
        get(&broker, "/v1/topics", Some(&short)).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;

    // A session lives auth.session_ttl_ms (1.5 s here).
    post(
        &broker,
        "/v1/users",
        Some(&admin),
        json!({"name": "bob", "password": "pw"}),
    )
    .await;
    bind(&broker, &admin, "bob", "viewer").await;
    let (_, session) = post(
        &broker,
        "/v1/auth/login",
        None,
        json!({"user": "bob", "password": "pw"}),
    )
    .await;
    let session = session["token"].as_str().unwrap().to_string();
    let expires = get(&broker, "/v1/auth/whoami", Some(&session)).await.1["expires_at_ms"]
        .as_u64()
        .unwrap();
    assert!(expires > 0);
    eventually("the session expires", || async {
        get(&broker, "/v1/topics", Some(&session)).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_unauthenticated(&get(&broker, "/v1/topics", Some(&session)).await);
}

/// The `rapidmq-auth-reason` of a REST answer with `token`, and of a gRPC one.
async fn auth_reasons(broker: &TestBroker, token: &str) -> (Option<String>, Option<String>) {
    let response = reqwest::Client::new()
        .get(format!("{}/v1/topics", broker.http_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("HTTP request");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let rest = response
        .headers()
        .get("rapidmq-auth-reason")
        .map(|v| v.to_str().unwrap().to_string());
    let status = grpc_list_topics(broker, Some(token)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    let grpc = status
        .metadata()
        .get("rapidmq-auth-reason")
        .map(|v| v.to_str().unwrap().to_string());
    (rest, grpc)
}

#[tokio::test]
async fn only_an_expired_token_with_the_right_secret_is_answered_with_the_reason_expired() {
    let (broker, admin) = auth_broker(&[]);
    let (status, created) = post(
        &broker,
        "/v1/users/admin/tokens",
        Some(&admin),
        json!({"ttl_ms": 1}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let expired = created["token"].as_str().unwrap().to_string();
    eventually("a 1 ms token is refused", || async {
        get(&broker, "/v1/topics", Some(&expired)).await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    let reason = Some("expired".to_string());
    assert_eq!(
        auth_reasons(&broker, &expired).await,
        (reason.clone(), reason)
    );

    // The same id with another secret, an unknown token, a malformed one: no reason at all.
    let other = Token::generate().unwrap().to_string();
    let wrong_secret = format!("{}{}", &expired[..17], &other[17..]);
    for token in [wrong_secret.as_str(), other.as_str(), "rmq_nope"] {
        assert_eq!(auth_reasons(&broker, token).await, (None, None), "{token}");
    }
}

#[tokio::test]
async fn users_and_tokens_survive_a_restart_and_deleting_a_user_revokes_its_tokens() {
    let (mut broker, admin) = auth_broker(&[]);
    post(
        &broker,
        "/v1/users",
        Some(&admin),
        json!({"name": "carol", "password": "pw1"}),
    )
    .await;
    bind(&broker, &admin, "carol", "viewer").await;
    let (_, created) = post(&broker, "/v1/users/carol/tokens", Some(&admin), json!({})).await;
    let carol = created["token"].as_str().unwrap().to_string();
    let (status, _) = rest(
        &broker,
        reqwest::Method::PUT,
        "/v1/users/carol/password",
        Some(&admin),
        Some(json!({"password": "pw2"})),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = post(&broker, "/v1/users", Some(&admin), json!({"name": "carol"})).await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (StatusCode::CONFLICT, Some(6006))
    );

    broker.restart();
    assert!(
        broker.log().contains("already exists: ignoring it"),
        "a leftover secret is ignored with a warning"
    );
    assert_eq!(
        get(&broker, "/v1/topics", Some(&admin)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        get(&broker, "/v1/topics", Some(&carol)).await.0,
        StatusCode::OK
    );
    let (status, _) = post(
        &broker,
        "/v1/auth/login",
        None,
        json!({"user": "carol", "password": "pw2"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, users) = get(&broker, "/v1/users", Some(&admin)).await;
    let names: Vec<_> = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, [json!("admin"), json!("carol")]);

    let (status, _) = rest(
        &broker,
        reqwest::Method::DELETE,
        "/v1/users/carol",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_unauthenticated(&get(&broker, "/v1/topics", Some(&carol)).await);
    let (status, body) = rest(
        &broker,
        reqwest::Method::DELETE,
        "/v1/users/carol",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        (status, body["code"].as_u64()),
        (StatusCode::NOT_FOUND, Some(6005))
    );
}

#[tokio::test]
async fn with_auth_off_every_request_is_anonymous_whatever_it_carries() {
    let broker = TestBroker::start();
    for token in [None, Some("rmq_nonsense")] {
        let (status, me) = get(&broker, "/v1/auth/whoami", token).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(me["kind"], "anonymous");
        assert_eq!(me["auth_enabled"], false);
        assert_eq!(get(&broker, "/metrics", token).await.0, StatusCode::OK);
        grpc_list_topics(&broker, token).await.unwrap();
    }
    assert!(
        broker
            .log()
            .contains("auth disabled: every request runs as anonymous")
    );
}

/// Runs the CLI against `broker` with `env`, feeding `stdin`.
fn cli(
    broker: &TestBroker,
    env: &[(&str, &str)],
    args: &[&str],
    stdin: &[u8],
) -> std::process::Output {
    use std::io::Write as _;
    let mut child = rapidmq_testkit::cli_command()
        .args(["--server", broker.grpc_addr()])
        .args(args)
        .env_remove("RAPIDMQ_TOKEN")
        .env_remove("RAPIDMQ_PASSWORD")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the CLI");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

#[track_caller]
fn stdout_of(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_manages_users_and_tokens_with_a_token_from_the_environment() {
    let (broker, admin) = tokio::task::block_in_place(|| auth_broker(&[]));
    let as_admin = [("RAPIDMQ_TOKEN", admin.as_str())];
    let run = |env: &[(&str, &str)], args: &[&str], stdin: &[u8]| {
        tokio::task::block_in_place(|| cli(&broker, env, args, stdin))
    };

    let generated = stdout_of(&run(&[], &["token", "generate"], b""));
    assert!(generated.trim().parse::<Token>().is_ok(), "{generated}");
    assert_eq!(
        stdout_of(&run(&as_admin, &["whoami"], b"")).trim(),
        "default/admin"
    );
    assert_eq!(
        stdout_of(&run(&[], &["--token", &admin, "whoami"], b"")).trim(),
        "default/admin"
    );

    let refused = run(
        &[("RAPIDMQ_TOKEN", generated.trim())],
        &["topic", "list"],
        b"",
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("UNAUTHENTICATED (6001)"), "{stderr}");
    let anonymous = run(&[], &["topic", "list"], b"");
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("UNAUTHENTICATED (6001)"));

    stdout_of(&run(
        &as_admin,
        &["user", "create", "alice", "--password-stdin"],
        b"s3cret\n",
    ));
    stdout_of(&run(&as_admin, &["user", "create", "ci-bot"], b""));
    bind(&broker, &admin, "ci-bot", "viewer").await;
    let users: Value = serde_json::from_str(&stdout_of(&run(
        &as_admin,
        &["user", "ls", "-o", "json"],
        b"",
    )))
    .unwrap();
    let names: Vec<_> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].clone())
        .collect();
    assert_eq!(names, [json!("admin"), json!("alice"), json!("ci-bot")]);
    let (status, _) = post(
        &broker,
        "/v1/auth/login",
        None,
        json!({"user": "alice", "password": "s3cret"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);

    let created: Value = serde_json::from_str(&stdout_of(&run(
        &as_admin,
        &[
            "token",
            "create",
            "--user",
            "ci-bot",
            "--description",
            "ci",
            "--ttl",
            "1h",
            "-o",
            "json",
        ],
        b"",
    )))
    .unwrap();
    let bot = created["token"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(created["expires_at_ms"].as_u64().is_some());
    assert_eq!(
        stdout_of(&run(&[("RAPIDMQ_TOKEN", bot)], &["whoami"], b"")).trim(),
        "default/ci-bot"
    );
    let listed = stdout_of(&run(&as_admin, &["token", "ls", "--user", "ci-bot"], b""));
    assert!(
        listed.contains(id) && !listed.contains(&bot[17..]),
        "{listed}"
    );
    stdout_of(&run(&as_admin, &["token", "revoke", id], b""));
    assert!(
        !run(&[("RAPIDMQ_TOKEN", bot)], &["whoami"], b"")
            .status
            .success()
    );

    stdout_of(&run(&as_admin, &["user", "rm", "alice"], b""));
    let gone = run(&as_admin, &["user", "rm", "alice"], b"");
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("USER_NOT_FOUND (6005)"),
        "{gone:?}"
    );
}

/// Creates an API token for `admin` with `admin`'s token; returns the token and its id.
/// The stable code a consume stream ends with: its in-stream error or its status.
async fn consume_end_code(consume: &mut tonic::Streaming<pb::ConsumeResponse>) -> u32 {
    loop {
        match consume.message().await {
            Ok(Some(pb::ConsumeResponse {
                kind: Some(pb::consume_response::Kind::Error(err)),
            })) => return err.code,
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without an error"),
            Err(status) => return error_code(&status).code(),
        }
    }
}

async fn admin_token(broker: &TestBroker, admin: &str) -> (String, String) {
    let (status, created) = post(broker, "/v1/users/admin/tokens", Some(admin), json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    (
        created["token"].as_str().unwrap().to_string(),
        created["info"]["id"].as_str().unwrap().to_string(),
    )
}

async fn revoke(broker: &TestBroker, admin: &str, id: &str) {
    let path = format!("/v1/tokens/{id}");
    let (status, _) = rest(broker, reqwest::Method::DELETE, &path, Some(admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_revoked_or_expired_token_ends_its_open_consume_and_publish_streams_within_two_seconds() {
    let (broker, admin) = auth_broker(&[]);
    let mut clients = connect(&broker).await;
    clients
        .admin
        .create_topic(with_token(
            pb::CreateTopicRequest {
                name: "orders".into(),
                config: Some(topic_config(1)),
            },
            Some(&admin),
        ))
        .await
        .unwrap();

    // A consumer, waiting for messages that never come.
    let (token, id) = admin_token(&broker, &admin).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscribe(pb::Subscribe {
            topic: "orders".into(),
            subscription: "billing".into(),
            start: Some(start(pb::StartKind::Earliest)),
            credits: 10,
            consumer_name: "test".into(),
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut consume = clients
        .messaging
        .consume(with_token(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            Some(&token),
        ))
        .await
        .expect("consume with a valid token")
        .into_inner();
    let first = consume.message().await.unwrap().unwrap();
    assert!(
        matches!(first.kind, Some(pb::consume_response::Kind::Subscribed(_))),
        "{first:?}"
    );
    revoke(&broker, &admin, &id).await;
    let ended = tokio::time::timeout(Duration::from_secs(2), consume_end_code(&mut consume))
        .await
        .expect("the consume stream ends within 2 s of the revocation");
    assert_eq!(ended, 6001);
    drop(tx);

    // A producer between two publishes.
    let (token, id) = admin_token(&broker, &admin).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let request = |correlation_id| pb::PublishStreamRequest {
        correlation_id,
        request: Some(pb::PublishRequest {
            topic: "orders".into(),
            partition: 0,
            batch: encode(&[msg("k", "v")]),
            ..Default::default()
        }),
    };
    tx.send(request(1)).await.unwrap();
    let mut acks = clients
        .messaging
        .publish_stream(with_token(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            Some(&token),
        ))
        .await
        .expect("publish with a valid token")
        .into_inner();
    let ack = acks.message().await.unwrap().unwrap();
    assert!(
        matches!(ack.result, Some(pb::publish_stream_response::Result::Ok(_))),
        "{ack:?}"
    );
    revoke(&broker, &admin, &id).await;
    let refused = tokio::time::timeout(Duration::from_secs(2), acks.message())
        .await
        .expect("the publish stream ends within 2 s of the revocation")
        .expect_err("the stream ends with a status");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    drop(tx);

    // A consumer whose token expires while it waits: the stream ends at the expiry.
    let (_, created) = post(
        &broker,
        "/v1/users/admin/tokens",
        Some(&admin),
        json!({"ttl_ms": 1000}),
    )
    .await;
    let short = created["token"].as_str().unwrap().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(pb::ConsumeRequest {
        kind: Some(pb::consume_request::Kind::Subscribe(pb::Subscribe {
            topic: "orders".into(),
            start: Some(start(pb::StartKind::Latest)),
            credits: 10,
            ..Default::default()
        })),
    })
    .await
    .unwrap();
    let mut consume = clients
        .messaging
        .consume(with_token(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            Some(&short),
        ))
        .await
        .expect("consume before the expiry")
        .into_inner();
    let ended = tokio::time::timeout(Duration::from_secs(3), consume_end_code(&mut consume))
        .await
        .expect("the consume stream ends within 2 s of the token's expiry");
    assert_eq!(ended, 6001);
    drop(tx);
}
