//! Roles and bindings: the engine side of authorization (`crate::auth::roles`,
//! docs/security.md). Every change is an [`AuthCommand`] with its audit record through
//! `Engine::apply_auth_audited`, under `meta_lock`, with its cascades listed.
//!
//! All of it needs `Admin` on the tenant, checked first; a binding at cluster scope (creating,
//! changing or removing one) needs `Admin` on the cluster too. A user may list its own
//! bindings.

use rapidmq_proto::ErrorCode;

use super::Engine;
use super::users::user_not_found;
use crate::audit::Audit;
use crate::auth::roles::{self, BUILTIN_ROLES};
use crate::auth::{
    Action, AuthCommand, BindingRecord, BindingScope, Permission, Resource, RoleRecord,
};
use crate::error::{Error, Result, check_name};
use crate::principal::{Principal, PrincipalKind};

/// A role as listed: built-in or custom, with its permissions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub builtin: bool,
    pub permissions: Vec<Permission>,
}

impl Engine {
    /// Creates a custom role in the caller's tenant. Built-in names are taken
    /// (`ROLE_ALREADY_EXISTS`).
    pub async fn create_role(
        &self,
        principal: &Principal,
        name: &str,
        permissions: Vec<Permission>,
    ) -> Result<RoleInfo> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        check_name("role", name)?;
        if permissions.is_empty() {
            return Err(Error::invalid(format!(
                "role `{name}` has no permissions: give it at least one"
            )));
        }
        let tenant = principal.tenant().to_string();
        let _guard = self.meta_lock.lock().await;
        if roles::builtin(name).is_some() || self.auth.acl().role(&tenant, name).is_some() {
            return Err(Error::new(
                ErrorCode::RoleAlreadyExists,
                format!("role `{name}` already exists"),
            ));
        }
        let role = RoleRecord {
            tenant,
            name: name.to_string(),
            permissions,
            created_at_ms: self.auth.now_ms(),
        };
        let info = RoleInfo {
            name: role.name.clone(),
            builtin: false,
            permissions: role.permissions.clone(),
        };
        let audit = Audit::new(
            principal,
            "role.create",
            format!("role:{}/{name}", role.tenant),
        )
        .detail(serde_json::to_string(&info.permissions).unwrap_or_default());
        self.apply_auth_audited(AuthCommand::PutRole(role), audit)
            .await?;
        tracing::info!(role = name, "role created");
        Ok(info)
    }

    /// Deletes a custom role and every binding of it. Built-in roles cannot be deleted.
    pub async fn delete_role(&self, principal: &Principal, name: &str) -> Result<()> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        if roles::builtin(name).is_some() {
            return Err(Error::invalid(format!(
                "role `{name}` is built in: it cannot be deleted"
            )));
        }
        let tenant = principal.tenant().to_string();
        let _guard = self.meta_lock.lock().await;
        let acl = self.auth.acl();
        if acl.role(&tenant, name).is_none() {
            return Err(role_not_found(name));
        }
        let bindings: Vec<BindingRecord> = acl
            .bindings(&tenant, None)
            .filter(|b| b.role == name)
            .collect();
        if bindings.iter().any(|b| b.scope == BindingScope::Cluster) {
            self.auth
                .authorize(principal, Action::Admin, Resource::Cluster)?;
        }
        let count = bindings.len();
        let audit = Audit::new(principal, "role.delete", format!("role:{tenant}/{name}"))
            .detail(format!("{count} bindings removed"));
        let command = AuthCommand::DeleteRole {
            tenant,
            name: name.to_string(),
            bindings: bindings.into_iter().map(|b| b.user).collect(),
        };
        self.apply_auth_audited(command, audit).await?;
        tracing::info!(role = name, bindings = count, "role deleted");
        Ok(())
    }

    /// The built-in roles, then the tenant's custom roles by name.
    pub fn list_roles(&self, principal: &Principal) -> Result<Vec<RoleInfo>> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        let builtins = BUILTIN_ROLES.iter().map(|&name| RoleInfo {
            name: name.to_string(),
            builtin: true,
            permissions: roles::builtin(name).unwrap_or_default().to_vec(),
        });
        let acl = self.auth.acl();
        let custom = acl.roles(principal.tenant().as_str()).map(|role| RoleInfo {
            name: role.name.clone(),
            builtin: false,
            permissions: role.permissions.clone(),
        });
        Ok(builtins.chain(custom).collect())
    }

    /// Binds `role` to `user` of the caller's tenant, at `scope`. Binding again at the same
    /// scope changes nothing; at another scope, it moves the binding.
    pub async fn bind_role(
        &self,
        principal: &Principal,
        user: &str,
        role: &str,
        scope: BindingScope,
    ) -> Result<BindingRecord> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        if scope == BindingScope::Cluster {
            self.auth
                .authorize(principal, Action::Admin, Resource::Cluster)?;
        }
        let tenant = principal.tenant().to_string();
        let _guard = self.meta_lock.lock().await;
        if self.auth.user(&tenant, user).is_none() {
            return Err(user_not_found(user));
        }
        let acl = self.auth.acl();
        if roles::builtin(role).is_none() && acl.role(&tenant, role).is_none() {
            return Err(role_not_found(role));
        }
        let binding = BindingRecord {
            tenant,
            user: user.to_string(),
            role: role.to_string(),
            scope,
        };
        match acl.binding(&binding.tenant, user, role) {
            Some(existing) if existing == scope => return Ok(binding),
            Some(BindingScope::Cluster) => {
                self.auth
                    .authorize(principal, Action::Admin, Resource::Cluster)?;
            }
            _ => {}
        }
        let audit = Audit::new(
            principal,
            "role.bind",
            format!("user:{}/{user}", binding.tenant),
        )
        .detail(format!("role {role} at {} scope", scope.as_str()));
        self.apply_auth_audited(AuthCommand::PutBinding(binding.clone()), audit)
            .await?;
        tracing::info!(user, role, scope = scope.as_str(), "role bound");
        Ok(binding)
    }

    /// Removes the binding of `role` to `user`: `ROLE_NOT_FOUND` when there is none,
    /// `USER_NOT_FOUND` when there is no such user.
    pub async fn unbind_role(&self, principal: &Principal, user: &str, role: &str) -> Result<()> {
        self.auth
            .authorize(principal, Action::Admin, Resource::Tenant)?;
        let tenant = principal.tenant().to_string();
        let _guard = self.meta_lock.lock().await;
        if self.auth.user(&tenant, user).is_none() {
            return Err(user_not_found(user));
        }
        let Some(scope) = self.auth.acl().binding(&tenant, user, role) else {
            return Err(Error::new(
                ErrorCode::RoleNotFound,
                format!("role `{role}` is not bound to user `{user}`"),
            ));
        };
        if scope == BindingScope::Cluster {
            self.auth
                .authorize(principal, Action::Admin, Resource::Cluster)?;
        }
        let audit = Audit::new(principal, "role.unbind", format!("user:{tenant}/{user}"))
            .detail(format!("role {role}"));
        let command = AuthCommand::DeleteBinding {
            tenant,
            user: user.to_string(),
            role: role.to_string(),
        };
        self.apply_auth_audited(command, audit).await?;
        tracing::info!(user, role, "role unbound");
        Ok(())
    }

    /// The bindings of the caller's tenant, by user then role (of one user when `user` is set;
    /// a user may list its own).
    pub fn list_role_bindings(
        &self,
        principal: &Principal,
        user: Option<&str>,
    ) -> Result<Vec<BindingRecord>> {
        let own = principal.kind() == PrincipalKind::User
            && user.is_some_and(|u| principal.name() == Some(u));
        if own {
            self.auth.authenticated(principal)?;
        } else {
            self.auth
                .authorize(principal, Action::Admin, Resource::Tenant)?;
        }
        let tenant = principal.tenant().as_str();
        if let Some(name) = user
            && self.auth.user(tenant, name).is_none()
        {
            return Err(user_not_found(name));
        }
        Ok(self.auth.acl().bindings(tenant, user).collect())
    }
}

fn role_not_found(name: &str) -> Error {
    Error::new(
        ErrorCode::RoleNotFound,
        format!("role `{name}` does not exist"),
    )
}
