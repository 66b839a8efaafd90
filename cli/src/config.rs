//! The command line's own file, `$XDG_CONFIG_HOME/rapidmq/config.toml` (by default
//! `~/.config/rapidmq/config.toml`): named contexts, each the connection settings of one broker
//! (docs/adr/0004-security.md §12), and which one is current.
//!
//! ```toml
//! current = "prod"
//!
//! [contexts.prod]
//! server = "https://broker.example.com:7420"
//! http = "https://broker.example.com:7421"
//! ca = "/home/me/prod/ca.pem"
//! token_file = "/home/me/prod/token"
//! ```
//!
//! The file may hold tokens, so it is written atomically (a temp file renamed over it) with mode
//! 0600 and refused, as ssh refuses a private key, when its group or others have any access.
//! Passwords are never stored: a context names a `user`, and the password is prompted for or
//! read from `RAPIDMQ_PASSWORD`. `cmd/context.rs` edits the file; `main.rs` layers the selected
//! context under the flags and the environment (`cmd::ConnectionArgs::resolve`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::{Deserialize, Serialize};

/// Where the file lives, below the XDG config directory.
const RELATIVE_PATH: &str = "rapidmq/config.toml";

/// The whole file.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The context used when neither `--context` nor `RAPIDMQ_CONTEXT` names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One named context: every field is optional and yields to a flag or environment variable.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// The broker's gRPC URL (`http://` or `https://`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The broker's REST URL (`rapidmq trace`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<String>,
    /// CA certificates (PEM) to verify the broker with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<String>,
    /// Client certificate (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<String>,
    /// Private key (PEM) of `cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Name to verify the broker's certificate against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Tenant to act in, sent as `rapidmq-tenant` (cluster admins acting in another tenant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// An API or session token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// A file whose first line is the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<String>,
    /// A user to log in as (`alice` or `tenant/alice`), with a prompted password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// The credential a context names, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    Token(&'a str),
    TokenFile(&'a str),
    User(&'a str),
}

impl Context {
    /// Its credential; [`Context::check`] has made sure there is at most one.
    pub fn credential(&self) -> Option<Credential<'_>> {
        if let Some(token) = &self.token {
            Some(Credential::Token(token))
        } else if let Some(path) = &self.token_file {
            Some(Credential::TokenFile(path))
        } else {
            self.user.as_deref().map(Credential::User)
        }
    }

    /// Refuses what would only fail later: two kinds of credential, a certificate without its
    /// key, a URL that is not `http://` or `https://`.
    pub fn check(&self, name: &str) -> anyhow::Result<()> {
        let kinds: Vec<&str> = [
            ("token", self.token.is_some()),
            ("token_file", self.token_file.is_some()),
            ("user", self.user.is_some()),
        ]
        .into_iter()
        .filter_map(|(kind, set)| set.then_some(kind))
        .collect();
        if kinds.len() > 1 {
            bail!(
                "context `{name}` has more than one credential ({}): keep one of token, token_file or user",
                kinds.join(", ")
            );
        }
        if self.cert.is_some() != self.key.is_some() {
            bail!("context `{name}` needs both `cert` and `key` for mutual TLS, or neither");
        }
        if let Some(tenant) = &self.tenant {
            check_name(tenant).with_context(|| format!("context `{name}`: `tenant`"))?;
        }
        for (field, url) in [("server", &self.server), ("http", &self.http)] {
            if let Some(url) = url {
                broker_url(url).with_context(|| format!("context `{name}`: `{field}`"))?;
            }
        }
        Ok(())
    }
}

/// A broker URL as a context stores it: `host:port` becomes `http://host:port`; anything but
/// an `http://` or `https://` URL with a host is an error.
pub fn broker_url(url: &str) -> anyhow::Result<String> {
    let url = url.trim();
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let parsed =
        reqwest::Url::parse(&full).map_err(|err| anyhow::anyhow!("`{url}` is not a URL: {err}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!(
            "`{url}` is {}://: use http:// or https:// (host:port means http://)",
            parsed.scheme()
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        bail!("`{url}` has no host");
    }
    if parsed.path() != "/" || parsed.query().is_some() {
        bail!("`{url}` has a path: give only scheme://host:port");
    }
    Ok(full.trim_end_matches('/').to_string())
}

/// Context names are like tenant names (and tenants are checked with it): `[A-Za-z0-9._-]`, 1
/// to 64 characters.
pub fn check_name(name: &str) -> anyhow::Result<()> {
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !valid {
        bail!("`{name}` is not a valid name: use [A-Za-z0-9._-], 1 to 64 characters");
    }
    Ok(())
}

impl Config {
    /// The file's path: `$XDG_CONFIG_HOME/rapidmq/config.toml`, or below `~/.config`.
    pub fn path() -> anyhow::Result<PathBuf> {
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => match std::env::var_os("HOME").filter(|dir| !dir.is_empty()) {
                Some(home) => PathBuf::from(home).join(".config"),
                None => {
                    bail!("neither XDG_CONFIG_HOME nor HOME is set: cannot find the contexts file")
                }
            },
        };
        Ok(base.join(RELATIVE_PATH))
    }

    /// Reads the file at `path`; no file is an empty configuration.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot read `{}`", path.display()));
            }
        };
        check_private(path)?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("`{}` is not valid", path.display()))?;
        for (name, context) in &config.contexts {
            context
                .check(name)
                .with_context(|| format!("in `{}`", path.display()))?;
        }
        if let Some(current) = &config.current
            && !config.contexts.contains_key(current)
        {
            bail!(
                "`{}`: the current context `{current}` does not exist; `rapidmq context use` another",
                path.display()
            );
        }
        Ok(config)
    }

    /// Writes the file at `path` atomically with mode 0600, creating its directory (0700).
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let dir = path
            .parent()
            .with_context(|| format!("`{}` has no directory", path.display()))?;
        create_private_dir(dir)?;
        let text = toml::to_string_pretty(self).context("cannot write the contexts as TOML")?;
        let mut file = private_temp_file(dir)?;
        file.write_all(text.as_bytes())
            .and_then(|()| file.as_file().sync_all())
            .with_context(|| format!("cannot write to `{}`", dir.display()))?;
        file.persist(path)
            .map_err(|err| err.error)
            .with_context(|| format!("cannot replace `{}`", path.display()))?;
        Ok(())
    }

    /// The context named `name` (from `--context`/`RAPIDMQ_CONTEXT`) or else the current one,
    /// with its name; `None` when neither is set.
    pub fn select<'a>(
        &'a self,
        name: Option<&'a str>,
    ) -> anyhow::Result<Option<(&'a str, &'a Context)>> {
        match name.or(self.current.as_deref()) {
            None => Ok(None),
            Some(name) => Ok(Some((name, self.get(name)?))),
        }
    }

    /// The context named `name`, or an error that says how to list them.
    pub fn get(&self, name: &str) -> anyhow::Result<&Context> {
        self.contexts.get(name).with_context(|| {
            if self.contexts.is_empty() {
                format!("no context `{name}`: there are none yet (`rapidmq context add {name} --server …`)")
            } else {
                format!("no context `{name}`; `rapidmq context ls` lists them")
            }
        })
    }
}

/// Refuses a file that its group or others may access: it may hold tokens.
#[cfg(unix)]
fn check_private(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        bail!(
            "`{}` is accessible by others (mode {:04o}) and may hold tokens: run `chmod 600 {}`",
            path.display(),
            mode & 0o7777,
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create `{}`", dir.display()))
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create `{}`", dir.display()))
}

/// A temp file beside the config file (so the rename stays on one file system), mode 0600.
fn private_temp_file(dir: &Path) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".config.toml.").suffix(".tmp");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        builder.permissions(std::fs::Permissions::from_mode(0o600));
    }
    builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a file in `{}`", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_get_a_scheme_and_lose_a_trailing_slash() {
        assert_eq!(
            broker_url("127.0.0.1:7420").unwrap(),
            "http://127.0.0.1:7420"
        );
        assert_eq!(
            broker_url("https://broker.internal:7420/").unwrap(),
            "https://broker.internal:7420"
        );
        for bad in [
            "ftp://host:1",
            "http://",
            "http://host:7420/v1",
            "http://host:notaport",
        ] {
            assert!(broker_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_context_with_two_credentials_is_refused() {
        let context = Context {
            token: Some("t".into()),
            user: Some("alice".into()),
            ..Context::default()
        };
        let err = context.check("prod").unwrap_err().to_string();
        assert!(err.contains("token, user"), "{err}");
    }

    #[test]
    fn names_are_like_tenant_names() {
        check_name("prod-eu.1_a").unwrap();
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
