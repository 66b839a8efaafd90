//! Loading the `[tls]` files into a `rustls::ServerConfig`, and swapping in a new one when they
//! change. In cluster mode the same certificate also secures node-to-node traffic: with
//! `cluster.ca_file` the reloader builds the cluster listener's config (a client certificate
//! chaining to that CA required) and the client config this node connects to its peers with.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::sync::watch;

use super::accept::Protocol;
use crate::config::{ClientAuth, TlsConfig};

/// Why the TLS files could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    #[error("tls.client_ca_file: {0}")]
    ClientVerifier(#[from] rustls::server::VerifierBuilderError),
    #[error("cluster.ca_file: {0}")]
    ClusterVerifier(rustls::server::VerifierBuilderError),
}

/// The file contents a config was built from; a poll compares them to decide whether to reload.
#[derive(PartialEq, Eq)]
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
    cluster_ca: Option<Vec<u8>>,
}

/// One config per listener: the client listeners' differ only in ALPN.
struct Configs {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
    /// With a cluster CA: the cluster listener's config and the one to connect to peers with.
    cluster: Option<(Arc<ServerConfig>, Arc<ClientConfig>)>,
}

/// The current TLS configuration of both listeners. A handshake takes the current one
/// ([`Reloader::server_config`]); a reload builds a whole new one and swaps the pointer, so
/// connections already open keep theirs.
pub struct Reloader {
    settings: TlsConfig,
    /// `cluster.ca_file` in cluster mode.
    cluster_ca: Option<PathBuf>,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Configs>>,
    /// The contents last tried, good or bad: a bad file is reported once, not at every poll.
    last_tried: Mutex<Files>,
}

impl Reloader {
    /// Loads the files named in `settings`; `None` when TLS is off.
    pub fn load(settings: &TlsConfig) -> Result<Option<Arc<Reloader>>, TlsError> {
        Reloader::load_with_cluster_ca(settings, None)
    }

    /// As [`Reloader::load`], and with `cluster_ca` (`cluster.ca_file`) the configs that
    /// secure node-to-node traffic too.
    pub fn load_with_cluster_ca(
        settings: &TlsConfig,
        cluster_ca: Option<&Path>,
    ) -> Result<Option<Arc<Reloader>>, TlsError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cluster_ca = cluster_ca.map(Path::to_owned);
        let files = read_files(settings, cluster_ca.as_deref())?;
        let configs = build(settings, cluster_ca.as_deref(), &provider, &files, None)?;
        Ok(Some(Arc::new(Reloader {
            settings: settings.clone(),
            cluster_ca,
            provider,
            current: RwLock::new(Arc::new(configs)),
            last_tried: Mutex::new(files),
        })))
    }

    /// The config a new connection on `protocol`'s listener is handshaken with.
    pub fn server_config(&self, protocol: Protocol) -> Arc<ServerConfig> {
        let current = self.current.read();
        match protocol {
            Protocol::Grpc => current.grpc.clone(),
            Protocol::Http => current.http.clone(),
        }
    }

    /// The cluster listener's config: this node's certificate, and a client certificate that
    /// chains to the cluster CA required. `None` when loaded without a cluster CA.
    pub fn cluster_server_config(&self) -> Option<Arc<ServerConfig>> {
        self.current
            .read()
            .cluster
            .as_ref()
            .map(|(server, _)| server.clone())
    }

    /// The config to connect to a peer's cluster listener with: this node's certificate as the
    /// client certificate, the peer's verified against the cluster CA. `None` when loaded
    /// without a cluster CA.
    pub fn cluster_client_config(&self) -> Option<Arc<ClientConfig>> {
        self.current
            .read()
            .cluster
            .as_ref()
            .map(|(_, client)| client.clone())
    }

    /// Re-reads the files and swaps in the new config (SIGHUP). On any error the old config
    /// stays, and the error is logged and returned.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.reload_inner(true)
    }

    /// Reloads only when the files' contents differ from those last tried (the poll).
    fn reload_if_changed(&self) -> Result<(), TlsError> {
        self.reload_inner(false)
    }

    fn reload_inner(&self, force: bool) -> Result<(), TlsError> {
        let result = read_files(&self.settings, self.cluster_ca.as_deref()).and_then(|files| {
            let mut last = self.last_tried.lock();
            if !force && *last == files {
                return Ok(false);
            }
            let built = build(
                &self.settings,
                self.cluster_ca.as_deref(),
                &self.provider,
                &files,
                Some(&self.current.read().grpc),
            );
            *last = files;
            let configs = built?;
            *self.current.write() = Arc::new(configs);
            Ok(true)
        });
        match result {
            Ok(true) => {
                tracing::info!(cert_file = %self.settings.cert_file.display(), "TLS certificate reloaded");
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(err) => {
                tracing::error!(cause = %err, "TLS reload failed; keeping the current certificate");
                Err(err)
            }
        }
    }

    /// Polls the files every `tls.reload_interval_ms` (0: never) until `stop` changes.
    pub fn spawn_poll(self: &Arc<Self>, mut stop: watch::Receiver<bool>) {
        let interval = self.settings.reload_interval_ms;
        if interval == 0 {
            return;
        }
        let reloader = self.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_millis(interval));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    _ = ticks.tick() => {
                        let _ = reloader.reload_if_changed();
                    }
                    _ = stop.changed() => return,
                }
            }
        });
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn read_files(settings: &TlsConfig, cluster_ca: Option<&Path>) -> Result<Files, TlsError> {
    let ca = &settings.client_ca_file;
    Ok(Files {
        cluster_ca: cluster_ca.map(read).transpose()?,
        cert: read(&settings.cert_file)?,
        key: read(&settings.key_file)?,
        client_ca: if ca.as_os_str().is_empty() {
            None
        } else {
            Some(read(ca)?)
        },
    })
}

fn pem_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| pem_error(path, err))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no PEM certificate found"));
    }
    Ok(certs)
}

/// Builds both listeners' configs from `files`. The key must match the leaf certificate
/// (`CertifiedKey::from_der` checks it), so a certificate rotated before its key is refused.
/// `previous` lends its session cache, so resumption survives a reload.
fn build(
    settings: &TlsConfig,
    cluster_ca: Option<&Path>,
    provider: &Arc<CryptoProvider>,
    files: &Files,
    previous: Option<&Arc<ServerConfig>>,
) -> Result<Configs, TlsError> {
    let chain = certificates(&settings.cert_file, &files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&files.key)
        .map_err(|err| pem_error(&settings.key_file, err))?;
    let certified = Arc::new(CertifiedKey::from_der(chain, key, provider)?);
    let cluster = match (cluster_ca, &files.cluster_ca) {
        (Some(path), Some(pem)) => Some(build_cluster(path, pem, provider, &certified)?),
        _ => None,
    };

    let verifier: Arc<dyn ClientCertVerifier> = match &files.client_ca {
        None => WebPkiClientVerifier::no_client_auth(),
        Some(pem) => {
            let mut roots = RootCertStore::empty();
            for cert in certificates(&settings.client_ca_file, pem)? {
                roots.add(cert)?;
            }
            let builder =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            match settings.client_auth {
                ClientAuth::None => WebPkiClientVerifier::no_client_auth(),
                ClientAuth::Optional => builder.allow_unauthenticated().build()?,
                ClientAuth::Required => builder.build()?,
            }
        }
    };

    let mut config = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    if let Some(previous) = previous {
        config.session_storage = previous.session_storage.clone();
    }
    let mut grpc = config.clone();
    grpc.alpn_protocols = vec![b"h2".to_vec()];
    let mut http = config;
    http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Configs {
        grpc: Arc::new(grpc),
        http: Arc::new(http),
        cluster,
    })
}

/// Both ends of node-to-node TLS: each node presents `certified` as a server and as a client,
/// and trusts only certificates chaining to the cluster CA (`pem`, read from `path`). HTTP/2
/// only, as the cluster listener serves gRPC.
fn build_cluster(
    path: &Path,
    pem: &[u8],
    provider: &Arc<CryptoProvider>,
    certified: &Arc<CertifiedKey>,
) -> Result<(Arc<ServerConfig>, Arc<ClientConfig>), TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, pem)? {
        roots.add(cert)?;
    }
    let roots = Arc::new(roots);
    let clients = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
        .build()
        .map_err(TlsError::ClusterVerifier)?;
    let mut server = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(clients)
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
    server.alpn_protocols = vec![b"h2".to_vec()];
    let servers = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(TlsError::ClusterVerifier)?;
    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_webpki_verifier(servers)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified.clone())));
    client.alpn_protocols = vec![b"h2".to_vec()];
    Ok((Arc::new(server), Arc::new(client)))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Files {
        dir: tempfile::TempDir,
        settings: TlsConfig,
    }

    /// A self-signed certificate for localhost and its key, as PEM.
    fn self_signed() -> (String, String) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        (made.cert.pem(), made.signing_key.serialize_pem())
    }

    fn files() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let settings = TlsConfig {
            cert_file: dir.path().join("cert.pem"),
            key_file: dir.path().join("key.pem"),
            reload_interval_ms: 0,
            ..TlsConfig::default()
        };
        let files = Files { dir, settings };
        files.write(self_signed());
        files
    }

    impl Files {
        fn write(&self, (cert, key): (String, String)) {
            std::fs::write(&self.settings.cert_file, cert).unwrap();
            std::fs::write(&self.settings.key_file, key).unwrap();
        }
    }

    #[test]
    fn tls_off_loads_nothing_and_missing_files_fail_at_start() {
        assert!(Reloader::load(&TlsConfig::default()).unwrap().is_none());
        let files = files();
        let mut settings = files.settings.clone();
        settings.key_file = files.dir.path().join("missing.pem");
        let err = Reloader::load(&settings)
            .err()
            .expect("a missing key fails");
        assert!(err.to_string().contains("missing.pem"), "{err}");
    }

    #[test]
    fn bad_new_files_keep_the_current_config() {
        let files = files();
        let reloader = Reloader::load(&files.settings).unwrap().unwrap();
        let before = reloader.server_config(Protocol::Grpc);

        std::fs::write(&files.settings.cert_file, "not a certificate").unwrap();
        assert!(reloader.reload().is_err());
        assert!(Arc::ptr_eq(
            &before,
            &reloader.server_config(Protocol::Grpc)
        ));

        // A certificate rotated before its key: the old key does not match the new leaf.
        let (cert, _) = self_signed();
        std::fs::write(&files.settings.cert_file, cert).unwrap();
        let err = reloader.reload().expect_err("mismatched key is refused");
        assert!(Arc::ptr_eq(
            &before,
            &reloader.server_config(Protocol::Grpc)
        ));
        assert!(err.to_string().contains("key"), "{err}");
    }

    #[test]
    fn changed_files_are_loaded_and_unchanged_ones_are_not() {
        let files = files();
        let reloader = Reloader::load(&files.settings).unwrap().unwrap();
        let before = reloader.server_config(Protocol::Http);
        reloader.reload_if_changed().unwrap();
        assert!(Arc::ptr_eq(
            &before,
            &reloader.server_config(Protocol::Http)
        ));

        files.write(self_signed());
        reloader.reload_if_changed().unwrap();
        let after = reloader.server_config(Protocol::Http);
        assert!(!Arc::ptr_eq(&before, &after));
        assert_eq!(after.alpn_protocols, [b"h2".to_vec(), b"http/1.1".to_vec()]);
        assert_eq!(
            reloader.server_config(Protocol::Grpc).alpn_protocols,
            [b"h2".to_vec()]
        );
    }

    #[test]
    fn a_cluster_ca_adds_the_node_to_node_configs_and_reloads_with_them() {
        let files = files();
        let plain = Reloader::load(&files.settings).unwrap().unwrap();
        assert!(plain.cluster_server_config().is_none());
        assert!(plain.cluster_client_config().is_none());

        let ca = files.dir.path().join("cluster-ca.pem");
        let missing = Reloader::load_with_cluster_ca(&files.settings, Some(&ca))
            .err()
            .expect("a missing cluster CA fails at start");
        assert!(missing.to_string().contains("cluster-ca.pem"), "{missing}");

        std::fs::write(&ca, self_signed().0).unwrap();
        let reloader = Reloader::load_with_cluster_ca(&files.settings, Some(&ca))
            .unwrap()
            .unwrap();
        let server = reloader.cluster_server_config().expect("cluster listener");
        let client = reloader.cluster_client_config().expect("peer connections");
        assert_eq!(server.alpn_protocols, [b"h2".to_vec()]);
        assert_eq!(client.alpn_protocols, [b"h2".to_vec()]);
        assert!(client.client_auth_cert_resolver.has_certs());

        std::fs::write(&ca, self_signed().0).unwrap();
        reloader.reload_if_changed().unwrap();
        let reloaded = reloader.cluster_server_config().unwrap();
        assert!(!Arc::ptr_eq(&server, &reloaded));
    }
}
