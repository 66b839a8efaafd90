//! The `rapidmq serve` process: config checking, health endpoints, reflection.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::*;
use tokio_stream::StreamExt;
use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

fn http_get(base: &str, path: &str) -> (u16, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, response)
}

#[test]
fn health_and_readiness_answer_on_the_http_listener() {
    let broker = TestBroker::start();
    let (status, body) = http_get(&broker.http_url(), "/healthz");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(&broker.http_url(), "/readyz");
    assert_eq!(status, 200, "{body}");
    let (status, _) = http_get(&broker.http_url(), "/nope");
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_both_services() {
    let broker = TestBroker::start();
    let channel = tonic::transport::Channel::from_shared(broker.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = responses.next().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("{response:?}")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"rapidmq.v1.Messaging".to_string()),
        "{names:?}"
    );
    assert!(names.contains(&"rapidmq.v1.Admin".to_string()), "{names:?}");
}

/// gzip is negotiated on the gRPC services: a gzipped request is accepted, and the answer is
/// gzipped exactly for a client that accepts gzip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_answers_are_gzipped_for_clients_that_accept_gzip() {
    use rapidmq_proto::v1::admin_client::AdminClient;
    use tonic::codec::CompressionEncoding::Gzip;

    let broker = TestBroker::start();
    let channel = tonic::transport::Channel::from_shared(broker.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut gzip = AdminClient::new(channel.clone())
        .send_compressed(Gzip)
        .accept_compressed(Gzip);
    let answer = gzip
        .list_topics(rapidmq_proto::v1::ListTopicsRequest::default())
        .await
        .expect("a gzipped request is accepted");
    assert_eq!(
        answer
            .metadata()
            .get("grpc-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    let mut plain = AdminClient::new(channel);
    let answer = plain
        .list_topics(rapidmq_proto::v1::ListTopicsRequest::default())
        .await
        .unwrap();
    assert_eq!(answer.metadata().get("grpc-encoding"), None);
}

#[test]
fn check_config_accepts_a_good_file_and_names_the_bad_field() {
    let dir = tempfile_dir();
    let good = dir.join("good.toml");
    std::fs::write(
        &good,
        "data_dir = \"/tmp/x\"\n[storage]\nfsync_interval_ms = 20\n",
    )
    .unwrap();
    let out = rapidmq_testkit::cli_command()
        .args(["serve", "--check-config", "--config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("fsync_interval_ms = 20"));

    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[storage]\nfsync_intervl_ms = 20\n").unwrap();
    let out = rapidmq_testkit::cli_command()
        .args(["serve", "--check-config", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fsync_intervl_ms"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = rapidmq_testkit::cli_command()
        .args(["serve", "--check-config"])
        .env("RAPIDMQ_GRPC_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad environment value is refused");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A pipe whose reading end is already closed: every write to it fails with EPIPE, as when
/// the output goes to `head` that has exited.
fn closed_pipe() -> std::process::Stdio {
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    writer.into()
}

#[test]
fn check_config_and_token_generate_into_a_closed_pipe_exit_cleanly() {
    for args in [&["serve", "--check-config"][..], &["token", "generate"][..]] {
        let out = rapidmq_testkit::cli_command()
            .args(args)
            .stdout(closed_pipe())
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && !stderr.contains("panicked"),
            "rapidmq {args:?} into a closed pipe: {:?}\n{stderr}",
            out.status
        );
    }
}

#[test]
fn a_broker_whose_stdout_is_closed_still_serves() {
    let dir = tempfile::tempdir().unwrap();
    let ready_file = dir.path().join("ready.json");
    let mut child = rapidmq_testkit::cli_command()
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--ready-file")
        .arg(&ready_file)
        .stdin(std::process::Stdio::null())
        .stdout(closed_pipe())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let ready = loop {
        if let Ok(text) = std::fs::read_to_string(&ready_file) {
            break text;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("the broker exited ({status}) before it was ready:\n{stderr}");
        }
        assert!(std::time::Instant::now() < deadline, "never ready");
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let ready: serde_json::Value = serde_json::from_str(&ready).unwrap();
    let http = format!("http://{}", ready["http"].as_str().unwrap());
    assert_eq!(http_get(&http, "/healthz").0, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn json_logs_when_asked() {
    let broker = TestBroker::start_with(BrokerOptions {
        env: vec![("RAPIDMQ_LOG_FORMAT".into(), "json".into())],
        ..Default::default()
    });
    let log = broker.log();
    let line = log
        .lines()
        .find(|l| l.contains("rapidmq ready") && l.starts_with('{'))
        .expect("a JSON ready line");
    let parsed: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(parsed["fields"]["message"], "rapidmq ready");
}

#[test]
fn a_log_written_to_a_file_has_no_colour_codes() {
    let broker = TestBroker::start();
    let log = broker.log();
    assert!(
        log.contains("rapidmq ready"),
        "the log has the ready line:\n{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in a log that is not a terminal:\n{log}"
    );
}

fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("rapidmq-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
