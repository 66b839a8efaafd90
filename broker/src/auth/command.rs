//! Auth changes as plain data: each is one `MetaCommand::Auth`, written in one fsynced batch by
//! `Engine::apply_auth` and applied to memory by [`super::Auth::apply`] from the command alone.
//! Everything random or clock-dependent (secrets' hashes, PHC strings, ids, expiries) is fixed
//! before the command is built, and cascades are listed explicitly, so replaying the same
//! command anywhere gives the same state.

use bytes::Bytes;

use super::records::{TokenRecord, UserRecord, token_key, user_key};
use crate::storage::{Cf, WriteBatch};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthCommand {
    /// Creates or replaces a user (a new password replaces the whole record), with tokens
    /// created in the same batch (the bootstrap admin's token).
    PutUser {
        user: UserRecord,
        tokens: Vec<TokenRecord>,
    },
    /// Deletes a user and the tokens it owns (listed by the engine).
    DeleteUser {
        tenant: String,
        name: String,
        tokens: Vec<String>,
    },
    PutToken(TokenRecord),
    /// Revocations, and the sweep of expired sessions.
    DeleteTokens {
        ids: Vec<String>,
    },
}

impl AuthCommand {
    pub fn write_to(&self, batch: &mut WriteBatch) {
        match self {
            AuthCommand::PutUser { user, tokens } => {
                batch.put(Cf::Meta, user_key(&user.tenant, &user.name), json(user));
                for token in tokens {
                    batch.put(Cf::Meta, token_key(&token.id), json(token));
                }
            }
            AuthCommand::DeleteUser {
                tenant,
                name,
                tokens,
            } => {
                batch.delete(Cf::Meta, user_key(tenant, name));
                for id in tokens {
                    batch.delete(Cf::Meta, token_key(id));
                }
            }
            AuthCommand::PutToken(token) => {
                batch.put(Cf::Meta, token_key(&token.id), json(token));
            }
            AuthCommand::DeleteTokens { ids } => {
                for id in ids {
                    batch.delete(Cf::Meta, token_key(id));
                }
            }
        }
    }
}

fn json<T: serde::Serialize>(record: &T) -> Bytes {
    // Records are plain structs of strings and numbers: serialising them cannot fail.
    Bytes::from(serde_json::to_vec(record).expect("auth records serialise"))
}
