//! TLS on both listeners against a real broker (issue 16 slice 1, docs/adr/0004-security.md §2):
//! gRPC and REST over TLS, the failures a wrong CA or a plaintext client meet, mutual TLS, and
//! certificate reload with open streams. Certificates are made here with rcgen.

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use common::*;
use rapidmq_proto::v1 as pb;
use rapidmq_proto::v1::admin_client::AdminClient;
use rapidmq_proto::v1::messaging_client::MessagingClient;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A test certificate authority.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate issued by a [`Ca`], with its key.
struct Leaf {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        Ca {
            pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `localhost` and 127.0.0.1 with this serial number.
    fn server(&self, serial: u64) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.serial_number = Some(serial.into());
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    fn client(&self, name: &str) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }
}

/// The broker's TLS files in a directory of their own.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new(ca: &Ca, server: &Leaf) -> Files {
        let files = Files {
            dir: tempfile::tempdir().unwrap(),
        };
        files.install(server);
        std::fs::write(files.path("client-ca.pem"), &ca.pem).unwrap();
        files
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Replaces the served certificate and key.
    fn install(&self, server: &Leaf) {
        std::fs::write(self.path("cert.pem"), &server.cert_pem).unwrap();
        std::fs::write(self.path("key.pem"), &server.key_pem).unwrap();
    }

    fn args(&self) -> Vec<String> {
        let p = |name: &str| self.path(name).display().to_string();
        vec![
            "--tls-cert-file".into(),
            p("cert.pem"),
            "--tls-key-file".into(),
            p("key.pem"),
        ]
    }

    fn mtls_args(&self, mode: &str) -> Vec<String> {
        let mut args = self.args();
        args.extend([
            "--tls-client-ca-file".into(),
            self.path("client-ca.pem").display().to_string(),
            "--tls-client-auth".into(),
            mode.into(),
        ]);
        args
    }
}

fn start(args: Vec<String>, env: Vec<(&str, &str)>) -> TestBroker {
    TestBroker::start_with(BrokerOptions {
        args,
        env: env
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    })
}

fn tls_config(ca_pem: &str) -> ClientTlsConfig {
    ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name("localhost")
}

async fn connect_tls(broker: &TestBroker, tls: ClientTlsConfig) -> Result<Clients, tonic::Status> {
    let channel = Channel::from_shared(format!("https://{}", broker.grpc_addr()))
        .unwrap()
        .tls_config(tls)
        .map_err(|err| tonic::Status::unavailable(err.to_string()))?
        .connect()
        .await
        .map_err(|err| tonic::Status::unavailable(format!("{err:?}")))?;
    Ok(Clients {
        admin: AdminClient::new(channel.clone()),
        messaging: MessagingClient::new(channel),
    })
}

async fn list_topics(c: &mut Clients) -> Result<Vec<String>, tonic::Status> {
    let topics = c
        .admin
        .list_topics(pb::ListTopicsRequest::default())
        .await?
        .into_inner()
        .topics;
    Ok(topics.into_iter().map(|t| t.name).collect())
}

fn https(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

fn http_addr(broker: &TestBroker) -> String {
    broker.http_url().trim_start_matches("http://").to_string()
}

/// The leaf certificate a fresh TLS connection to `addr` is shown, verified against `ca_pem`.
async fn presented_certificate(addr: &str, ca_pem: &str) -> std::io::Result<Vec<u8>> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
}

fn sighup(broker: &TestBroker) {
    let pid = broker.pid().expect("broker running").to_string();
    let status = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(status.success());
}

fn log_count(broker: &TestBroker, needle: &str) -> usize {
    broker.log().matches(needle).count()
}

#[tokio::test]
async fn grpc_and_rest_work_over_tls() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(files.args(), vec![]);

    let mut c = connect_tls(&broker, tls_config(&ca.pem)).await.unwrap();
    create_topic(&mut c, "secure", topic_config(1)).await;
    publish(&mut c, "secure", 0, &[msg("k", "v")])
        .await
        .unwrap();
    assert_eq!(list_topics(&mut c).await.unwrap(), ["secure"]);

    let rest = https(&ca.pem);
    let base = format!("https://{}", http_addr(&broker));
    let health = rest.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let topics: serde_json::Value = rest
        .get(format!("{base}/v1/topics"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(topics.to_string().contains("secure"), "{topics}");
}

#[tokio::test]
async fn wrong_ca_and_plaintext_clients_fail_clearly() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(files.args(), vec![]);
    let stranger = Ca::new("another ca");

    let refused = connect_tls(&broker, tls_config(&stranger.pem)).await;
    let err = refused
        .err()
        .expect("a certificate from an unknown CA is refused");
    assert!(
        err.message().to_lowercase().contains("certificate"),
        "{err}"
    );

    let base = format!("https://{}", http_addr(&broker));
    let err = https(&stranger.pem)
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect_err("a certificate from an unknown CA is refused");
    assert!(err.is_connect(), "{err:?}");

    // Plaintext HTTP to the TLS port: a 400 that says what to do.
    let answer = reqwest::get(format!("{}/healthz", broker.http_url()))
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert!(answer.text().await.unwrap().contains("requires TLS"));

    // Plaintext gRPC to the TLS port: closed.
    let plaintext = Channel::from_shared(broker.grpc_url())
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plaintext {
        let mut admin = AdminClient::new(channel);
        admin
            .list_topics(pb::ListTopicsRequest::default())
            .await
            .expect_err("a plaintext gRPC call to a TLS port fails");
    }

    // None of that disturbed the listeners.
    let mut c = connect_tls(&broker, tls_config(&ca.pem)).await.unwrap();
    list_topics(&mut c).await.unwrap();
}

#[tokio::test]
async fn a_stalled_handshake_does_not_hold_up_other_clients() {
    use tokio::io::AsyncWriteExt as _;
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    // A handshake timeout far beyond the test's patience: if a stalled handshake held up the
    // accept loop, the clients below would time out.
    let broker = start(
        files.args(),
        vec![("RAPIDMQ_TLS__HANDSHAKE_TIMEOUT_MS", "600000")],
    );

    // Clients that start a TLS record and then say nothing, on both listeners.
    let mut stalled = Vec::new();
    for addr in [broker.grpc_addr().to_string(), http_addr(&broker)] {
        let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        tcp.write_all(&[0x16]).await.unwrap();
        stalled.push(tcp);
    }
    let served = async {
        let mut c = connect_tls(&broker, tls_config(&ca.pem)).await.unwrap();
        list_topics(&mut c).await.unwrap();
        let base = format!("https://{}", http_addr(&broker));
        https(&ca.pem)
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status()
    };
    let status = tokio::time::timeout(PATIENCE, served)
        .await
        .expect("other clients are served while a handshake stalls");
    assert_eq!(status, 200);
    drop(stalled);
}

#[tokio::test]
async fn required_client_auth_refuses_clients_without_a_certificate() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(files.mtls_args("required"), vec![]);

    let anonymous = match connect_tls(&broker, tls_config(&ca.pem)).await {
        Err(err) => Err(err),
        Ok(mut c) => list_topics(&mut c).await,
    };
    anonymous.expect_err("a client without a certificate is refused");

    let stranger = Ca::new("another ca").client("mallory");
    let foreign =
        tls_config(&ca.pem).identity(Identity::from_pem(&stranger.cert_pem, &stranger.key_pem));
    let foreign = match connect_tls(&broker, foreign).await {
        Err(err) => Err(err),
        Ok(mut c) => list_topics(&mut c).await,
    };
    foreign.expect_err("a client certificate from an unknown CA is refused");

    let alice = ca.client("alice");
    let with_cert =
        tls_config(&ca.pem).identity(Identity::from_pem(&alice.cert_pem, &alice.key_pem));
    let mut c = connect_tls(&broker, with_cert).await.unwrap();
    list_topics(&mut c).await.unwrap();
}

#[tokio::test]
async fn optional_client_auth_accepts_clients_with_and_without_a_certificate() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(files.mtls_args("optional"), vec![]);

    let mut c = connect_tls(&broker, tls_config(&ca.pem)).await.unwrap();
    list_topics(&mut c).await.unwrap();
    let alice = ca.client("alice");
    let with_cert =
        tls_config(&ca.pem).identity(Identity::from_pem(&alice.cert_pem, &alice.key_pem));
    let mut c = connect_tls(&broker, with_cert).await.unwrap();
    list_topics(&mut c).await.unwrap();
}

#[tokio::test]
async fn sighup_reload_keeps_open_streams_and_serves_the_new_certificate() {
    let ca = Ca::new("test ca");
    let first = ca.server(1);
    let files = Files::new(&ca, &first);
    // Reload on SIGHUP only, so the test decides when.
    let broker = start(files.args(), vec![("RAPIDMQ_TLS__RELOAD_INTERVAL_MS", "0")]);
    let grpc = broker.grpc_addr().to_string();
    assert_eq!(
        presented_certificate(&grpc, &ca.pem).await.unwrap(),
        first.der
    );

    let mut c = connect_tls(&broker, tls_config(&ca.pem)).await.unwrap();
    create_topic(&mut c, "rotating", topic_config(1)).await;
    let mut consumer = Consumer::open(
        &mut c,
        "rotating",
        "reader",
        start_at(pb::StartKind::Earliest),
        100,
    )
    .await
    .unwrap();
    publish(&mut c, "rotating", 0, &[msg("k", "before")])
        .await
        .unwrap();
    assert_eq!(consumer.receive(1).await[0].msg.value, "before");

    let second = ca.server(2);
    files.install(&second);
    sighup(&broker);
    eventually("new connections see the new certificate", || async {
        presented_certificate(&grpc, &ca.pem).await.ok().as_ref() == Some(&second.der)
    })
    .await;

    // The connection made before the reload still publishes, and its Consume stream still
    // delivers.
    publish(&mut c, "rotating", 0, &[msg("k", "after")])
        .await
        .unwrap();
    assert_eq!(consumer.receive(1).await[0].msg.value, "after");
    let mut fresh = connect_tls(&broker, tls_config(&ca.pem)).await.unwrap();
    assert_eq!(list_topics(&mut fresh).await.unwrap(), ["rotating"]);

    // A bad new file keeps the current certificate.
    let failures = log_count(&broker, "TLS reload failed");
    std::fs::write(files.path("cert.pem"), "not a certificate").unwrap();
    sighup(&broker);
    eventually("the failed reload is logged", || async {
        log_count(&broker, "TLS reload failed") > failures
    })
    .await;
    assert_eq!(
        presented_certificate(&grpc, &ca.pem).await.unwrap(),
        second.der
    );
    let base = format!("https://{}", http_addr(&broker));
    let health = https(&ca.pem)
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn changed_files_are_picked_up_by_the_poll() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(
        files.args(),
        vec![("RAPIDMQ_TLS__RELOAD_INTERVAL_MS", "50")],
    );
    let second = ca.server(2);
    files.install(&second);
    let http = http_addr(&broker);
    eventually("the HTTP listener serves the new certificate", || async {
        presented_certificate(&http, &ca.pem).await.ok().as_ref() == Some(&second.der)
    })
    .await;
}

fn start_at(kind: pb::StartKind) -> pb::StartPosition {
    common::start(kind)
}

#[test]
fn a_broker_with_unreadable_tls_files_refuses_to_start_and_names_them() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-cert.pem");
    let output = rapidmq_testkit::cli_command()
        .args([
            "serve",
            "--grpc-listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--tls-cert-file")
        .arg(&missing)
        .arg("--tls-key-file")
        .arg(dir.path().join("missing-key.pem"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("TLS configuration") && stderr.contains("missing-cert.pem"),
        "{stderr}"
    );
}

#[tokio::test]
async fn dev_certs_give_a_working_mutual_tls_setup() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    let dev_certs = || {
        rapidmq_testkit::cli_command()
            .args(["tls", "dev-certs", "--client", "alice", "--out"])
            .arg(&out)
            .output()
            .unwrap()
    };
    let made = dev_certs();
    assert!(made.status.success(), "{made:?}");
    let again = dev_certs();
    assert!(
        !again.status.success(),
        "existing files are not overwritten"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(out.join("server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private to their owner");
    }

    let file = |name: &str| out.join(name).display().to_string();
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap();
    let broker = start(
        vec![
            "--tls-cert-file".into(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-client-ca-file".into(),
            file("ca.pem"),
            "--tls-client-auth".into(),
            "required".into(),
        ],
        vec![],
    );
    let alice = tls_config(&read("ca.pem"))
        .identity(Identity::from_pem(read("client.pem"), read("client.key")));
    let mut c = connect_tls(&broker, alice.clone()).await.unwrap();
    list_topics(&mut c).await.unwrap();
    drop(broker);

    // With auth and `auth.mtls_identity = subject_cn` the client certificate is user `alice`.
    let admin = rapidmq_broker::auth::Token::generate().unwrap().to_string();
    let broker = start(
        vec![
            "--tls-cert-file".into(),
            file("server.pem"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-client-ca-file".into(),
            file("ca.pem"),
            "--tls-client-auth".into(),
            "required".into(),
            "--auth".into(),
        ],
        vec![
            ("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", admin.as_str()),
            ("RAPIDMQ_AUTH__MTLS_IDENTITY", "subject_cn"),
        ],
    );
    assert_eq!(
        whoami_over_tls(&broker, alice.clone(), None)
            .await
            .unwrap_err()
            .code(),
        tonic::Code::Unauthenticated,
        "the user must exist"
    );
    let mut request = tonic::Request::new(pb::CreateUserRequest {
        name: "alice".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {admin}").parse().unwrap());
    connect_tls(&broker, alice.clone())
        .await
        .unwrap()
        .admin
        .create_user(request)
        .await
        .unwrap();
    assert_eq!(
        whoami_over_tls(&broker, alice, None).await.unwrap(),
        "alice"
    );
}

/// Runs the `rapidmq` CLI with `args` (and `env`), returning (success, stdout, stderr).
fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = rapidmq_testkit::cli_command()
        .args(args)
        .env_remove("RAPIDMQ_SERVER")
        .env_remove("RAPIDMQ_TLS_CA")
        .env_remove("RAPIDMQ_TLS_CERT")
        .env_remove("RAPIDMQ_TLS_KEY")
        .env_remove("RAPIDMQ_TLS_SERVER_NAME")
        .env_remove("RAPIDMQ_TOKEN")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_talks_tls_with_ca_and_server_name_flags() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(files.args(), vec![]);
    let mut c = connect_tls(&broker, tls_config(&ca.pem)).await.unwrap();
    create_topic(&mut c, "over-tls", topic_config(1)).await;
    std::fs::write(files.path("ca.pem"), &ca.pem).unwrap();
    let ca_file = files.path("ca.pem").display().to_string();
    let server = format!("https://{}", broker.grpc_addr());

    // The certificate names 127.0.0.1, the address in --server.
    let (ok, stdout, stderr) = cli(
        &["--server", &server, "--tls-ca", &ca_file, "topic", "list"],
        &[],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("over-tls"), "{stdout}");

    // The same through the environment, verifying the certificate as `localhost`.
    let (ok, stdout, stderr) = cli(
        &["topic", "list"],
        &[
            ("RAPIDMQ_SERVER", &server),
            ("RAPIDMQ_TLS_CA", &ca_file),
            ("RAPIDMQ_TLS_SERVER_NAME", "localhost"),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("over-tls"), "{stdout}");

    // A name the certificate does not carry.
    let (ok, _, stderr) = cli(
        &[
            "--server",
            &server,
            "--tls-ca",
            &ca_file,
            "--tls-server-name",
            "elsewhere",
            "topic",
            "list",
        ],
        &[],
    );
    assert!(!ok);
    assert!(stderr.contains("TLS handshake"), "{stderr}");
    assert!(stderr.contains("not for this host name"), "{stderr}");

    // TLS flags with an http:// server are a mistake, not silently plaintext.
    let plain = format!("http://{}", broker.grpc_addr());
    let (ok, _, stderr) = cli(
        &["--server", &plain, "--tls-ca", &ca_file, "topic", "list"],
        &[],
    );
    assert!(!ok);
    assert!(stderr.contains("use https://"), "{stderr}");
}

/// The benchmark's path to a locked-down broker (ADR 0004 slice 6): `rapidmq bench` takes the
/// global `--tls-*` and `--token` options like every client command. A smoke run, bounded to a
/// few thousand messages; `make bench-security` is the measurement.
#[test]
fn bench_publishes_to_a_tls_and_auth_broker_and_reports_every_message() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    std::fs::write(files.path("ca.pem"), &ca.pem).unwrap();
    let ca_file = files.path("ca.pem").display().to_string();
    let admin = rapidmq_broker::auth::Token::generate().unwrap().to_string();
    let mut args = files.args();
    args.push("--auth".into());
    let broker = start(
        args,
        vec![("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", admin.as_str())],
    );
    let server = format!("https://{}", broker.grpc_addr());
    let bench = [
        "bench", "pub", "--count", "3000", "--batch", "500", "--json",
    ];
    let with = |extra: &[&str]| {
        let mut args = vec!["--server", server.as_str(), "--tls-ca", ca_file.as_str()];
        args.extend_from_slice(extra);
        args.extend_from_slice(&bench);
        cli(&args, &[])
    };

    let (ok, stdout, stderr) = with(&["--token", &admin]);
    assert!(ok, "{stderr}\n{}", broker.log());
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["count"], 3000, "{report}");
    let publish = &report["phases"][0];
    assert_eq!(publish["name"], "publish", "{report}");
    assert_eq!(publish["messages"], 3000, "{report}");
    assert_eq!(publish["latency"]["samples"], 3000, "{report}");
    assert!(publish["msgs_per_sec"].as_f64().unwrap() > 0.0, "{report}");

    // The same without the token is refused, not run anonymously.
    let (ok, _, stderr) = with(&[]);
    assert!(!ok);
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
}

#[tokio::test]
async fn the_cli_fails_clearly_on_a_wrong_ca_or_a_plaintext_broker() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(files.args(), vec![]);
    let stranger = Ca::new("another ca");
    std::fs::write(files.path("stranger.pem"), &stranger.pem).unwrap();
    let stranger_file = files.path("stranger.pem").display().to_string();
    let server = format!("https://{}", broker.grpc_addr());

    let (ok, _, stderr) = cli(
        &[
            "--server",
            &server,
            "--tls-ca",
            &stranger_file,
            "topic",
            "list",
        ],
        &[],
    );
    assert!(!ok, "a broker certificate from an unknown CA is refused");
    assert!(stderr.contains("TLS handshake"), "{stderr}");
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");

    // https:// against a plaintext broker.
    let plain = TestBroker::start();
    let server = format!("https://{}", plain.grpc_addr());
    let (ok, _, stderr) = cli(
        &[
            "--server",
            &server,
            "--tls-ca",
            &stranger_file,
            "topic",
            "list",
        ],
        &[],
    );
    assert!(!ok);
    assert!(stderr.contains("TLS"), "{stderr}");
}

#[tokio::test]
async fn the_cli_presents_a_client_certificate_to_a_broker_that_requires_one() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(files.mtls_args("required"), vec![]);
    let alice = ca.client("alice");
    std::fs::write(files.path("ca.pem"), &ca.pem).unwrap();
    std::fs::write(files.path("alice.pem"), &alice.cert_pem).unwrap();
    std::fs::write(files.path("alice.key"), &alice.key_pem).unwrap();
    let p = |name: &str| files.path(name).display().to_string();
    let server = format!("https://{}", broker.grpc_addr());

    let (ok, _, stderr) = cli(
        &[
            "--server",
            &server,
            "--tls-ca",
            &p("ca.pem"),
            "--tls-cert",
            &p("alice.pem"),
            "--tls-key",
            &p("alice.key"),
            "topic",
            "list",
        ],
        &[],
    );
    assert!(ok, "{stderr}");

    let (ok, _, stderr) = cli(
        &[
            "--server",
            &server,
            "--tls-ca",
            &p("ca.pem"),
            "topic",
            "list",
        ],
        &[],
    );
    assert!(!ok, "no client certificate");
    assert!(
        stderr.contains("TLS handshake") || stderr.contains("cannot reach"),
        "{stderr}"
    );
}

#[tokio::test]
async fn trace_reaches_an_https_listener_with_the_tls_flags() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let broker = start(files.mtls_args("required"), vec![]);
    let alice = ca.client("alice");
    std::fs::write(files.path("ca.pem"), &ca.pem).unwrap();
    std::fs::write(files.path("alice.pem"), &alice.cert_pem).unwrap();
    std::fs::write(files.path("alice.key"), &alice.key_pem).unwrap();
    let p = |name: &str| files.path(name).display().to_string();
    let (ca_file, cert, key) = (p("ca.pem"), p("alice.pem"), p("alice.key"));
    let tls = [
        "--tls-ca",
        ca_file.as_str(),
        "--tls-cert",
        cert.as_str(),
        "--tls-key",
        key.as_str(),
    ];
    let server = format!("https://{}", broker.grpc_addr());
    let run = |args: &[&str]| {
        let mut all = vec!["--server", server.as_str()];
        all.extend_from_slice(args);
        cli(&all, &[])
    };
    let (ok, _, stderr) = run(&[&tls[..], &["topic", "create", "traced"]].concat());
    assert!(ok, "{stderr}");
    let (ok, _, stderr) =
        run(&[&tls[..], &["publish", "traced", "hello", "--msg-id", "m-1"]].concat());
    assert!(ok, "{stderr}");

    let http = format!("https://{}", http_addr(&broker));
    let trace = [
        "trace",
        "--http",
        http.as_str(),
        "--msg-id",
        "m-1",
        "-o",
        "json",
    ];
    let (ok, stdout, stderr) = run(&[&tls[..], &trace[..]].concat());
    assert!(ok, "{stderr}");
    let events: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let events = events.as_array().expect("a JSON array of events");
    assert!(events.iter().any(|e| e["kind"] == "published"), "{stdout}");

    // Verified as `localhost` while connecting to 127.0.0.1.
    let named = [&tls[..], &["--tls-server-name", "localhost"], &trace[..]].concat();
    let (ok, stdout, stderr) = run(&named);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("published"), "{stdout}");

    // Without --tls-ca the system roots do not know the test CA.
    let (ok, _, stderr) = run(&[&tls[2..], &trace[..]].concat());
    assert!(!ok);
    assert!(stderr.contains("TLS_HANDSHAKE_FAILED"), "{stderr}");
    assert!(stderr.contains("not signed by a trusted CA"), "{stderr}");

    // Without a client certificate the broker refuses the connection.
    let (ok, _, stderr) = run(&[&tls[..2], &trace[..]].concat());
    assert!(!ok, "no client certificate: {stderr}");

    // TLS flags with an http:// listener are a mistake, not silently plaintext.
    let plain = format!("http://{}", http_addr(&broker));
    let (ok, _, stderr) =
        run(&[&tls[..2], &["trace", "--http", &plain, "--msg-id", "m-1"]].concat());
    assert!(!ok);
    assert!(stderr.contains("use https://"), "{stderr}");
}

/// `WhoAmI` over TLS with `tls` (and `token`, when given): the user, or the refusal.
async fn whoami_over_tls(
    broker: &TestBroker,
    tls: ClientTlsConfig,
    token: Option<&str>,
) -> Result<String, tonic::Status> {
    let channel = Channel::from_shared(format!("https://{}", broker.grpc_addr()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|err| tonic::Status::unavailable(format!("{err:?}")))?;
    let mut request = tonic::Request::new(pb::WhoAmIRequest {});
    if let Some(token) = token {
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    let me = rapidmq_proto::v1::auth_client::AuthClient::new(channel)
        .who_am_i(request)
        .await?
        .into_inner();
    Ok(me.user)
}

#[tokio::test]
async fn with_mtls_identity_a_client_certificate_names_an_existing_user_and_a_token_wins() {
    let ca = Ca::new("test ca");
    let files = Files::new(&ca, &ca.server(1));
    let admin = rapidmq_broker::auth::Token::generate().unwrap().to_string();
    let mut args = files.mtls_args("optional");
    args.push("--auth".into());
    let broker = start(
        args,
        vec![
            ("RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN", admin.as_str()),
            ("RAPIDMQ_AUTH__MTLS_IDENTITY", "subject_cn"),
        ],
    );
    let base = format!("https://{}", http_addr(&broker));
    let created = https(&ca.pem)
        .post(format!("{base}/v1/users"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);

    let with_cert = |leaf: &Leaf| {
        tls_config(&ca.pem).identity(Identity::from_pem(&leaf.cert_pem, &leaf.key_pem))
    };
    let alice = ca.client("alice");
    assert_eq!(
        whoami_over_tls(&broker, with_cert(&alice), None)
            .await
            .unwrap(),
        "alice"
    );
    assert_eq!(
        whoami_over_tls(&broker, with_cert(&alice), Some(&admin))
            .await
            .unwrap(),
        "admin",
        "a bearer token on the same request wins"
    );
    let refused = whoami_over_tls(&broker, with_cert(&ca.client("mallory")), None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    let anonymous = whoami_over_tls(&broker, tls_config(&ca.pem), None).await;
    assert_eq!(
        anonymous.map_err(|s| s.code()),
        Err(tonic::Code::Unauthenticated),
        "no certificate, no token: anonymous, refused"
    );

    // REST reads the same certificate.
    let identity =
        reqwest::Identity::from_pem(format!("{}{}", alice.cert_pem, alice.key_pem).as_bytes())
            .unwrap();
    let rest = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .identity(identity)
        .build()
        .unwrap();
    let me: serde_json::Value = rest
        .get(format!("{base}/v1/auth/whoami"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["user"], "alice", "{me}");
    assert_eq!(me["kind"], "user", "{me}");
}
