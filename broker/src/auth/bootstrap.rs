//! The first admin (docs/adr/0004-security.md §5). With auth on and no admin in the store, the
//! broker creates user `admin` in `default` from, in order: `RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN` (an
//! `rmq_` token, e.g. from `rapidmq token generate`, so its entropy is known),
//! `RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD`, or the files `auth.bootstrap_admin_token_file` and
//! `auth.bootstrap_admin_password_file`. With none of them it refuses to start: there is never
//! a default password.

use std::path::Path;

use super::Token;
use crate::config::AuthConfig;
use crate::error::{Error, Result};

/// The first admin's user name, in the `default` tenant.
pub const BOOTSTRAP_ADMIN: &str = "admin";

pub const TOKEN_ENV: &str = "RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN";
pub const PASSWORD_ENV: &str = "RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD";

/// The secret the first admin is created with.
#[derive(Clone)]
pub enum BootstrapSecret {
    Token(Token),
    Password(String),
}

impl BootstrapSecret {
    /// The secret from the environment or the configured files; `None` when none is set.
    pub fn from_env_and_config(config: &AuthConfig) -> Result<Option<BootstrapSecret>> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let token = match env(TOKEN_ENV) {
            Some(token) => Some((token, TOKEN_ENV.to_string())),
            None => read(&config.bootstrap_admin_token_file)?
                .map(|t| (t, "auth.bootstrap_admin_token_file".to_string())),
        };
        if let Some((token, source)) = token {
            let token = token.trim().parse::<Token>().map_err(|_| {
                Error::invalid(format!(
                    "{source} is not a RapidMQ token (rmq_<id>_<secret>); make one with `rapidmq token generate`"
                ))
            })?;
            return Ok(Some(BootstrapSecret::Token(token)));
        }
        let password = match env(PASSWORD_ENV) {
            Some(password) => Some(password),
            None => read(&config.bootstrap_admin_password_file)?,
        };
        Ok(password
            .map(|p| BootstrapSecret::Password(p.trim_end_matches(['\r', '\n']).to_string())))
    }

    /// The message of a broker that refuses to start without a way to create its admin.
    pub fn missing() -> Error {
        Error::invalid(format!(
            "authentication is enabled but no admin exists yet: set {TOKEN_ENV} (make one with `rapidmq token generate`) or {PASSWORD_ENV}, or auth.bootstrap_admin_token_file or auth.bootstrap_admin_password_file, to create user `{BOOTSTRAP_ADMIN}`"
        ))
    }

    /// Whether any bootstrap secret is set (a leftover one is ignored with a warning).
    pub fn is_set(config: &AuthConfig) -> bool {
        [TOKEN_ENV, PASSWORD_ENV]
            .iter()
            .any(|name| std::env::var_os(name).is_some())
            || !config.bootstrap_admin_token_file.as_os_str().is_empty()
            || !config.bootstrap_admin_password_file.as_os_str().is_empty()
    }
}

fn read(path: &Path) -> Result<Option<String>> {
    if path.as_os_str().is_empty() {
        return Ok(None);
    }
    std::fs::read_to_string(path)
        .map(|text| Some(text.trim().to_string()).filter(|t| !t.is_empty()))
        .map_err(|err| Error::invalid(format!("cannot read {}: {err}", path.display())))
}
