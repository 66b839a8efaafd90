//! `rapidmq role` and `rapidmq user create --role` against a real broker with `--auth`
//! (docs/cli.md#role): creating, listing, binding, unbinding and deleting roles, in tables and
//! JSON, and the broker's refusals reaching the shell with their codes.

use std::process::{Output, Stdio};

use rapidmq_broker::auth::Token;
use rapidmq_testkit::{BrokerOptions, TestBroker};
use serde_json::{Value, json};

/// A broker with `--auth` and the token of its bootstrap admin.
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
    rapidmq_testkit::cli_command()
        .args(["--server", broker.grpc_addr()])
        .args(args)
        .env("RAPIDMQ_TOKEN", token)
        .env_remove("RAPIDMQ_PASSWORD")
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

#[track_caller]
fn stderr_of_failure(output: &Output) -> String {
    assert!(!output.status.success(), "{output:?}");
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn the_cli_creates_binds_lists_and_deletes_roles() {
    let (broker, admin) = auth_broker();
    let run = |args: &[&str]| cli(&broker, &admin, args);

    let roles = json_of(&run(&["role", "ls", "-o", "json"]));
    let mut builtin: Vec<_> = roles
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["builtin"] == true)
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    builtin.sort();
    assert_eq!(builtin, ["admin", "consumer", "producer", "viewer"]);
    let table = stdout_of(&run(&["role", "ls"]));
    assert!(
        table.contains("producer") && table.contains("allow publish,describe topic:*"),
        "{table}"
    );

    let created = json_of(&run(&[
        "role",
        "create",
        "orders-writer",
        "--permission",
        "allow publish,describe topic:orders.*",
        "-p",
        "deny publish topic:orders.audit",
        "-o",
        "json",
    ]));
    assert_eq!(
        created,
        json!({"name": "orders-writer", "builtin": false, "permissions": [
            "allow publish,describe topic:orders.*",
            "deny publish topic:orders.audit",
        ]})
    );
    let again = run(&[
        "role",
        "create",
        "orders-writer",
        "-p",
        "allow describe tenant",
    ]);
    assert!(
        stderr_of_failure(&again).contains("ROLE_ALREADY_EXISTS (6008)"),
        "{again:?}"
    );
    let typo = run(&["role", "create", "typo", "-p", "allow publsh topic:orders"]);
    let stderr = stderr_of_failure(&typo);
    assert!(
        stderr.contains("INVALID_ARGUMENT") && stderr.contains("unknown action `publsh`"),
        "{stderr}"
    );

    let made = stdout_of(&run(&[
        "user",
        "create",
        "ci-bot",
        "--role",
        "orders-writer",
        "--role",
        "viewer",
    ]));
    assert!(made.contains("created user ci-bot"), "{made}");
    let bindings = json_of(&run(&["role", "bindings", "ci-bot", "-o", "json"]));
    let mut roles: Vec<_> = bindings
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            format!(
                "{} {}",
                b["role"].as_str().unwrap(),
                b["scope"].as_str().unwrap()
            )
        })
        .collect();
    roles.sort();
    assert_eq!(roles, ["orders-writer tenant", "viewer tenant"]);
    let unknown = run(&["user", "create", "lost", "--role", "no-such-role"]);
    let stderr = stderr_of_failure(&unknown);
    assert!(
        stderr.contains("created user lost but could not bind role no-such-role")
            && stderr.contains("ROLE_NOT_FOUND (6007)"),
        "{stderr}"
    );

    let table = stdout_of(&run(&["role", "bindings"]));
    for expected in ["admin", "cluster", "ci-bot", "orders-writer", "viewer"] {
        assert!(table.contains(expected), "{expected}: {table}");
    }
    stdout_of(&run(&["role", "bind", "ci-bot", "producer"]));
    stdout_of(&run(&["role", "bind", "ci-bot", "producer"]));
    stdout_of(&run(&["role", "unbind", "ci-bot", "viewer"]));
    let gone = run(&["role", "unbind", "ci-bot", "viewer"]);
    assert!(
        stderr_of_failure(&gone).contains("ROLE_NOT_FOUND (6007)"),
        "{gone:?}"
    );
    stdout_of(&run(&["role", "rm", "orders-writer"]));
    let left = json_of(&run(&["role", "bindings", "ci-bot", "-o", "json"]));
    assert_eq!(
        left,
        json!([{"tenant": "default", "user": "ci-bot", "role": "producer", "scope": "tenant"}])
    );
    let builtin = run(&["role", "rm", "viewer"]);
    assert!(
        stderr_of_failure(&builtin).contains("INVALID_ARGUMENT"),
        "{builtin:?}"
    );

    // A user without `admin` on the tenant cannot bind roles, not even to itself.
    let bot = json_of(&run(&["token", "create", "--user", "ci-bot", "-o", "json"]));
    let bot = bot["token"].as_str().unwrap();
    let denied = cli(&broker, bot, &["role", "bind", "ci-bot", "admin"]);
    assert!(
        stderr_of_failure(&denied).contains("PERMISSION_DENIED (6002)"),
        "{denied:?}"
    );
}
