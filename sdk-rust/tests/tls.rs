//! C17 `tls` (docs/sdk-conformance.md) against a real broker: a custom CA, a wrong CA, an
//! `https://` endpoint at a plaintext broker, and mutual TLS. Certificates come from
//! `rapidmq tls dev-certs`, as in the other SDKs' suites.

mod common;

use std::path::PathBuf;

use common::guarded;
use rapidmq::{Client, ErrorCode, TlsConfig};
use rapidmq_testkit::{BrokerOptions, TestBroker};

/// A fresh CA with a server certificate (and a client certificate for `alice`) in a temporary
/// directory.
struct Certs {
    dir: tempfile::TempDir,
}

impl Certs {
    fn new() -> Certs {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(rapidmq_testkit::broker_binary())
            .args(["tls", "dev-certs", "--client", "alice", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn file(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }

    fn broker(&self, client_auth: Option<&str>) -> TestBroker {
        let mut args = vec![
            "--tls-cert-file".to_string(),
            self.file("server.pem"),
            "--tls-key-file".to_string(),
            self.file("server.key"),
        ];
        if let Some(mode) = client_auth {
            args.extend([
                "--tls-client-ca-file".to_string(),
                self.file("ca.pem"),
                "--tls-client-auth".to_string(),
                mode.to_string(),
            ]);
        }
        tokio::task::block_in_place(|| {
            TestBroker::start_with(BrokerOptions {
                args,
                ..BrokerOptions::default()
            })
        })
    }
}

fn https(broker: &TestBroker) -> String {
    format!("https://{}", broker.grpc_addr())
}

async fn connect(endpoint: String, tls: TlsConfig) -> rapidmq::Result<Client> {
    guarded(
        "connect",
        Client::builder().endpoint(endpoint).tls(tls).connect(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c17_a_custom_ca_given_as_a_file_or_as_pem_is_trusted() {
    let certs = Certs::new();
    let broker = certs.broker(None);
    let client = connect(
        https(&broker),
        TlsConfig {
            ca_cert_path: Some(certs.file("ca.pem")),
            ..TlsConfig::default()
        },
    )
    .await
    .expect("TLS with the broker's CA");
    client
        .admin()
        .create_topic("secure", rapidmq::TopicConfig::default())
        .await
        .unwrap();
    let producer = client.producer("secure").build().await.unwrap();
    let receipt = producer
        .send(rapidmq::Message::new("over TLS"))
        .await
        .unwrap();
    receipt.await.expect("stored over TLS");

    let client = connect(
        https(&broker),
        TlsConfig {
            ca_cert_pem: Some(certs.read("ca.pem")),
            server_name: Some("localhost".into()),
            ..TlsConfig::default()
        },
    )
    .await
    .expect("TLS with the CA as PEM, verified as localhost");
    let topics = client.admin().list_topics().await.unwrap();
    assert!(topics.iter().any(|t| t.name == "secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c17_a_wrong_ca_fails_clearly_and_is_not_retriable() {
    let certs = Certs::new();
    let other = Certs::new();
    let broker = certs.broker(None);
    let err = connect(
        https(&broker),
        TlsConfig {
            ca_cert_path: Some(other.file("ca.pem")),
            ..TlsConfig::default()
        },
    )
    .await
    .expect_err("a broker certificate from another CA");
    assert_eq!(err.code(), ErrorCode::TlsHandshakeFailed, "{err}");
    assert!(!err.is_retriable());
    assert!(err.to_string().contains("TLS handshake"), "{err}");
    assert!(err.to_string().contains("trusted CA"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c17_https_at_a_plaintext_broker_fails_clearly() {
    let certs = Certs::new();
    let broker = tokio::task::block_in_place(TestBroker::start);
    let err = connect(
        https(&broker),
        TlsConfig {
            ca_cert_path: Some(certs.file("ca.pem")),
            ..TlsConfig::default()
        },
    )
    .await
    .expect_err("a plaintext broker does not speak TLS");
    assert_eq!(err.code(), ErrorCode::TlsHandshakeFailed, "{err}");
    assert!(!err.is_retriable());
    assert!(err.to_string().contains("did not answer with TLS"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c17_mutual_tls_presents_the_client_certificate() {
    let certs = Certs::new();
    let broker = certs.broker(Some("required"));
    let client = connect(
        https(&broker),
        TlsConfig {
            ca_cert_path: Some(certs.file("ca.pem")),
            client_cert_path: Some(certs.file("client.pem")),
            client_key_pem: Some(certs.read("client.key")),
            ..TlsConfig::default()
        },
    )
    .await
    .expect("mutual TLS");
    client.admin().list_topics().await.unwrap();

    // Without a certificate the broker refuses the handshake (TLS 1.3 reports it with the
    // first request, so the connect probe or the first call fails).
    let refused = async {
        let client = connect(
            https(&broker),
            TlsConfig {
                ca_cert_path: Some(certs.file("ca.pem")),
                ..TlsConfig::default()
            },
        )
        .await?;
        client.admin().list_topics().await
    }
    .await;
    assert!(refused.is_err(), "no client certificate");
}
