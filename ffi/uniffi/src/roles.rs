//! Roles and their bindings to users (docs/security.md): the records and the `NativeAdmin` calls
//! that manage them. Permissions are strings in the core's text form
//! (`allow publish,describe topic:orders.*`), parsed and printed by the core.

use rapidmq_core as core;
use rapidmq_core::roles::BindingScope as CoreScope;

use crate::admin::NativeAdmin;
use crate::error::Result;
use crate::runtime::on_runtime;

/// A role: built-in (`admin`, `producer`, `consumer`, `viewer`) or custom to the tenant.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoleInfo {
    /// The role name.
    pub name: String,
    /// Built-in roles cannot be changed or deleted.
    pub builtin: bool,
    /// Its permissions in their text form (`allow publish,describe topic:orders.*`).
    pub permissions: Vec<String>,
}

impl From<core::RoleInfo> for RoleInfo {
    fn from(r: core::RoleInfo) -> RoleInfo {
        RoleInfo {
            name: r.name,
            builtin: r.builtin,
            permissions: r.permissions.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Where a bound role applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum BindingScope {
    /// In the user's tenant.
    Tenant,
    /// Across the broker (`admin` bound here is a cluster admin).
    Cluster,
}

impl From<CoreScope> for BindingScope {
    fn from(s: CoreScope) -> BindingScope {
        match s {
            CoreScope::Tenant => BindingScope::Tenant,
            CoreScope::Cluster => BindingScope::Cluster,
        }
    }
}

impl From<BindingScope> for CoreScope {
    fn from(s: BindingScope) -> CoreScope {
        match s {
            BindingScope::Tenant => CoreScope::Tenant,
            BindingScope::Cluster => CoreScope::Cluster,
        }
    }
}

/// A role bound to a user.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RoleBinding {
    /// The user's tenant.
    pub tenant: String,
    /// The user.
    pub user: String,
    /// The role.
    pub role: String,
    /// Tenant or cluster.
    pub scope: BindingScope,
}

impl From<core::RoleBinding> for RoleBinding {
    fn from(b: core::RoleBinding) -> RoleBinding {
        RoleBinding {
            tenant: b.tenant,
            user: b.user,
            role: b.role,
            scope: b.scope.into(),
        }
    }
}

#[uniffi::export]
impl NativeAdmin {
    /// Creates a custom role from permissions in their text form.
    pub async fn create_role(&self, name: String, permissions: Vec<String>) -> Result<RoleInfo> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin.create_role(name, &permissions).await.map(Into::into)
        })
        .await
    }

    /// Deletes a custom role and its bindings.
    pub async fn delete_role(&self, name: String) -> Result<()> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move { admin.delete_role(name).await }).await
    }

    /// The built-in and custom roles of the caller's tenant, by name.
    pub async fn list_roles(&self) -> Result<Vec<RoleInfo>> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let roles = admin.list_roles().await?;
            Ok(roles.into_iter().map(Into::into).collect())
        })
        .await
    }

    /// Binds a role to a user in the tenant or across the broker; binding twice is not an error.
    pub async fn bind_role(
        &self,
        user: String,
        role: String,
        scope: BindingScope,
    ) -> Result<RoleBinding> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            admin
                .bind_role(user, role, scope.into())
                .await
                .map(Into::into)
        })
        .await
    }

    /// Removes a binding.
    pub async fn unbind_role(&self, user: String, role: String) -> Result<()> {
        let admin = self.core.clone();
        on_runtime(
            &self.runtime,
            async move { admin.unbind_role(user, role).await },
        )
        .await
    }

    /// The role bindings of the caller's tenant (of one user when set).
    pub async fn list_role_bindings(&self, user: Option<String>) -> Result<Vec<RoleBinding>> {
        let admin = self.core.clone();
        on_runtime(&self.runtime, async move {
            let bindings = admin.list_role_bindings(user).await?;
            Ok(bindings.into_iter().map(Into::into).collect())
        })
        .await
    }
}
