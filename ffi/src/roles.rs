//! Roles and their bindings to users (docs/security.md): `rapidmq_admin_create_role` and the
//! rest of role administration. Permissions cross the ABI in their one-line text form
//! (`allow publish,describe topic:orders.*`), parsed and printed by the core. Results are freed
//! with their `_free` function.

use rapidmq_core as core;
use rapidmq_core::roles::BindingScope;

use crate::admin::{admin_call, optional, text, texts};
use crate::arena::{Arena, Owned};
use crate::buffer::{RapidmqSlice, RapidmqStr};
use crate::cancel::RapidmqCancel;
use crate::client::RapidmqClient;
use crate::error::{FfiError, FfiResult, RapidmqError, RapidmqStatus, guard, guard_or, put};

/// Where a bound role applies (`rapidmq_admin_bind_role`, `RapidmqRoleBinding.scope`).
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum RapidmqBindingScope {
    /// In the user's tenant.
    RAPIDMQ_BINDING_SCOPE_TENANT = 0,
    /// Across the broker (`admin` bound here is a cluster admin).
    RAPIDMQ_BINDING_SCOPE_CLUSTER = 1,
}

fn scope_out(s: BindingScope) -> u32 {
    match s {
        BindingScope::Tenant => RapidmqBindingScope::RAPIDMQ_BINDING_SCOPE_TENANT as u32,
        BindingScope::Cluster => RapidmqBindingScope::RAPIDMQ_BINDING_SCOPE_CLUSTER as u32,
    }
}

fn scope_in(s: u32) -> FfiResult<BindingScope> {
    match s {
        0 => Ok(BindingScope::Tenant),
        1 => Ok(BindingScope::Cluster),
        other => Err(FfiError::invalid(format!("unknown binding scope {other}"))),
    }
}

/// A role: built-in (`admin`, `producer`, `consumer`, `viewer`) or custom to the tenant.
#[repr(C)]
pub struct RapidmqRoleInfo {
    /// The role name.
    pub name: RapidmqSlice,
    /// Built-in roles cannot be changed or deleted.
    pub builtin: bool,
    /// Its permissions in their text form (`allow publish,describe topic:orders.*`).
    pub permissions: *const RapidmqSlice,
    /// Number of permissions.
    pub permissions_len: usize,
}

/// Roles returned by `rapidmq_admin_list_roles`; free with `rapidmq_role_list_free`.
#[repr(C)]
pub struct RapidmqRoleList {
    /// The roles, by name.
    pub items: *const RapidmqRoleInfo,
    /// Number of roles.
    pub len: usize,
}

/// A role bound to a user.
#[repr(C)]
pub struct RapidmqRoleBinding {
    /// The user's tenant.
    pub tenant: RapidmqSlice,
    /// The user.
    pub user: RapidmqSlice,
    /// The role.
    pub role: RapidmqSlice,
    /// A `RapidmqBindingScope`.
    pub scope: u32,
}

/// Bindings returned by `rapidmq_admin_list_role_bindings`; free with
/// `rapidmq_role_binding_list_free`.
#[repr(C)]
pub struct RapidmqRoleBindingList {
    /// The bindings.
    pub items: *const RapidmqRoleBinding,
    /// Number of bindings.
    pub len: usize,
}

fn role_info(arena: &mut Arena, r: core::RoleInfo) -> RapidmqRoleInfo {
    let permissions: Vec<_> = r
        .permissions
        .iter()
        .map(|p| arena.bytes(p.to_string()))
        .collect();
    let (permissions, permissions_len) = arena.array(permissions);
    RapidmqRoleInfo {
        name: arena.bytes(r.name),
        builtin: r.builtin,
        permissions,
        permissions_len,
    }
}

fn role_binding(arena: &mut Arena, b: core::RoleBinding) -> RapidmqRoleBinding {
    RapidmqRoleBinding {
        tenant: arena.bytes(b.tenant),
        user: arena.bytes(b.user),
        role: arena.bytes(b.role),
        scope: scope_out(b.scope),
    }
}

/// Creates a custom role in the caller's tenant with the `len` permissions at `permissions`,
/// each in its text form (`allow publish,describe topic:orders.*`); free the result with
/// `rapidmq_role_info_free`. Errors: `ROLE_ALREADY_EXISTS` (built-in names are taken),
/// `INVALID_NAME`, `INVALID_ARGUMENT` (a permission that does not parse).
///
/// # Safety
/// `client` is live; `name` is readable; `permissions` points at `len` readable strings; `out`
/// is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_create_role(
    client: *const RapidmqClient,
    name: RapidmqStr,
    permissions: *const RapidmqStr,
    len: usize,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqRoleInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = text(name, "name")?;
        let permissions = texts(permissions, len, "permissions")?;
        let role = admin_call(client, cancel, |a| async move {
            a.create_role(name, &permissions).await
        })?;
        let mut arena = Arena::default();
        let view = role_info(&mut arena, role);
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Deletes a custom role and its bindings. Errors: `ROLE_NOT_FOUND`, `INVALID_ARGUMENT` (a
/// built-in role).
///
/// # Safety
/// `client` is live; `name` is readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_delete_role(
    client: *const RapidmqClient,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = text(name, "name")?;
        admin_call(client, cancel, |a| async move { a.delete_role(name).await })
    })
}

/// The built-in and custom roles of the caller's tenant, by name; free with
/// `rapidmq_role_list_free`.
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_roles(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqRoleList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let roles = admin_call(client, cancel, |a| async move { a.list_roles().await })?;
        let mut arena = Arena::default();
        let items: Vec<_> = roles
            .into_iter()
            .map(|r| role_info(&mut arena, r))
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqRoleList { items, len }, arena),
        )
    })
}

/// Binds `role` to `user` at `scope` (a `RapidmqBindingScope`; cluster scope needs a cluster
/// admin); binding twice is not an error. Free the result with `rapidmq_role_binding_free`.
/// Errors: `USER_NOT_FOUND`, `ROLE_NOT_FOUND`.
///
/// # Safety
/// `client` is live; strings are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_bind_role(
    client: *const RapidmqClient,
    user: RapidmqStr,
    role: RapidmqStr,
    scope: u32,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqRoleBinding,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (user, role) = (text(user, "user")?, text(role, "role")?);
        let scope = scope_in(scope)?;
        let binding = admin_call(client, cancel, |a| async move {
            a.bind_role(user, role, scope).await
        })?;
        let mut arena = Arena::default();
        let view = role_binding(&mut arena, binding);
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Removes the binding of `role` to `user`. Errors: `ROLE_NOT_FOUND` (no such binding),
/// `USER_NOT_FOUND`.
///
/// # Safety
/// `client` is live; strings are readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_unbind_role(
    client: *const RapidmqClient,
    user: RapidmqStr,
    role: RapidmqStr,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (user, role) = (text(user, "user")?, text(role, "role")?);
        admin_call(client, cancel, |a| async move {
            a.unbind_role(user, role).await
        })
    })
}

/// The role bindings of the caller's tenant, or of `user` (empty: all); free with
/// `rapidmq_role_binding_list_free`.
///
/// # Safety
/// `client` is live; `user` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_role_bindings(
    client: *const RapidmqClient,
    user: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqRoleBindingList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let user = optional(user, "user")?;
        let bindings = admin_call(client, cancel, |a| async move {
            a.list_role_bindings(user).await
        })?;
        let mut arena = Arena::default();
        let items: Vec<_> = bindings
            .into_iter()
            .map(|b| role_binding(&mut arena, b))
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqRoleBindingList { items, len }, arena),
        )
    })
}

/// Frees a role. NULL is ignored.
///
/// # Safety
/// `info` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_role_info_free(info: *mut RapidmqRoleInfo) {
    guard_or((), || unsafe { Owned::free(info) })
}

/// Frees a role list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_role_list_free(list: *mut RapidmqRoleList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// Frees a role binding. NULL is ignored.
///
/// # Safety
/// `binding` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_role_binding_free(binding: *mut RapidmqRoleBinding) {
    guard_or((), || unsafe { Owned::free(binding) })
}

/// Frees a role binding list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_role_binding_list_free(list: *mut RapidmqRoleBindingList) {
    guard_or((), || unsafe { Owned::free(list) })
}
