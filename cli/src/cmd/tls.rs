//! `rapidmq tls dev-certs`: a private CA with a server certificate and, optionally, a client
//! certificate, for trying TLS and mutual TLS on a development machine (docs/security.md).
//! Not for production: the CA's key is thrown away, and nothing is revocable.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

#[derive(Debug, clap::Subcommand)]
pub enum TlsCommand {
    /// Write a development CA, a server certificate and optionally a client certificate.
    #[command(after_help = "Examples:\n  \
        rapidmq tls dev-certs --out ./certs\n  \
        rapidmq tls dev-certs --out ./certs --hosts localhost,127.0.0.1,broker.internal --client alice\n  \
        rapidmq serve --tls-cert-file certs/server.pem --tls-key-file certs/server.key\n\n\
        Files: ca.pem (trust it in clients), server.pem + server.key, client.pem + client.key.\n\
        The CA's key is not kept: to add names, make a new set.")]
    DevCerts(DevCertsArgs),
}

#[derive(Debug, clap::Args)]
pub struct DevCertsArgs {
    /// Directory to write into (created if missing); existing files are not overwritten.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Names and IP addresses the server certificate is valid for.
    #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1,::1")]
    hosts: Vec<String>,
    /// Also write a client certificate with this common name (for mutual TLS).
    #[arg(long, value_name = "NAME")]
    client: Option<String>,
}

pub fn run(command: TlsCommand) -> anyhow::Result<()> {
    match command {
        TlsCommand::DevCerts(args) => dev_certs(&args),
    }
}

fn dev_certs(args: &DevCertsArgs) -> anyhow::Result<()> {
    let mut files = vec!["ca.pem", "server.pem", "server.key"];
    if args.client.is_some() {
        files.extend(["client.pem", "client.key"]);
    }
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    if let Some(existing) = files.iter().map(|f| args.out.join(f)).find(|p| p.exists()) {
        anyhow::bail!(
            "{} exists; choose another --out directory or remove the old files",
            existing.display()
        );
    }

    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "RapidMQ development CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = Issuer::new(ca, ca_key);

    let mut server = CertificateParams::new(args.hosts.clone())
        .context("--hosts: not valid certificate names")?;
    server
        .distinguished_name
        .push(DnType::CommonName, "RapidMQ development broker");
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_key = KeyPair::generate()?;
    let server_pem = server.signed_by(&server_key, &issuer)?.pem();

    write(&args.out, "ca.pem", &ca_pem, false)?;
    write(&args.out, "server.pem", &server_pem, false)?;
    write(&args.out, "server.key", &server_key.serialize_pem(), true)?;
    if let Some(name) = &args.client {
        let mut client = CertificateParams::new(Vec::<String>::new())?;
        client.distinguished_name.push(DnType::CommonName, name);
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_key = KeyPair::generate()?;
        let client_pem = client.signed_by(&client_key, &issuer)?.pem();
        write(&args.out, "client.pem", &client_pem, false)?;
        write(&args.out, "client.key", &client_key.serialize_pem(), true)?;
    }
    let mut out = crate::output::Stdout::new();
    for file in files {
        out.line(args.out.join(file).display().to_string())?;
    }
    out.flush()?;
    Ok(())
}

/// Writes a new file; keys are readable by their owner only.
fn write(dir: &Path, name: &str, contents: &str, secret: bool) -> anyhow::Result<()> {
    let path = dir.join(name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
        .open(&path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .with_context(|| format!("cannot write {}", path.display()))
}
