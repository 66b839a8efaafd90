//! `rapidmq tenant` and the global `--tenant` against a real broker with `--auth`
//! (docs/cli.md#tenant): creating tenants with quotas, listing them, showing quotas next to
//! usage, changing and resetting quotas, acting inside a tenant as a cluster admin, and the
//! broker's refusals (TENANT_NOT_EMPTY, TENANT_NOT_FOUND, TENANT_ALREADY_EXISTS) reaching the
//! shell with their codes.

use std::process::{Command, Output, Stdio};

use rapidmq_broker::auth::Token;
use rapidmq_testkit::{BrokerOptions, TestBroker};
use serde_json::Value;

/// A broker with `--auth` and the token of its bootstrap admin (a cluster admin).
fn auth_broker() -> (TestBroker, String) {
    let token = Token::generate().unwrap().to_string();
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN".to_string(), token.clone())],
        args: vec!["--auth".into()],
    });
    (broker, token)
}

/// Runs the CLI against `broker` with `token` and the extra environment `env`.
fn cli_env(broker: &TestBroker, token: &str, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(rapidmq_testkit::broker_binary())
        .args(["--server", broker.grpc_addr()])
        .args(args)
        .env("RAPIDMQ_TOKEN", token)
        .env_remove("RAPIDMQ_PASSWORD")
        .env_remove("RAPIDMQ_TENANT")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run the CLI")
}

fn cli(broker: &TestBroker, token: &str, args: &[&str]) -> Output {
    cli_env(broker, token, &[], args)
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

/// The names in a `-o json` list of objects with a `name`.
fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_cluster_admin_creates_fills_limits_empties_and_deletes_a_tenant() {
    let (broker, admin) = auth_broker();
    let run = |args: &[&str]| cli(&broker, &admin, args);

    // Created with some quotas; the rest take the broker's defaults, as a bare tenant shows.
    let acme = json_of(&run(&[
        "tenant",
        "create",
        "acme",
        "--publish-bytes-per-sec",
        "5MiB",
        "--storage-bytes",
        "1GB",
        "--max-topics",
        "3",
        "--max-connections",
        "unlimited",
        "-o",
        "json",
    ]));
    assert_eq!(acme["name"], "acme");
    assert_eq!(acme["quotas"]["publish_bytes_per_sec"], 5 << 20);
    assert_eq!(acme["quotas"]["storage_bytes"], 1_000_000_000u64);
    assert_eq!(acme["quotas"]["max_topics"], 3);
    assert_eq!(acme["quotas"]["max_connections"], 0);
    assert_eq!(acme["usage"]["topics"], 0);
    assert!(acme["created_at_ms"].as_u64().unwrap() > 0, "{acme}");
    let bare = json_of(&run(&["tenant", "create", "beta", "-o", "json"]));
    for quota in [
        "publish_bytes_per_sec",
        "publish_msgs_per_sec",
        "consume_bytes_per_sec",
        "storage_bytes",
        "max_topics",
        "max_partitions",
        "max_connections",
    ] {
        assert!(bare["quotas"][quota].is_u64(), "{quota} in effect: {bare}");
    }
    assert_eq!(
        acme["quotas"]["publish_msgs_per_sec"], bare["quotas"]["publish_msgs_per_sec"],
        "a quota not given takes the default"
    );
    let again = run(&["tenant", "create", "acme"]);
    assert!(
        stderr_of_failure(&again).contains("TENANT_ALREADY_EXISTS (6011)"),
        "{again:?}"
    );
    let bad_size = run(&["tenant", "create", "gamma", "--max-topics", "3MiB"]);
    assert_eq!(bad_size.status.code(), Some(2), "{bad_size:?}");

    let listed = json_of(&run(&["tenant", "ls", "-o", "json"]));
    let mut listed = names(&listed);
    listed.sort();
    assert_eq!(listed, ["acme", "beta", "default"]);
    let table = stdout_of(&run(&["tenant", "ls"]));
    assert!(
        table.contains("TENANT")
            && table
                .lines()
                .any(|l| l.split_whitespace().next() == Some("acme")),
        "{table}"
    );

    // Acting inside acme as the cluster admin: a topic and a user land in acme, not default.
    stdout_of(&run(&[
        "--tenant",
        "acme",
        "topic",
        "create",
        "orders",
        "--partitions",
        "2",
    ]));
    let made = stdout_of(&run(&["--tenant", "acme", "user", "create", "alice"]));
    assert!(made.contains("created user alice"), "{made}");
    let acme_users = json_of(&run(&["--tenant", "acme", "user", "ls", "-o", "json"]));
    assert_eq!(names(&acme_users), ["alice"]);
    assert_eq!(acme_users[0]["tenant"], "acme");
    let default_users = json_of(&run(&["user", "ls", "-o", "json"]));
    assert!(
        !names(&default_users).contains(&"alice".to_string()),
        "{default_users}"
    );
    let default_topics = stdout_of(&run(&["topic", "list"]));
    assert!(!default_topics.contains("orders"), "{default_topics}");
    let acme_topics = stdout_of(&cli_env(
        &broker,
        &admin,
        &[("RAPIDMQ_TENANT", "acme")],
        &["topic", "list"],
    ));
    assert!(acme_topics.contains("orders"), "{acme_topics}");

    // Quotas in effect next to usage.
    let shown = json_of(&run(&["tenant", "show", "acme", "-o", "json"]));
    assert_eq!(shown["usage"]["topics"], 1, "{shown}");
    assert_eq!(shown["usage"]["partitions"], 2, "{shown}");
    assert_eq!(shown["usage"]["users"], 1, "{shown}");
    let own = json_of(&run(&["--tenant", "acme", "tenant", "show", "-o", "json"]));
    assert_eq!(own["name"], "acme", "without NAME: the tenant acted in");
    let table = stdout_of(&run(&["tenant", "show", "acme"]));
    let row = |quota: &str| {
        table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(quota))
            .unwrap_or_else(|| panic!("no {quota} row: {table}"))
            .split_whitespace()
            .skip(1)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("max_topics"), "3 1");
    assert_eq!(row("max_connections").split(' ').next(), Some("unlimited"));
    assert_eq!(row("publish_bytes_per_sec"), "5.0 MiB/s -");
    assert_eq!(
        row("storage_bytes").split(' ').take(2).collect::<Vec<_>>(),
        ["953.7", "MiB"]
    );

    // Set replaces, --reset goes back to the default, the rest stay.
    let changed = json_of(&run(&[
        "tenant",
        "quota",
        "set",
        "acme",
        "--max-topics",
        "10",
        "--publish-msgs-per-sec",
        "500",
        "--reset",
        "publish-bytes-per-sec,storage_bytes",
        "-o",
        "json",
    ]));
    assert_eq!(changed["quotas"]["max_topics"], 10);
    assert_eq!(changed["quotas"]["publish_msgs_per_sec"], 500);
    assert_eq!(
        changed["quotas"]["publish_bytes_per_sec"],
        bare["quotas"]["publish_bytes_per_sec"]
    );
    assert_eq!(
        changed["quotas"]["storage_bytes"],
        bare["quotas"]["storage_bytes"]
    );
    assert_eq!(changed["quotas"]["max_connections"], 0, "untouched");
    let reread = json_of(&run(&["tenant", "show", "acme", "-o", "json"]));
    assert_eq!(reread["quotas"], changed["quotas"]);
    let both = run(&[
        "tenant",
        "quota",
        "set",
        "acme",
        "--max-topics",
        "4",
        "--reset",
        "max-topics",
    ]);
    assert!(
        stderr_of_failure(&both).contains("--max-topics is both set and reset"),
        "{both:?}"
    );
    let nothing = run(&["tenant", "quota", "set", "acme"]);
    assert!(
        stderr_of_failure(&nothing).contains("nothing to change"),
        "{nothing:?}"
    );
    let unknown = run(&["tenant", "quota", "set", "acme", "--reset", "max-bananas"]);
    assert_eq!(unknown.status.code(), Some(2), "{unknown:?}");
    let missing = run(&["tenant", "quota", "set", "nosuch", "--max-topics", "1"]);
    assert!(
        stderr_of_failure(&missing).contains("TENANT_NOT_FOUND (6003)"),
        "{missing:?}"
    );

    // Not empty: refused until its topics and users are gone.
    let refused = run(&["tenant", "rm", "acme"]);
    assert!(
        stderr_of_failure(&refused).contains("TENANT_NOT_EMPTY (6004)"),
        "{refused:?}"
    );
    stdout_of(&run(&["--tenant", "acme", "topic", "delete", "orders"]));
    let still = run(&["tenant", "rm", "acme"]);
    assert!(
        stderr_of_failure(&still).contains("TENANT_NOT_EMPTY (6004)"),
        "a user is left: {still:?}"
    );
    stdout_of(&run(&["--tenant", "acme", "user", "rm", "alice"]));
    let removed = stdout_of(&run(&["tenant", "rm", "acme"]));
    assert!(removed.contains("deleted tenant acme"), "{removed}");
    let gone = run(&["tenant", "show", "acme"]);
    assert!(
        stderr_of_failure(&gone).contains("TENANT_NOT_FOUND (6003)"),
        "{gone:?}"
    );
    let listed = json_of(&run(&["tenant", "ls", "-o", "json"]));
    assert!(!names(&listed).contains(&"acme".to_string()), "{listed}");
    let default = run(&["tenant", "rm", "default"]);
    stderr_of_failure(&default);
}

#[test]
fn a_missing_tenant_named_with_tenant_is_a_clear_tenant_not_found() {
    let (broker, admin) = auth_broker();
    for output in [
        cli(&broker, &admin, &["--tenant", "nosuch", "topic", "list"]),
        cli_env(
            &broker,
            &admin,
            &[("RAPIDMQ_TENANT", "nosuch")],
            &["user", "ls"],
        ),
    ] {
        let stderr = stderr_of_failure(&output);
        assert!(
            stderr.starts_with("error: TENANT_NOT_FOUND (6003)") && stderr.contains("--tenant"),
            "{stderr}"
        );
    }
    let malformed = cli(&broker, &admin, &["--tenant", "no/such", "topic", "list"]);
    let stderr = stderr_of_failure(&malformed);
    assert!(stderr.contains("not a tenant name"), "{stderr}");
}

#[test]
fn a_tenant_admin_sees_its_own_tenant_only_and_cannot_manage_tenants() {
    let (broker, admin) = auth_broker();
    let run = |args: &[&str]| cli(&broker, &admin, args);
    stdout_of(&run(&["tenant", "create", "acme", "--max-topics", "5"]));
    stdout_of(&run(&[
        "--tenant", "acme", "user", "create", "boss", "--role", "admin",
    ]));
    let created = json_of(&run(&[
        "--tenant", "acme", "token", "create", "--user", "boss", "-o", "json",
    ]));
    let boss = created["token"].as_str().unwrap();
    let as_boss = |args: &[&str]| cli(&broker, boss, args);

    let own = json_of(&as_boss(&["tenant", "show", "-o", "json"]));
    assert_eq!(own["name"], "acme");
    assert_eq!(own["quotas"]["max_topics"], 5);
    stdout_of(&as_boss(&["topic", "create", "orders"]));
    let shown = json_of(&run(&["tenant", "show", "acme", "-o", "json"]));
    assert_eq!(shown["usage"]["topics"], 1, "boss's topic is in acme");

    let listing = as_boss(&["tenant", "ls"]);
    assert!(
        stderr_of_failure(&listing).contains("PERMISSION_DENIED"),
        "{listing:?}"
    );
    let raising = as_boss(&["tenant", "quota", "set", "acme", "--max-topics", "50"]);
    assert!(
        stderr_of_failure(&raising).contains("PERMISSION_DENIED"),
        "{raising:?}"
    );
    // Another tenant looks exactly like a missing one.
    let foreign = as_boss(&["--tenant", "default", "topic", "list"]);
    let missing = as_boss(&["--tenant", "nosuch", "topic", "list"]);
    let foreign = stderr_of_failure(&foreign);
    assert!(foreign.contains("TENANT_NOT_FOUND (6003)"), "{foreign}");
    assert_eq!(
        foreign.replace("default", "X"),
        stderr_of_failure(&missing).replace("nosuch", "X")
    );
}

#[test]
fn shell_completions_know_the_tenant_and_audit_commands_and_quota_names() {
    let output = Command::new(rapidmq_testkit::broker_binary())
        .args(["completions", "bash"])
        .output()
        .expect("run the CLI");
    let script = stdout_of(&output);
    for word in [
        "tenant",
        "audit",
        "--publish-bytes-per-sec",
        "--reset",
        "max-connections",
        "--since",
        "--tenant",
    ] {
        assert!(
            script.contains(word),
            "{word} missing from the bash completions"
        );
    }
}
