//! Loading the `[tls]` files into a `rustls::ServerConfig`, and swapping in a new one when they
//! change.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rustls::RootCertStore;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
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
}

/// The file contents a config was built from; a poll compares them to decide whether to reload.
#[derive(PartialEq, Eq)]
struct Files {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// One config per listener: they differ only in ALPN.
struct Configs {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
}

/// The current TLS configuration of both listeners. A handshake takes the current one
/// ([`Reloader::server_config`]); a reload builds a whole new one and swaps the pointer, so
/// connections already open keep theirs.
pub struct Reloader {
    settings: TlsConfig,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Configs>>,
    /// The contents last tried, good or bad: a bad file is reported once, not at every poll.
    last_tried: Mutex<Files>,
}

impl Reloader {
    /// Loads the files named in `settings`; `None` when TLS is off.
    pub fn load(settings: &TlsConfig) -> Result<Option<Arc<Reloader>>, TlsError> {
        if !settings.enabled() {
            return Ok(None);
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = read_files(settings)?;
        let configs = build(settings, &provider, &files, None)?;
        Ok(Some(Arc::new(Reloader {
            settings: settings.clone(),
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
        let result = read_files(&self.settings).and_then(|files| {
            let mut last = self.last_tried.lock();
            if !force && *last == files {
                return Ok(false);
            }
            let built = build(
                &self.settings,
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

fn read_files(settings: &TlsConfig) -> Result<Files, TlsError> {
    let ca = &settings.client_ca_file;
    Ok(Files {
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
    provider: &Arc<CryptoProvider>,
    files: &Files,
    previous: Option<&Arc<ServerConfig>>,
) -> Result<Configs, TlsError> {
    let chain = certificates(&settings.cert_file, &files.cert)?;
    let key = PrivateKeyDer::from_pem_slice(&files.key)
        .map_err(|err| pem_error(&settings.key_file, err))?;
    let certified = CertifiedKey::from_der(chain, key, provider)?;

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
    })
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
}
