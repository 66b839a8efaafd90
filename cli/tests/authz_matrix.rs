//! The authorization matrix (docs/adr/0004-security.md §6): every operation the broker serves,
//! run by every kind of caller against a real broker with `--auth`.
//!
//! Operations are enumerated, not listed by hand: every gRPC method of
//! `rapidmq_proto::FILE_DESCRIPTOR_SET` and every path × method of the served
//! `/v1/openapi.json`, plus the routes the authentication layer checks itself. Each needs a row
//! in `authz/rules.rs` (what it needs, and how to build a request); one without a row fails the
//! test by name. Each row runs as:
//! - anonymous → `UNAUTHENTICATED` / 401 (but public operations);
//! - a user without roles, and one whose role has everything but the action needed →
//!   `PERMISSION_DENIED` / 403, the same answer for an existing and a nonexistent name;
//! - a user whose role grants exactly what the row needs → no auth error;
//! - the admin of another tenant → the same answer for this tenant's names as for names that
//!   exist nowhere, and lists without them.
//!
//! Lists are never refused: they show only what the caller may describe.
//!
//! The rows also render the permission table of `docs/security.md`; the test fails when the
//! document differs, and `UPDATE_DOCS=1` rewrites it.

mod authz;

use std::collections::BTreeSet;
use std::path::PathBuf;

use authz::harness::*;
use authz::rules::*;
use prost::Message as _;
use rapidmq_proto::ErrorCode;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use serde_json::Value;

const DOCS_BEGIN: &str = "<!-- permission-table:begin -->";
const DOCS_END: &str = "<!-- permission-table:end -->";

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
        "\n<!-- Generated from the rules in cli/tests/authz/rules.rs; rewrite with \
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
        "docs/security.md's permission table differs from the rules in cli/tests/authz/rules.rs; \
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
        "operations without a rule in cli/tests/authz/rules.rs: {missing:?}; rules for no \
         served operation: {stale:?}"
    );

    let mut names = Names::existing("");
    matrix.fixtures(&mut names).await;
    let ghost = Names::ghost();
    let nobody = matrix.caller(Vec::new()).await;
    let stranger = matrix.foreign_admin().await;
    let mut failures = Vec::new();
    // Lists first, before the rows below have the stranger create same-named things of its own.
    for rule in &rules {
        if let Filtered(shown) = rule.check {
            let shown = names.fill(shown);
            let listed = matrix.run(rule, &names, Some(&stranger)).await;
            // Refusing (a list of a topic it cannot name) is fine; showing is not.
            if listed.body.contains(&shown) || listed.message.contains(&shown) {
                failures.push(format!(
                    "{}: another tenant's admin got {listed:?} (looking for {shown})",
                    rule.op
                ));
            }
        }
    }
    let mut fresh = 0;
    for rule in &rules {
        let op = rule.op;
        if !matches!(rule.check, Public) {
            check_foreign(&matrix, rule, &names, &ghost, &stranger, &mut failures).await;
        }
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

/// The admin of another tenant gets the same answer for this tenant's names as for names that
/// exist nowhere: whatever it may do in its own tenant, nothing here is visible or reachable.
async fn check_foreign(
    matrix: &Matrix,
    rule: &Rule,
    names: &Names,
    ghost: &Names,
    stranger: &str,
    failures: &mut Vec<String>,
) {
    let there = matrix.run(rule, names, Some(stranger)).await.blank(names);
    let not_there = matrix.run(rule, ghost, Some(stranger)).await.blank(ghost);
    let answer = |o: &Outcome| (o.code, o.status, o.message.clone());
    if answer(&there) != answer(&not_there) {
        failures.push(format!(
            "{}: another tenant's admin is answered differently for this tenant's names: \
             {there:?} vs {not_there:?}",
            rule.op
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_cluster_admins_act_in_another_tenant_and_others_cannot_tell_which_exist() {
    let mut matrix = Matrix::start().await;
    let mut names = Names::existing("");
    matrix.fixtures(&mut names).await;
    let stranger = matrix.foreign_admin().await;
    let topics = |token: &str, tenant: Option<&str>| {
        let mut request = with_token(pb::ListTopicsRequest::default(), Some(token));
        if let Some(tenant) = tenant {
            request = in_tenant(request, tenant);
        }
        let mut admin = matrix.admin();
        async move {
            admin.list_topics(request).await.map(|r| {
                r.into_inner()
                    .topics
                    .into_iter()
                    .map(|t| t.name)
                    .collect::<Vec<_>>()
            })
        }
    };
    // A tenant admin naming another tenant, existing or not, gets one answer.
    for tenant in ["default", "no-such-tenant"] {
        let status = topics(&stranger, Some(tenant)).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
        assert_eq!(
            status_outcome(&status).code,
            Some(ErrorCode::TenantNotFound)
        );
        assert_eq!(
            status.message(),
            format!("tenant `{tenant}` does not exist")
        );
    }
    // Its own tenant by name is fine; this tenant's topics are not in it.
    let own = topics(&stranger, Some("other"))
        .await
        .expect("its own tenant");
    assert!(!own.contains(&names.topic), "{own:?}");
    // A cluster admin acts in `other`, and sees there what `other` has.
    let admin = matrix.admin.clone();
    let mut client = matrix.admin();
    client
        .create_topic(in_tenant(
            with_token(
                pb::CreateTopicRequest {
                    name: "only-in-other".into(),
                    config: None,
                },
                Some(&admin),
            ),
            "other",
        ))
        .await
        .expect("a cluster admin creates a topic in `other`");
    let seen = topics(&admin, Some("other")).await.expect("list `other`");
    assert_eq!(seen, vec!["only-in-other".to_string()]);
    let home = topics(&admin, None).await.expect("list `default`");
    assert!(home.contains(&names.topic) && !home.contains(&"only-in-other".to_string()));
    let own = topics(&stranger, None).await.expect("list its own");
    assert_eq!(own, vec!["only-in-other".to_string()]);
    // A tenant with topics or users is not deleted.
    let status = client
        .delete_tenant(with_token(
            pb::DeleteTenantRequest {
                name: "other".into(),
            },
            Some(&admin),
        ))
        .await
        .unwrap_err();
    assert_eq!(
        status_outcome(&status).code,
        Some(ErrorCode::TenantNotEmpty),
        "{status:?}"
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
    // The unbinding wakes the stream at once (the auth epoch); the bound only keeps a broken
    // broker from hanging the suite, and is generous for a loaded CI machine.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(30), next_error(&mut inbound))
        .await
        .expect("the consumer ends after losing its role");
    let ended = ended.expect("the stream ends with an error");
    assert_eq!(ended.code, Some(ErrorCode::PermissionDenied), "{ended:?}");
    drop(tx);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_needs_consume_and_creating_by_subscribing_needs_create_and_publish_on_dead_letters()
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
    let tailer = matrix.caller(vec![grant("consume topic")]).await;
    let denied = Some(Some(ErrorCode::PermissionDenied));
    // A tail without a subscription consumes the topic itself.
    assert_eq!(consume(&consumer, subscribe("", false)).await, denied);
    assert_eq!(consume(&tailer, subscribe("", false)).await, None);
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
