//! Auth changes as plain data: each is one `MetaCommand::Auth`, written in one fsynced batch by
//! `Engine::apply_auth` and applied to memory by [`super::Auth::apply`] from the command alone.
//! Everything random or clock-dependent (secrets' hashes, PHC strings, ids, expiries) is fixed
//! before the command is built, and cascades are listed explicitly, so replaying the same
//! command anywhere gives the same state.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::records::{
    BindingRecord, RoleRecord, TokenRecord, UserRecord, binding_key, role_key, token_key, user_key,
};
use crate::storage::{Cf, WriteBatch};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthCommand {
    /// Creates or replaces a user (a new password replaces the whole record), with tokens and
    /// bindings created in the same batch (the bootstrap admin's token and its `admin` role).
    /// `create`: the user must not exist yet. The proposer checks that before it builds the
    /// command; in a cluster the metadata group checks it again at apply, where a concurrent
    /// creation through another node (or the bootstrap admin made by every node) is refused.
    PutUser {
        user: UserRecord,
        create: bool,
        tokens: Vec<TokenRecord>,
        bindings: Vec<BindingRecord>,
    },
    /// Deletes a user, the tokens it owns and the roles bound to it (listed by the engine).
    DeleteUser {
        tenant: String,
        name: String,
        tokens: Vec<String>,
        /// Names of the roles bound to the user.
        bindings: Vec<String>,
    },
    PutToken(TokenRecord),
    /// Revocations, and the sweep of expired sessions.
    DeleteTokens {
        ids: Vec<String>,
    },
    /// Creates a custom role.
    PutRole(RoleRecord),
    /// Deletes a custom role and its bindings (the users it is bound to, listed by the engine).
    DeleteRole {
        tenant: String,
        name: String,
        bindings: Vec<String>,
    },
    /// Binds a role to a user, or changes the scope of a binding.
    PutBinding(BindingRecord),
    DeleteBinding {
        tenant: String,
        user: String,
        role: String,
    },
}

impl AuthCommand {
    pub fn write_to(&self, batch: &mut WriteBatch) {
        match self {
            AuthCommand::PutUser {
                user,
                tokens,
                bindings,
                ..
            } => {
                batch.put(Cf::Meta, user_key(&user.tenant, &user.name), json(user));
                for token in tokens {
                    batch.put(Cf::Meta, token_key(&token.id), json(token));
                }
                for binding in bindings {
                    put_binding(batch, binding);
                }
            }
            AuthCommand::DeleteUser {
                tenant,
                name,
                tokens,
                bindings,
            } => {
                batch.delete(Cf::Meta, user_key(tenant, name));
                for id in tokens {
                    batch.delete(Cf::Meta, token_key(id));
                }
                for role in bindings {
                    batch.delete(Cf::Meta, binding_key(tenant, name, role));
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
            AuthCommand::PutRole(role) => {
                batch.put(Cf::Meta, role_key(&role.tenant, &role.name), json(role));
            }
            AuthCommand::DeleteRole {
                tenant,
                name,
                bindings,
            } => {
                batch.delete(Cf::Meta, role_key(tenant, name));
                for user in bindings {
                    batch.delete(Cf::Meta, binding_key(tenant, user, name));
                }
            }
            AuthCommand::PutBinding(binding) => put_binding(batch, binding),
            AuthCommand::DeleteBinding { tenant, user, role } => {
                batch.delete(Cf::Meta, binding_key(tenant, user, role));
            }
        }
    }
}

fn put_binding(batch: &mut WriteBatch, binding: &BindingRecord) {
    batch.put(
        Cf::Meta,
        binding_key(&binding.tenant, &binding.user, &binding.role),
        json(binding),
    );
}

fn json<T: serde::Serialize>(record: &T) -> Bytes {
    // Records are plain structs of strings, numbers and enums: serialising them cannot fail.
    Bytes::from(serde_json::to_vec(record).expect("auth records serialise"))
}
