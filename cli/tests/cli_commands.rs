//! End-to-end tests of the `rapidmq` command line: the built binary against a real broker.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use rapidmq_testkit::{TestBroker, broker_binary};
use serde_json::Value;

/// Runs `rapidmq ARGS` against `broker` and returns its output.
fn rapidmq(broker: &TestBroker, args: &[&str]) -> Output {
    rapidmq_with_stdin(broker, args, b"")
}

fn rapidmq_with_stdin(broker: &TestBroker, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = rapidmq_testkit::cli_command()
        .args(args)
        .env("RAPIDMQ_SERVER", broker.grpc_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rapidmq");
    let mut input = child.stdin.take().expect("stdin is piped");
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || input.write_all(&stdin));
    let output = child.wait_with_output().expect("wait for rapidmq");
    writer
        .join()
        .expect("stdin writer")
        .expect("write the command's stdin");
    output
}

/// Runs `rapidmq ARGS` without a broker (help, completions); it must succeed.
fn ok_offline(args: &[&str]) -> String {
    let output = rapidmq_testkit::cli_command()
        .args(args)
        .output()
        .expect("run rapidmq");
    assert!(
        output.status.success(),
        "`rapidmq {}` failed:\n{}",
        args.join(" "),
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs a command that must succeed and returns its stdout.
fn ok(broker: &TestBroker, args: &[&str]) -> String {
    let output = rapidmq(broker, args);
    assert!(
        output.status.success(),
        "`rapidmq {}` failed with {}:\n{}",
        args.join(" "),
        output.status,
        text(&output.stderr)
    );
    text(&output.stdout)
}

fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn lines_published_from_stdin_are_consumed_back_as_json_in_order() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "lines", "--partitions", "1"]);
    let input: Vec<String> = (0..1000)
        .map(|i| format!("line {i}: héllo wörld"))
        .collect();
    let published = rapidmq_with_stdin(
        &broker,
        &["publish", "lines", "--header", "source=test"],
        format!("{}\n", input.join("\n")).as_bytes(),
    );
    assert!(published.status.success(), "{}", text(&published.stderr));
    assert!(text(&published.stdout).contains("published 1000 messages"));

    let stdout = ok(&broker, &["consume", "lines", "--output", "json"]);
    let messages = json_lines(&stdout);
    assert_eq!(messages.len(), 1000);
    for (i, (message, line)) in messages.iter().zip(&input).enumerate() {
        assert_eq!(message["value"], line.as_str());
        assert_eq!(message["offset"], i as u64);
        assert_eq!(message["partition"], 0);
        assert_eq!(message["attempt"], 1);
        assert_eq!(message["key"], Value::Null);
        assert_eq!(
            message["headers"],
            serde_json::json!([{ "key": "source", "value": "test" }])
        );
    }
}

#[test]
fn publish_receipts_in_json_name_partition_and_offset() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "receipts", "-p", "4"]);
    let stdout = ok(
        &broker,
        &["publish", "receipts", "v", "--key", "k", "-o", "json"],
    );
    let receipt = &json_lines(&stdout)[0];
    assert_eq!(receipt["offset"], 0);
    assert_eq!(receipt["durability"], "fsync");
    let partition = receipt["partition"].as_u64().expect("partition");

    let stdout = ok(&broker, &["consume", "receipts", "-o", "json"]);
    let message = &json_lines(&stdout)[0];
    assert_eq!(message["partition"], partition);
    assert_eq!(message["key"], "k");
    assert_eq!(message["value"], "v");
}

#[test]
fn an_empty_key_is_published_and_shown_apart_from_no_key() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "keys", "-p", "1"]);
    ok(&broker, &["publish", "keys", "empty", "--key", ""]);
    ok(&broker, &["publish", "keys", "none"]);
    let stdout = ok(&broker, &["consume", "keys", "-o", "json"]);
    let messages = json_lines(&stdout);
    assert_eq!(messages[0]["value"], "empty");
    assert_eq!(messages[0]["key"], "", "an empty key is a key");
    assert_eq!(messages[1]["value"], "none");
    assert!(messages[1]["key"].is_null(), "{}", messages[1]);
}

#[test]
fn request_prints_the_reply_that_reply_sends_and_times_out_without_one() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "prices", "-p", "1"]);
    // Nobody answers: a timeout error, and the request still went out.
    let alone = rapidmq(
        &broker,
        &["request", "prices", "first", "--timeout", "200ms"],
    );
    assert!(!alone.status.success());
    assert!(
        text(&alone.stderr).contains("timed out"),
        "{}",
        text(&alone.stderr)
    );

    // A requester waiting, then a responder answering every request stored so far: the
    // unanswered first one reaches nobody (its requester has gone), the second gets its reply.
    let requester = std::thread::spawn({
        let url = broker.grpc_url();
        move || {
            rapidmq_testkit::cli_command()
                .args([
                    "request",
                    "prices",
                    "EURUSD",
                    "--key",
                    "fx",
                    "--timeout",
                    "60s",
                ])
                .args(["-o", "json"])
                .env("RAPIDMQ_SERVER", url)
                .output()
                .expect("run rapidmq request")
        }
    });
    let answered = rapidmq(
        &broker,
        &[
            "reply", "prices", "--echo", "--from", "earliest", "-n", "1", "-o", "json",
        ],
    );
    let log = text(&answered.stderr);
    assert!(answered.status.success(), "{log}");
    assert!(log.contains("offset 0: the requester has gone"), "{log}");
    let requests = json_lines(&text(&answered.stdout));
    assert_eq!(requests.len(), 1, "one request answered");
    assert_eq!(requests[0]["value"], "EURUSD");
    let reply = requester.join().expect("requester");
    assert!(reply.status.success(), "{}", text(&reply.stderr));
    let reply = &json_lines(&text(&reply.stdout))[0];
    assert_eq!(reply["value"], "EURUSD", "an echo: {reply}");
    assert_eq!(reply["key"], "fx", "{reply}");
    assert!(
        reply["topic"].as_str().unwrap().starts_with("_inbox."),
        "{reply}"
    );
}

#[test]
fn reply_nacks_a_message_that_is_no_request() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "mixed", "-p", "1"]);
    ok(&broker, &["publish", "mixed", "plain"]);
    // The plain message is nacked; with max deliveries 1 that dead-letters it, so it does not
    // come back. The request after it is answered, which ends `reply -n 1`.
    ok(
        &broker,
        &[
            "sub",
            "create",
            "mixed",
            "r",
            "--mode",
            "queue",
            "--from",
            "earliest",
            "--max-deliveries",
            "1",
        ],
    );
    let requester = std::thread::spawn({
        let url = broker.grpc_url();
        move || {
            rapidmq_testkit::cli_command()
                .args(["request", "mixed", "q", "--timeout", "60s"])
                .env("RAPIDMQ_SERVER", url)
                .output()
                .expect("run rapidmq request")
        }
    });
    let answered = rapidmq(&broker, &["reply", "mixed", "yes", "-s", "r", "-n", "1"]);
    let log = text(&answered.stderr);
    assert!(answered.status.success(), "{log}");
    assert!(
        log.contains("offset 0: not a request (no reply-to); nacked"),
        "{log}"
    );
    assert_eq!(text(&answered.stdout), "q\n", "the request it answered");
    let reply = requester.join().expect("requester");
    assert!(reply.status.success(), "{}", text(&reply.stderr));
    assert_eq!(text(&reply.stdout), "yes\n");
}

#[test]
fn a_named_subscription_resumes_where_the_last_consume_stopped() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "resume", "-p", "1"]);
    let published = rapidmq_with_stdin(&broker, &["publish", "resume"], b"1\n2\n3\n4\n5\n6\n");
    assert!(published.status.success(), "{}", text(&published.stderr));

    let first = ok(&broker, &["consume", "resume", "-s", "work", "-n", "2"]);
    assert_eq!(first, "1\n2\n");
    let rest = ok(&broker, &["consume", "resume", "-s", "work"]);
    assert_eq!(rest, "3\n4\n5\n6\n");

    let described = ok(
        &broker,
        &["sub", "describe", "resume", "work", "-o", "json"],
    );
    let described: Value = serde_json::from_str(&described).expect("JSON");
    assert_eq!(described["total_lag"], 0);
    let seek = ok(
        &broker,
        &[
            "sub", "seek", "resume", "work", "--to", "earliest", "-o", "json",
        ],
    );
    let seek: Value = serde_json::from_str(&seek).expect("JSON");
    assert_eq!(seek["total_lag"], 6);
}

#[test]
fn bench_pub_json_reports_the_requested_count_and_a_positive_throughput() {
    let broker = TestBroker::start();
    let stdout = ok(&broker, &["bench", "pub", "--count", "100000", "--json"]);
    let report: Value = serde_json::from_str(&stdout).expect("bench prints valid JSON");
    assert_eq!(report["workload"], "pub");
    assert_eq!(report["count"], 100_000);
    assert_eq!(report["phases"][0]["messages"], 100_000);
    assert!(report["msgs_per_sec"].as_f64().expect("throughput") > 0.0);
    assert!(report["phases"][0]["latency"]["p99_ms"].as_f64().is_some());
}

#[test]
fn bench_pubsub_consumes_everything_it_published() {
    let broker = TestBroker::start();
    let stdout = ok(
        &broker,
        &[
            "bench",
            "pubsub",
            "--count",
            "20000",
            "--partitions",
            "2",
            "--consumers",
            "2",
            "--json",
        ],
    );
    let report: Value = serde_json::from_str(&stdout).expect("bench prints valid JSON");
    assert_eq!(report["phases"][0]["name"], "publish");
    assert_eq!(report["phases"][0]["messages"], 20_000);
    assert_eq!(report["phases"][1]["name"], "consume");
    assert_eq!(report["phases"][1]["messages"], 20_000);
    assert!(report["phases"][1]["latency"]["max_ms"].as_f64().is_some());
    // The run cleans up the topic it created.
    let topics: Value =
        serde_json::from_str(&ok(&broker, &["topic", "list", "-o", "json"])).expect("JSON");
    assert_eq!(topics, serde_json::json!([]));
}

#[test]
fn bad_arguments_exit_non_zero_with_usage() {
    let broker = TestBroker::start();
    for args in [
        &["topic", "create"][..],
        &["consume", "t", "--from", "yesterday"],
        &["publish", "t", "v", "--header", "novalue"],
        &["bench", "fly"],
        &["no-such-command"],
    ] {
        let output = rapidmq(&broker, args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "`rapidmq {}`",
            args.join(" ")
        );
        assert!(
            text(&output.stderr).contains("Usage:"),
            "`rapidmq {}` printed no usage:\n{}",
            args.join(" "),
            text(&output.stderr)
        );
    }
}

#[test]
fn unknown_topic_reports_its_error_code_and_a_readable_message() {
    let broker = TestBroker::start();
    for args in [
        &["consume", "missing"][..],
        &["publish", "missing", "v"],
        &["topic", "describe", "missing"],
    ] {
        let output = rapidmq(&broker, args);
        let stderr = text(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(1),
            "`rapidmq {}`",
            args.join(" ")
        );
        assert!(stderr.contains("TOPIC_NOT_FOUND (2001)"), "{stderr}");
        assert!(stderr.contains("`missing`"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn unreachable_broker_error_says_how_to_start_one() {
    let output = rapidmq_testkit::cli_command()
        .args(["--server", "127.0.0.1:1", "topic", "list"])
        .output()
        .expect("run rapidmq");
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        text(&output.stderr).trim(),
        "error: cannot reach broker at http://127.0.0.1:1: is it running? (`rapidmq serve`)"
    );
}

#[test]
fn consume_piped_into_head_exits_cleanly() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "piped", "-p", "1"]);
    // Far more than a pipe buffer holds, so the consumer outlives `head` and hits a closed pipe.
    let input: String = (0..20_000)
        .map(|i| format!("message number {i}\n"))
        .collect();
    let published = rapidmq_with_stdin(&broker, &["publish", "piped"], input.as_bytes());
    assert!(published.status.success(), "{}", text(&published.stderr));

    let dir = tempfile::tempdir().expect("temp dir");
    let status_file = dir.path().join("status");
    let stderr_file = dir.path().join("stderr");
    let output = Command::new("sh")
        .arg("-c")
        .arg(r#"{ "$0" consume piped 2>"$1"; echo $? >"$2"; } | head -n 1"#)
        .arg(broker_binary())
        .arg(&stderr_file)
        .arg(&status_file)
        .env("RAPIDMQ_SERVER", broker.grpc_url())
        .output()
        .expect("run the pipeline");
    assert!(output.status.success());
    assert_eq!(text(&output.stdout), "message number 0\n");
    let stderr = std::fs::read_to_string(&stderr_file).expect("stderr file");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(stderr, "", "a closed pipe is not an error");
    let status = std::fs::read_to_string(&status_file).expect("status file");
    assert_eq!(status.trim(), "0", "rapidmq exit status in the pipeline");
}

#[test]
fn topic_and_subscription_lifecycle_in_json() {
    let broker = TestBroker::start();
    let created = ok(
        &broker,
        &[
            "topic",
            "create",
            "life",
            "-p",
            "2",
            "--retention-time",
            "1d",
            "--durability",
            "buffered",
            "-o",
            "json",
        ],
    );
    let created: Value = serde_json::from_str(&created).expect("JSON");
    assert_eq!(created["config"]["partitions"], 2);
    assert_eq!(created["config"]["retention_ms"], 86_400_000);
    assert_eq!(created["config"]["durability"], "buffered");

    let again = rapidmq(&broker, &["topic", "create", "life"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).contains("TOPIC_ALREADY_EXISTS (2002)"));
    ok(&broker, &["topic", "create", "life", "--if-not-exists"]);

    let list: Value =
        serde_json::from_str(&ok(&broker, &["topic", "list", "-o", "json"])).expect("JSON");
    assert_eq!(list[0]["name"], "life");
    let table = ok(&broker, &["topic", "list"]);
    assert!(table.contains("TOPIC") && table.contains("life"), "{table}");

    ok(
        &broker,
        &["sub", "create", "life", "audit", "--from", "earliest"],
    );
    let subs: Value =
        serde_json::from_str(&ok(&broker, &["sub", "list", "life", "-o", "json"])).expect("JSON");
    assert_eq!(subs[0]["name"], "audit");
    assert_eq!(subs[0]["mode"], "stream");
    ok(&broker, &["sub", "delete", "life", "audit"]);
    let missing = rapidmq(&broker, &["sub", "describe", "life", "audit"]);
    assert!(text(&missing.stderr).contains("SUBSCRIPTION_NOT_FOUND (4001)"));

    ok(&broker, &["topic", "delete", "life"]);
    ok(&broker, &["topic", "delete", "life", "--if-exists"]);
    let status: Value =
        serde_json::from_str(&ok(&broker, &["status", "-o", "json"])).expect("JSON");
    assert_eq!(status["topics"], 0);
    assert!(status["version"].as_str().is_some_and(|v| !v.is_empty()));
}

#[test]
fn topic_alter_changes_retention_and_durability() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "logs", "--partitions", "2"]);
    let altered: Value = serde_json::from_str(&ok(
        &broker,
        &[
            "topic",
            "alter",
            "logs",
            "--retention-messages",
            "500",
            "--durability",
            "buffered",
            "-o",
            "json",
        ],
    ))
    .expect("JSON");
    assert_eq!(altered["config"]["retention_messages"], 500);
    assert_eq!(altered["config"]["durability"], "buffered");
    assert_eq!(altered["config"]["partitions"], 2);
}

#[test]
fn unsupported_or_inconsistent_requests_fail_with_a_clear_message() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "q"]);
    for (args, expected) in [
        (
            &["topic", "alter", "q", "--partitions", "4"][..],
            "partition count of a topic cannot be altered",
        ),
        (
            &["sub", "create", "q", "s", "--max-deliveries", "3"],
            "add --mode queue",
        ),
        (&["consume", "q", "--nack"], "add --mode queue"),
        (
            &["consume", "q", "--mode", "queue"],
            "add --subscription NAME",
        ),
    ] {
        let output = rapidmq(&broker, args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "`rapidmq {}`",
            args.join(" ")
        );
        let stderr = text(&output.stderr);
        assert!(
            stderr.contains(expected),
            "`rapidmq {}`: {stderr}",
            args.join(" ")
        );
    }
}

#[test]
fn every_subcommand_help_shows_examples() {
    for args in [
        &["--help"][..],
        &["topic", "create", "--help"],
        &["topic", "list", "--help"],
        &["topic", "describe", "--help"],
        &["topic", "delete", "--help"],
        &["topic", "alter", "--help"],
        &["sub", "create", "--help"],
        &["sub", "list", "--help"],
        &["sub", "describe", "--help"],
        &["sub", "seek", "--help"],
        &["sub", "delete", "--help"],
        &["publish", "--help"],
        &["consume", "--help"],
        &["request", "--help"],
        &["reply", "--help"],
        &["dlq", "list", "--help"],
        &["dlq", "replay", "--help"],
        &["status", "--help"],
        &["completions", "--help"],
        &["bench", "--help"],
        &["serve", "--help"],
        &["bench-grpc", "--help"],
    ] {
        let stdout = ok_offline(args);
        assert!(
            stdout.contains("Example"),
            "`rapidmq {}`:\n{stdout}",
            args.join(" ")
        );
    }
}

#[test]
fn version_names_the_release_and_the_revision_it_was_built_from() {
    let stdout = ok_offline(&["--version"]);
    let want = format!("rapidmq {} (", env!("CARGO_PKG_VERSION"));
    let revision = stdout
        .trim()
        .strip_prefix(&want)
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("`rapidmq --version` printed {stdout:?}, want {want}REVISION)"));
    // Built in this checkout, it names its HEAD (a build from a tarball would say "unknown").
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run git");
    if head.status.success() {
        assert_eq!(revision, text(&head.stdout).trim(), "the revision");
    } else {
        assert_eq!(revision, "unknown");
    }
}

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for shell in ["bash", "zsh", "fish"] {
        let script = ok_offline(&["completions", shell]);
        assert!(
            script.contains("consume"),
            "{shell} completions mention consume"
        );
    }
}

#[test]
fn a_queue_subscription_is_created_with_its_settings() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "jobs"]);
    ok(
        &broker,
        &[
            "sub",
            "create",
            "jobs",
            "workers",
            "--mode",
            "queue",
            "--ack-deadline",
            "10s",
            "--max-deliveries",
            "3",
        ],
    );
    let described = ok(
        &broker,
        &["sub", "describe", "jobs", "workers", "-o", "json"],
    );
    let described: Value = serde_json::from_str(&described).expect("JSON");
    assert_eq!(described["mode"], "queue");
    assert_eq!(described["queue"]["ack_deadline_ms"], 10_000);
    assert_eq!(described["queue"]["max_deliveries"], 3);
    let table = ok(&broker, &["sub", "describe", "jobs", "workers"]);
    assert!(table.contains("Max deliveries"), "{table}");
}

#[test]
fn a_delayed_message_is_scheduled_not_appended() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "later", "-p", "1"]);
    let stdout = ok(
        &broker,
        &[
            "publish",
            "later",
            "wake up",
            "--delay",
            "1h",
            "--priority",
            "5",
            "-o",
            "json",
        ],
    );
    let receipt = &json_lines(&stdout)[0];
    assert_eq!(receipt["status"], "scheduled");
    assert_eq!(receipt["offset"], Value::Null);
    let stdout = ok(&broker, &["consume", "later"]);
    assert_eq!(stdout, "", "nothing is in the log until the delay is over");

    let bad = rapidmq(&broker, &["publish", "later", "v", "--priority", "10"]);
    assert_eq!(bad.status.code(), Some(2), "priority is 0-9");
}

#[test]
fn dlq_commands_read_the_dead_letter_topic_of_a_topic() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "mail"]);
    let missing = rapidmq(&broker, &["dlq", "list", "mail"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("mail.dlq"),
        "{}",
        text(&missing.stderr)
    );
    ok(&broker, &["topic", "create", "mail.dlq"]);
    let listed: Value =
        serde_json::from_str(&ok(&broker, &["dlq", "list", "mail", "-o", "json"])).expect("JSON");
    assert_eq!(listed["dead_letter_topic"], "mail.dlq");
    assert_eq!(listed["dead_letters"], serde_json::json!([]));
    assert_eq!(listed["next_page_token"], Value::Null);
    let replayed = ok(&broker, &["dlq", "replay", "mail", "-o", "json"]);
    let replayed: Value = serde_json::from_str(&replayed).expect("JSON");
    assert_eq!(replayed["replayed"], 0);
    assert_eq!(replayed["remaining"], 0);
}

#[test]
fn a_nacked_message_reaches_the_dlq_and_replay_returns_it() {
    let broker = TestBroker::start();
    ok(&broker, &["topic", "create", "jobs", "-p", "1"]);
    ok(
        &broker,
        &[
            "sub",
            "create",
            "jobs",
            "workers",
            "--mode",
            "queue",
            "--max-deliveries",
            "3",
        ],
    );
    ok(&broker, &["publish", "jobs", "poison"]);

    let deliveries = json_lines(&ok(
        &broker,
        &[
            "consume", "jobs", "-s", "workers", "--mode", "queue", "--nack", "-n", "3", "-o",
            "json",
        ],
    ));
    let attempts: Vec<_> = deliveries.iter().map(|d| d["attempt"].clone()).collect();
    assert_eq!(attempts, [1, 2, 3]);
    assert!(deliveries.iter().all(|d| d["value"] == "poison"));

    // Dead-lettering follows the last nack asynchronously: ask until it shows (bounded).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let letters = loop {
        let listed = rapidmq(&broker, &["dlq", "list", "jobs", "-o", "json"]);
        if listed.status.success() {
            let page: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
            let letters = &page["dead_letters"];
            if letters.as_array().is_some_and(|l| !l.is_empty()) {
                break letters.clone();
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no dead letter: {}",
            text(&listed.stderr)
        );
    };
    assert_eq!(letters[0]["original_topic"], "jobs");
    assert_eq!(letters[0]["attempts"], 3);
    assert_eq!(letters[0]["value"], "poison");

    let replayed: Value =
        serde_json::from_str(&ok(&broker, &["dlq", "replay", "jobs", "-o", "json"])).expect("JSON");
    assert_eq!(replayed["replayed"], 1);
    assert_eq!(replayed["remaining"], 0);
    let back = json_lines(&ok(
        &broker,
        &[
            "consume", "jobs", "-s", "workers", "--mode", "queue", "-n", "1", "-o", "json",
        ],
    ));
    assert_eq!(back[0]["value"], "poison");
    assert_eq!(back[0]["attempt"], 1, "a replayed message starts over");
    let listed: Value =
        serde_json::from_str(&ok(&broker, &["dlq", "list", "jobs", "-o", "json"])).expect("JSON");
    assert_eq!(listed["dead_letters"], serde_json::json!([]));
}

#[test]
fn bench_queue_acks_everything_it_published() {
    let broker = TestBroker::start();
    let stdout = ok(
        &broker,
        &[
            "bench",
            "queue",
            "--count",
            "5000",
            "--consumers",
            "2",
            "--json",
        ],
    );
    let report: Value = serde_json::from_str(&stdout).expect("bench prints valid JSON");
    assert_eq!(report["workload"], "queue");
    assert_eq!(report["phases"][1]["messages"], 5000);
}

#[test]
fn bench_queue_can_send_each_ack_on_its_own_and_only_in_queue_mode() {
    let broker = TestBroker::start();
    let stdout = ok(
        &broker,
        &["bench", "queue", "--count", "500", "--ack-each", "--json"],
    );
    let report: Value = serde_json::from_str(&stdout).expect("bench prints valid JSON");
    assert_eq!(report["phases"][1]["messages"], 500);
    let out = rapidmq(&broker, &["bench", "pub", "--count", "10", "--ack-each"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("--ack-each is for the queue workload"),
        "{out:?}"
    );
}

#[test]
fn a_single_node_broker_keeps_one_copy_and_refuses_more() {
    let broker = TestBroker::start();
    let refused = rapidmq(
        &broker,
        &["topic", "create", "copies", "--replication-factor", "2"],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("INVALID_TOPIC_CONFIG"), "{stderr}");

    let stdout = ok(
        &broker,
        &[
            "topic",
            "create",
            "copies",
            "--replication-factor",
            "1",
            "-o",
            "json",
        ],
    );
    let topic: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(topic["config"]["replication_factor"], Value::Null);
    assert_eq!(topic["partitions"][0]["replicas"], serde_json::json!([]));
}
