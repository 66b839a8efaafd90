//! Node-to-node mutual TLS with real processes (docs/security.md "Node-to-node traffic"): three
//! `rapidmq serve` nodes with TLS on and a shared cluster CA form the cluster, while the
//! cluster port turns away a client without a certificate, one with a certificate from another
//! CA, and a plaintext one. The configuration rules are checked with `serve --check-config`.
//!
//! Certificates are made here with rcgen. Every wait polls `GET /v1/cluster` over HTTPS,
//! bounded by `PATIENCE`; no fixed sleep.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::{agreed_leader, free_ports};
use common::{BrokerOptions, TestBroker};
use rapidmq_broker::cluster::identity;
use rapidmq_broker::cluster::proto::RaftBatch;
use rapidmq_broker::cluster::proto::cluster_client::ClusterClient;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use serde_json::Value;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

/// A test certificate authority.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A node certificate and its key, as PEM.
struct Leaf {
    cert: String,
    key: String,
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

    /// A node certificate: the node's host as an IP SAN (and `localhost`), good as a server
    /// and as a client certificate, as each node is both to its peers.
    fn node(&self, name: &str) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }
}

/// One node's TLS files, and the cluster CA, in a directory of its own.
struct NodeFiles {
    dir: tempfile::TempDir,
}

impl NodeFiles {
    fn new(ca: &Ca, leaf: &Leaf) -> NodeFiles {
        let files = NodeFiles {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(files.path("cert.pem"), &leaf.cert).unwrap();
        std::fs::write(files.path("key.pem"), &leaf.key).unwrap();
        std::fs::write(files.path("cluster-ca.pem"), &ca.pem).unwrap();
        files
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn tls_args(&self) -> Vec<String> {
        vec![
            "--tls-cert-file".into(),
            self.path("cert.pem"),
            "--tls-key-file".into(),
            self.path("key.pem"),
        ]
    }
}

fn https(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .build()
        .unwrap()
}

/// One batch of no messages on a `Cluster.RaftStream` to the cluster listener at `addr`, over
/// TLS with `tls` or in plaintext without: `Ok` only when the listener answered it.
async fn cluster_rpc(
    addr: &str,
    tls: Option<ClientTlsConfig>,
    cluster_id: Option<&str>,
) -> Result<(), String> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = Channel::from_shared(format!("{scheme}://{addr}"))
        .unwrap()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5));
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(|err| format!("{err:?}"))?;
    }
    let channel = endpoint.connect().await.map_err(|err| format!("{err:?}"))?;
    let batch = RaftBatch {
        // postcard's encoding of an empty list of messages: its length, 0.
        payload: vec![0u8].into(),
    };
    let mut request = tonic::Request::new(futures::stream::iter([batch]));
    if let Some(id) = cluster_id {
        request
            .metadata_mut()
            .insert(identity::HEADER, id.parse().unwrap());
    }
    let mut answers = ClusterClient::new(channel)
        .raft_stream(request)
        .await
        .map_err(|status| format!("{status:?}"))?
        .into_inner();
    match answers.message().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err("the stream ended without an answer".into()),
        Err(status) => Err(format!("{status:?}")),
    }
}

/// A TLS client of the cluster port that trusts the cluster CA, with `identity` as its client
/// certificate (or none).
fn cluster_client_tls(ca: &Ca, identity: Option<&Leaf>) -> ClientTlsConfig {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&ca.pem))
        .domain_name("127.0.0.1");
    match identity {
        Some(leaf) => tls.identity(Identity::from_pem(&leaf.cert, &leaf.key)),
        None => tls,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_tls_nodes_form_a_cluster_and_the_cluster_port_refuses_strangers() {
    let ca = Ca::new("cluster ca");
    let ports = free_ports(3);
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let peers = addrs
        .iter()
        .enumerate()
        .map(|(i, addr)| format!("{}={addr}", i + 1))
        .collect::<Vec<_>>()
        .join(",");
    let files: Vec<NodeFiles> = (1..=3)
        .map(|id| NodeFiles::new(&ca, &ca.node(&format!("node {id}"))))
        .collect();
    let nodes: Vec<TestBroker> = (1..=3u64)
        .zip(&files)
        .map(|(id, files)| {
            let mut args = files.tls_args();
            args.extend([
                "--cluster-ca-file".into(),
                files.path("cluster-ca.pem"),
                "--node-id".into(),
                id.to_string(),
                "--peers".into(),
                peers.clone(),
            ]);
            TestBroker::start_with(BrokerOptions {
                args,
                ..BrokerOptions::default()
            })
        })
        .collect();

    let all: BTreeSet<u64> = [1, 2, 3].into();
    let leader = agreed_leader(
        &https(&ca.pem),
        "https",
        &nodes.iter().collect::<Vec<_>>(),
        &all,
        None,
    )
    .await
    .0;
    println!("three TLS nodes agree: leader {leader}");
    for node in &nodes {
        assert!(!node.log().contains("cluster listener is unauthenticated"));
    }

    // `rapidmq cluster status` over TLS lists every node, registered.
    let node = &nodes[0];
    let output = rapidmq_testkit::cli_command()
        .args([
            "--server",
            &format!("https://{}", node.grpc_addr()),
            "--tls-ca",
            &files[0].path("cluster-ca.pem"),
            "cluster",
            "status",
            "--output",
            "json",
        ])
        .output()
        .expect("run rapidmq cluster status");
    assert!(
        output.status.success(),
        "rapidmq cluster status: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["leader_id"].as_u64(), Some(leader));
    let nodes_json = json["nodes"].as_array().expect("nodes");
    assert_eq!(nodes_json.len(), 3, "{json}");
    assert!(
        nodes_json
            .iter()
            .all(|n| !n["grpc_addr"].as_str().unwrap_or_default().is_empty()),
        "{json}"
    );

    // The cluster port of a node: a client with a node certificate of the cluster CA is
    // served (so the refusals below are about the certificate, not the harness) ...
    let port = &addrs[0];
    let member = ca.node("a fourth node");
    let founded: std::collections::BTreeMap<u64, String> = (1..=3u64).zip(addrs.clone()).collect();
    let cluster_id = identity::founding_id(&founded);
    cluster_rpc(
        port,
        Some(cluster_client_tls(&ca, Some(&member))),
        Some(&cluster_id),
    )
    .await
    .expect("a certificate of the cluster CA is accepted");

    // ... though not for a request of another cluster, or of none (docs/clustering.md
    // "Cluster identity") ...
    let err = cluster_rpc(
        port,
        Some(cluster_client_tls(&ca, Some(&member))),
        Some("0123456789abcdef0123456789abcdef"),
    )
    .await
    .expect_err("another cluster: refused");
    assert!(err.contains("FailedPrecondition"), "{err}");
    let err = cluster_rpc(port, Some(cluster_client_tls(&ca, Some(&member))), None)
        .await
        .expect_err("no cluster: refused");
    assert!(err.contains("FailedPrecondition"), "{err}");

    // ... one without a client certificate is not ...
    let err = cluster_rpc(port, Some(cluster_client_tls(&ca, None)), Some(&cluster_id))
        .await
        .expect_err("no client certificate: refused");
    println!("no client certificate: {err}");

    // ... nor one whose certificate comes from another CA ...
    let stranger = Ca::new("another ca").node("stranger");
    let err = cluster_rpc(
        port,
        Some(cluster_client_tls(&ca, Some(&stranger))),
        Some(&cluster_id),
    )
    .await
    .expect_err("a certificate of another CA: refused");
    println!("another CA: {err}");

    // ... nor a plaintext one.
    let err = cluster_rpc(port, None, Some(&cluster_id))
        .await
        .expect_err("plaintext: refused");
    println!("plaintext: {err}");

    // The cluster still stands after the intruders.
    assert_eq!(
        agreed_leader(
            &https(&ca.pem),
            "https",
            &nodes.iter().collect::<Vec<_>>(),
            &all,
            None
        )
        .await
        .0,
        leader
    );
}

/// `serve --check-config` with `extra` flags: its stderr, the run expected to fail.
fn refused(extra: &[&str]) -> String {
    let output = rapidmq_testkit::cli_command()
        .arg("serve")
        .args(extra)
        .arg("--check-config")
        .output()
        .expect("run rapidmq");
    assert!(!output.status.success(), "{extra:?} was accepted");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn accepted(extra: &[&str]) {
    let output = rapidmq_testkit::cli_command()
        .arg("serve")
        .args(extra)
        .arg("--check-config")
        .output()
        .expect("run rapidmq");
    assert!(
        output.status.success(),
        "{extra:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn cluster_security_settings_are_checked_at_start() {
    let ca = Ca::new("cluster ca");
    let files = NodeFiles::new(&ca, &ca.node("node 1"));
    let tls = files.tls_args();
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let ca_file = files.path("cluster-ca.pem");
    let cluster = [
        "--node-id",
        "1",
        "--peers",
        "1=127.0.0.1:7001,2=127.0.0.1:7002",
    ];
    let remote = [
        "--node-id",
        "1",
        "--peers",
        "1=10.0.0.1:7001,2=10.0.0.2:7001",
    ];

    // TLS on: a cluster CA is needed, and named in the error.
    let stderr = refused(&[&tls[..], &cluster[..]].concat());
    assert!(stderr.contains("cluster.ca_file"), "{stderr}");
    assert!(stderr.contains("--cluster-ca-file"), "{stderr}");
    accepted(&[&tls[..], &cluster[..], &["--cluster-ca-file", &ca_file]].concat());
    accepted(&[&tls[..], &remote[..], &["--cluster-ca-file", &ca_file]].concat());

    // TLS off: loopback only, unless explicitly insecure.
    accepted(&cluster);
    let stderr = refused(&remote);
    assert!(stderr.contains("10.0.0.1:7001"), "{stderr}");
    assert!(stderr.contains("--cluster-insecure"), "{stderr}");
    accepted(&[&remote[..], &["--cluster-insecure"]].concat());
    let stderr = refused(&[&cluster[..], &["--cluster-ca-file", &ca_file]].concat());
    assert!(stderr.contains("tls.cert_file"), "{stderr}");
}
