//! Roles and their bindings to users, as Python classes. Permissions are strings in their
//! one-line text form (`allow publish,describe topic:orders.*`), as the core parses and shows
//! them, so Python mirrors none of their structure.

use pyo3::prelude::*;
use rapidmq_core as core;

/// A role of the caller's tenant: built-in (admin, producer, consumer, viewer) or custom.
#[pyclass(module = "rapidmq", name = "RoleInfo", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct RoleInfo {
    /// The role name.
    name: String,
    /// Whether it is built in (cannot be changed or deleted).
    builtin: bool,
    /// Its permissions in their text form.
    permissions: Vec<String>,
}

impl From<core::RoleInfo> for RoleInfo {
    fn from(r: core::RoleInfo) -> Self {
        RoleInfo {
            name: r.name,
            builtin: r.builtin,
            permissions: r.permissions.iter().map(ToString::to_string).collect(),
        }
    }
}

#[pymethods]
impl RoleInfo {
    fn __repr__(&self) -> String {
        let permissions: Vec<String> = self.permissions.iter().map(|p| format!("'{p}'")).collect();
        format!(
            "RoleInfo(name='{}', builtin={}, permissions=[{}])",
            self.name,
            if self.builtin { "True" } else { "False" },
            permissions.join(", ")
        )
    }
}

/// A role bound to a user.
#[pyclass(module = "rapidmq", name = "RoleBinding", frozen, get_all)]
#[derive(Debug, Clone)]
pub(crate) struct RoleBinding {
    /// The user's tenant.
    tenant: String,
    /// The user.
    user: String,
    /// The role.
    role: String,
    /// `"tenant"` (in the user's tenant) or `"cluster"` (across the broker).
    scope: String,
}

impl From<core::RoleBinding> for RoleBinding {
    fn from(b: core::RoleBinding) -> Self {
        RoleBinding {
            tenant: b.tenant,
            user: b.user,
            role: b.role,
            scope: b.scope.as_str().to_string(),
        }
    }
}

#[pymethods]
impl RoleBinding {
    fn __repr__(&self) -> String {
        format!(
            "RoleBinding(tenant='{}', user='{}', role='{}', scope='{}')",
            self.tenant, self.user, self.role, self.scope
        )
    }
}
