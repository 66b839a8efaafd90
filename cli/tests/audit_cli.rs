//! `rapidmq audit ls|export` against a real broker with `--auth` (docs/cli.md#audit): a failed
//! login and a topic deletion show up in the table and in JSON, the filters narrow the records,
//! paging follows page tokens, and an export is JSON lines, one record per line.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use rapidmq_broker::auth::Token;
use rapidmq_testkit::{BrokerOptions, TestBroker};
use serde_json::{Value, json};

/// How long a test waits for the audit writer (it commits failures every 100 ms).
const PATIENCE: Duration = Duration::from_secs(30);

/// A broker with `--auth` and the token of its bootstrap admin (a cluster admin).
fn auth_broker() -> (TestBroker, String) {
    let token = Token::generate().unwrap().to_string();
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".to_string(), token.clone())],
        args: vec!["--auth".into()],
    });
    (broker, token)
}

/// Runs the CLI against `broker` with `token`.
fn cli(broker: &TestBroker, token: &str, args: &[&str]) -> Output {
    Command::new(rapidmq_testkit::broker_binary())
        .args(["--server", broker.grpc_addr()])
        .args(args)
        .env("RAPIDMQ_TOKEN", token)
        .env_remove("RAPIDMQ_PASSWORD")
        .env_remove("RAPIDMQ_TENANT")
        .stdin(Stdio::null())
        .output()
        .expect("run the CLI")
}

#[track_caller]
fn stdout_of(output: &Output) -> String {
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[track_caller]
fn json_of(output: &Output) -> Value {
    serde_json::from_str(&stdout_of(output)).unwrap()
}

/// The events of an `audit ls -o json` document.
fn events(document: &Value) -> Vec<Value> {
    document["events"].as_array().unwrap().clone()
}

/// A REST password login that the broker refuses.
fn failed_login(broker: &TestBroker, user: &str) {
    let response = reqwest::blocking::Client::new()
        .post(format!("{}/v1/auth/login", broker.http_url()))
        .json(&json!({"user": user, "password": "wrong horse"}))
        .send()
        .expect("HTTP login");
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
}

/// Lists `args` (plus `-o json`) until `found` holds for the events, or fails after PATIENCE.
fn wait_for_events(
    broker: &TestBroker,
    token: &str,
    args: &[&str],
    found: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + PATIENCE;
    let args: Vec<&str> = args.iter().copied().chain(["-o", "json"]).collect();
    loop {
        let listed = events(&json_of(&cli(broker, token, &args)));
        if found(&listed) {
            return listed;
        }
        assert!(
            Instant::now() < deadline,
            "audit ls {args:?} never matched: {listed:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn is(event: &Value, action: &str, target: &str, outcome: &str) -> bool {
    event["action"] == action && event["target"] == target && event["outcome"] == outcome
}

#[test]
fn audit_ls_shows_a_failed_login_and_a_topic_deletion_and_filters_and_pages_them() {
    let (broker, admin) = auth_broker();
    let run = |args: &[&str]| cli(&broker, &admin, args);

    stdout_of(&run(&["topic", "create", "orders"]));
    stdout_of(&run(&["topic", "delete", "orders"]));
    stdout_of(&run(&["user", "create", "alice"]));
    failed_login(&broker, "alice");

    let all = wait_for_events(&broker, &admin, &["audit", "ls", "--all"], |events| {
        events
            .iter()
            .any(|e| e["action"] == "auth.login" && e["outcome"] == "failed")
    });
    let deleted = all
        .iter()
        .find(|e| is(e, "topic.delete", "topic:orders", "ok"))
        .unwrap_or_else(|| panic!("no topic.delete: {all:#?}"));
    assert_eq!(deleted["tenant"], "default");
    assert_eq!(deleted["actor"], "default/admin");
    assert_eq!(deleted["transport"], "grpc");
    assert_eq!(deleted["count"], 1);
    let login = all
        .iter()
        .find(|e| e["action"] == "auth.login" && e["outcome"] == "failed")
        .unwrap();
    assert_eq!(login["transport"], "http");
    assert!(login["count"].as_u64().unwrap() >= 1, "{login}");
    let ts: Vec<u64> = all.iter().map(|e| e["ts_ms"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "oldest first: {ts:?}");

    // The table: one row per record, with the columns the docs promise.
    let table = stdout_of(&run(&["audit", "ls", "--all"]));
    let header = table.lines().next().unwrap();
    for column in [
        "TIME", "TENANT", "ACTOR", "SOURCE", "ACTION", "TARGET", "OUTCOME", "COUNT", "DETAIL",
    ] {
        assert!(header.contains(column), "{column}: {header}");
    }
    let row = |action: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().any(|w| w == action))
            .unwrap_or_else(|| panic!("no {action} row: {table}"))
            .to_string()
    };
    let delete_row = row("topic.delete");
    assert!(
        delete_row.contains("default/admin")
            && delete_row.contains("topic:orders")
            && delete_row.contains(" ok"),
        "{delete_row}"
    );
    let login_row = row("auth.login");
    assert!(
        login_row.contains("failed") && login_row.contains("http/"),
        "{login_row}"
    );

    // Filters.
    let only = |args: &[&str]| {
        let mut full = vec!["audit", "ls", "--all", "-o", "json"];
        full.extend_from_slice(args);
        events(&json_of(&run(&full)))
    };
    let deletions = only(&["--action", "topic.delete"]);
    assert_eq!(deletions.len(), 1, "{deletions:#?}");
    assert!(is(&deletions[0], "topic.delete", "topic:orders", "ok"));
    let topic_changes = only(&["--action", "topic."]);
    assert!(
        topic_changes.iter().any(|e| e["action"] == "topic.create")
            && topic_changes
                .iter()
                .all(|e| e["action"].as_str().unwrap().starts_with("topic.")),
        "{topic_changes:#?}"
    );
    let failures = only(&["--outcome", "failed"]);
    assert!(
        !failures.is_empty() && failures.iter().all(|e| e["outcome"] == "failed"),
        "{failures:#?}"
    );
    let by_admin = only(&["--actor", "default/admin"]);
    assert!(
        by_admin.iter().any(|e| e["action"] == "topic.delete")
            && by_admin.iter().all(|e| e["actor"] == "default/admin"),
        "{by_admin:#?}"
    );
    assert_eq!(only(&["--since", "1h"]).len(), all.len());
    assert!(only(&["--until", "2000-01-01T00:00:00Z"]).is_empty());
    let since_delete = only(&["--since", &format!("@{}", deleted["ts_ms"])]);
    assert!(
        since_delete
            .iter()
            .all(|e| e["ts_ms"].as_u64() >= deleted["ts_ms"].as_u64())
            && since_delete.iter().any(|e| e["id"] == deleted["id"]),
        "{since_delete:#?}"
    );
    let bad_time = run(&["audit", "ls", "--since", "yesterday"]);
    assert_eq!(bad_time.status.code(), Some(2), "{bad_time:?}");

    // Paging: one record a page, followed to the end, gives the same records.
    let first = json_of(&run(&["audit", "ls", "--limit", "1", "-o", "json"]));
    assert_eq!(events(&first).len(), 1);
    let token = first["next_page_token"].as_str().unwrap().to_string();
    let second = json_of(&run(&[
        "audit",
        "ls",
        "--limit",
        "1",
        "--page-token",
        &token,
        "-o",
        "json",
    ]));
    assert_eq!(events(&second)[0]["id"], all[1]["id"]);
    let hint = stdout_of(&run(&["audit", "ls", "--limit", "1"]));
    assert!(hint.contains("more: --page-token"), "{hint}");
    let paged = json_of(&run(&[
        "audit",
        "ls",
        "--limit",
        "1",
        "--all",
        "--until",
        &format!("@{}", deleted["ts_ms"].as_u64().unwrap() + 1),
        "-o",
        "json",
    ]));
    let ids = |events: &[Value]| events.iter().map(|e| e["id"].clone()).collect::<Vec<_>>();
    let expected: Vec<Value> = all
        .iter()
        .filter(|e| e["ts_ms"].as_u64() <= deleted["ts_ms"].as_u64())
        .cloned()
        .collect();
    assert_eq!(ids(&events(&paged)), ids(&expected));
    assert_eq!(paged["next_page_token"], Value::Null);
}

#[test]
fn audit_export_writes_every_record_as_one_json_object_per_line() {
    let (broker, admin) = auth_broker();
    let run = |args: &[&str]| cli(&broker, &admin, args);
    for i in 0..3 {
        stdout_of(&run(&["topic", "create", &format!("t{i}")]));
    }
    // More records than one export page (1000), so the export has to follow page tokens.
    let http = reqwest::blocking::Client::new();
    for i in 0..1000 {
        let response = http
            .post(format!("{}/v1/users", broker.http_url()))
            .bearer_auth(&admin)
            .json(&json!({"name": format!("u{i}")}))
            .send()
            .expect("HTTP user create");
        assert!(response.status().is_success(), "{response:?}");
    }
    stdout_of(&run(&["topic", "delete", "t0"]));
    failed_login(&broker, "mallory");
    let listed = wait_for_events(&broker, &admin, &["audit", "ls", "--all"], |events| {
        events.iter().any(|e| e["action"] == "auth.login")
    });

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let path = path.to_str().unwrap();
    let written = run(&["audit", "export", "--file", path]);
    assert!(written.status.success(), "{written:?}");
    assert!(written.stdout.is_empty(), "{written:?}");
    let stderr = String::from_utf8_lossy(&written.stderr);
    assert!(
        stderr.contains(&format!(
            "exported {} audit records to {path}",
            listed.len()
        )),
        "{stderr}"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let exported: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(text.ends_with('\n'));
    assert!(exported.len() > 1000, "{}", exported.len());
    assert_eq!(exported, listed, "the same records as `ls --all`, in order");
    assert!(
        exported
            .iter()
            .any(|e| is(e, "topic.delete", "topic:t0", "ok")),
        "{exported:#?}"
    );

    let piped = stdout_of(&run(&["audit", "export", "--action", "topic."]));
    let topic_changes: Vec<Value> = piped
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(topic_changes.len(), 4, "{piped}");
    assert!(
        topic_changes
            .iter()
            .all(|e| e["action"].as_str().unwrap().starts_with("topic.")),
        "{piped}"
    );
}

#[test]
fn a_tenant_admin_sees_only_its_tenants_records_and_a_cluster_admin_all() {
    let (broker, admin) = auth_broker();
    let run = |args: &[&str]| cli(&broker, &admin, args);
    stdout_of(&run(&["tenant", "create", "acme"]));
    stdout_of(&run(&[
        "--tenant", "acme", "user", "create", "boss", "--role", "admin",
    ]));
    let created = json_of(&run(&[
        "--tenant", "acme", "token", "create", "--user", "boss", "-o", "json",
    ]));
    let boss = created["token"].as_str().unwrap();
    stdout_of(&run(&["topic", "create", "outside"]));
    stdout_of(&cli(&broker, boss, &["topic", "create", "inside"]));

    let seen_by_boss = events(&json_of(&cli(
        &broker,
        boss,
        &["audit", "ls", "--all", "-o", "json"],
    )));
    assert!(
        seen_by_boss
            .iter()
            .any(|e| is(e, "topic.create", "topic:inside", "ok") && e["actor"] == "acme/boss"),
        "{seen_by_boss:#?}"
    );
    assert!(
        seen_by_boss.iter().all(|e| e["tenant"] == "acme"),
        "{seen_by_boss:#?}"
    );
    let seen_by_admin = events(&json_of(&run(&["audit", "ls", "--all", "-o", "json"])));
    for target in ["topic:inside", "topic:outside"] {
        assert!(
            seen_by_admin
                .iter()
                .any(|e| is(e, "topic.create", target, "ok")),
            "{target}: {seen_by_admin:#?}"
        );
    }
}
