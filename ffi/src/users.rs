//! The caller, users and API tokens of a broker with authentication on (docs/security.md):
//! `rapidmq_admin_whoami`, user and token management. Results are freed with their `_free`
//! function; a token's secret is only in `RapidmqCreatedToken`.

use rapidmq_core as core;
use zeroize::Zeroizing;

use crate::admin::{admin_call, optional, text, texts};
use crate::arena::{Arena, Owned};
use crate::buffer::{RapidmqSlice, RapidmqStr};
use crate::cancel::RapidmqCancel;
use crate::client::RapidmqClient;
use crate::error::{RapidmqError, RapidmqStatus, guard, guard_or, put};

/// The caller as the broker sees it; free with `rapidmq_identity_free`.
#[repr(C)]
pub struct RapidmqIdentity {
    /// The caller's tenant.
    pub tenant: RapidmqSlice,
    /// The user; empty when anonymous (a broker without authentication).
    pub user: RapidmqSlice,
}

/// A user of the caller's tenant.
#[repr(C)]
pub struct RapidmqUserInfo {
    /// The user's tenant.
    pub tenant: RapidmqSlice,
    /// The user name.
    pub name: RapidmqSlice,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    /// When the user was created, ms since the Unix epoch.
    pub created_at_ms: u64,
}

/// Users returned by `rapidmq_admin_list_users`; free with `rapidmq_user_list_free`.
#[repr(C)]
pub struct RapidmqUserList {
    /// The users, by name.
    pub items: *const RapidmqUserInfo,
    /// Number of users.
    pub len: usize,
}

/// A token without its secret.
#[repr(C)]
pub struct RapidmqTokenInfo {
    /// The public id (the part after `rmq_`).
    pub id: RapidmqSlice,
    /// The owner's tenant.
    pub tenant: RapidmqSlice,
    /// The user the token acts as.
    pub user: RapidmqSlice,
    /// `api` (created by an admin) or `session` (from a login).
    pub kind: RapidmqSlice,
    /// What it is for.
    pub description: RapidmqSlice,
    /// When it was created, ms since the Unix epoch.
    pub created_at_ms: u64,
    /// Whether it expires (at `expires_at_ms`).
    pub has_expiry: bool,
    /// When it expires, ms since the Unix epoch; 0 when `has_expiry` is false.
    pub expires_at_ms: u64,
}

/// Tokens returned by `rapidmq_admin_list_tokens`; free with `rapidmq_token_list_free`.
#[repr(C)]
pub struct RapidmqTokenList {
    /// The tokens.
    pub items: *const RapidmqTokenInfo,
    /// Number of tokens.
    pub len: usize,
}

/// A new API token: the full token (`rmq_<id>_<secret>`), shown only here, and its
/// description; free with `rapidmq_created_token_free`.
#[repr(C)]
pub struct RapidmqCreatedToken {
    /// The token in full.
    pub token: RapidmqSlice,
    /// The token without its secret.
    pub info: RapidmqTokenInfo,
}

fn user_info(arena: &mut Arena, u: core::UserInfo) -> RapidmqUserInfo {
    RapidmqUserInfo {
        tenant: arena.bytes(u.tenant),
        name: arena.bytes(u.name),
        has_password: u.has_password,
        created_at_ms: u.created_at_ms,
    }
}

fn token_info(arena: &mut Arena, t: core::TokenInfo) -> RapidmqTokenInfo {
    RapidmqTokenInfo {
        id: arena.bytes(t.id),
        tenant: arena.bytes(t.tenant),
        user: arena.bytes(t.user),
        kind: arena.bytes(t.kind),
        description: arena.bytes(t.description),
        created_at_ms: t.created_at_ms,
        has_expiry: t.expires_at_ms.is_some(),
        expires_at_ms: t.expires_at_ms.unwrap_or(0),
    }
}

/// Who the caller is; free with `rapidmq_identity_free`.
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_whoami(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqIdentity,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let (tenant, user) = admin_call(client, cancel, |a| async move { a.whoami().await })?;
        let mut arena = Arena::default();
        let view = RapidmqIdentity {
            tenant: arena.bytes(tenant),
            user: arena.bytes(user),
        };
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Creates a user in the caller's tenant, with `password` or (empty) for API tokens only; free
/// the result with `rapidmq_user_info_free`. Errors: `USER_ALREADY_EXISTS`, `INVALID_NAME`.
///
/// # Safety
/// `client` is live; strings are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_create_user(
    client: *const RapidmqClient,
    name: RapidmqStr,
    password: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqUserInfo,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = text(name, "name")?;
        let mut password = unsafe { password.read_secret("password") }?;
        let password = (!password.is_empty()).then(|| std::mem::take(&mut *password));
        let user = admin_call(client, cancel, |a| async move {
            a.create_user(name, password).await
        })?;
        let mut arena = Arena::default();
        let view = user_info(&mut arena, user);
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// Deletes a user and revokes its tokens. Errors: `USER_NOT_FOUND`.
///
/// # Safety
/// `client` is live; `name` is readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_delete_user(
    client: *const RapidmqClient,
    name: RapidmqStr,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = text(name, "name")?;
        admin_call(client, cancel, |a| async move { a.delete_user(name).await })
    })
}

/// The users of the caller's tenant, by name; free with `rapidmq_user_list_free`.
///
/// # Safety
/// `client` is live; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_users(
    client: *const RapidmqClient,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqUserList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let users = admin_call(client, cancel, |a| async move { a.list_users().await })?;
        let mut arena = Arena::default();
        let items: Vec<_> = users
            .into_iter()
            .map(|u| user_info(&mut arena, u))
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqUserList { items, len }, arena),
        )
    })
}

/// Sets a user's password. Errors: `USER_NOT_FOUND`, `INVALID_ARGUMENT` (empty).
///
/// # Safety
/// `client` is live; strings are readable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_set_password(
    client: *const RapidmqClient,
    name: RapidmqStr,
    password: RapidmqStr,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let name = text(name, "name")?;
        let password = std::mem::take(&mut *unsafe { password.read_secret("password") }?);
        admin_call(client, cancel, |a| async move {
            a.set_password(name, password).await
        })
    })
}

/// Creates an API token for `user` (empty: the caller), expiring after `ttl_ms` (0: never);
/// free the result with `rapidmq_created_token_free`. Errors: `USER_NOT_FOUND`.
///
/// # Safety
/// `client` is live; strings are readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_create_token(
    client: *const RapidmqClient,
    user: RapidmqStr,
    description: RapidmqStr,
    ttl_ms: u64,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqCreatedToken,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let user = optional(user, "user")?;
        let description = text(description, "description")?;
        let ttl = (ttl_ms > 0).then(|| std::time::Duration::from_millis(ttl_ms));
        let created = admin_call(client, cancel, |a| async move {
            a.create_token(user, description, ttl).await
        })?;
        let mut arena = Arena::default();
        let view = RapidmqCreatedToken {
            // Wiped when the caller frees the result.
            token: arena.bytes(Zeroizing::new(created.token)),
            info: token_info(&mut arena, created.info),
        };
        put(out, "out", Owned::into_raw(view, arena))
    })
}

/// The tokens (API and session) of the caller's tenant, or of `user` (empty: all), without
/// secrets; free with `rapidmq_token_list_free`.
///
/// # Safety
/// `client` is live; `user` is readable; `out` is writable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_list_tokens(
    client: *const RapidmqClient,
    user: RapidmqStr,
    cancel: *const RapidmqCancel,
    out: *mut *mut RapidmqTokenList,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let user = optional(user, "user")?;
        let tokens = admin_call(client, cancel, |a| async move { a.list_tokens(user).await })?;
        let mut arena = Arena::default();
        let items: Vec<_> = tokens
            .into_iter()
            .map(|t| token_info(&mut arena, t))
            .collect();
        let (items, len) = arena.array(items);
        put(
            out,
            "out",
            Owned::into_raw(RapidmqTokenList { items, len }, arena),
        )
    })
}

/// Revokes the `len` tokens (API or session) whose ids `ids` points at, at once. Errors:
/// `TOKEN_NOT_FOUND`.
///
/// # Safety
/// `client` is live; `ids` points at `len` readable strings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_admin_revoke_tokens(
    client: *const RapidmqClient,
    ids: *const RapidmqStr,
    len: usize,
    cancel: *const RapidmqCancel,
    err: *mut RapidmqError,
) -> RapidmqStatus {
    guard(err, || {
        let ids = texts(ids, len, "ids")?;
        admin_call(
            client,
            cancel,
            |a| async move { a.revoke_tokens(ids).await },
        )
    })
}

/// Frees an identity. NULL is ignored.
///
/// # Safety
/// `identity` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_identity_free(identity: *mut RapidmqIdentity) {
    guard_or((), || unsafe { Owned::free(identity) })
}

/// Frees a user description. NULL is ignored.
///
/// # Safety
/// `info` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_user_info_free(info: *mut RapidmqUserInfo) {
    guard_or((), || unsafe { Owned::free(info) })
}

/// Frees a user list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_user_list_free(list: *mut RapidmqUserList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// Frees a token list. NULL is ignored.
///
/// # Safety
/// `list` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_token_list_free(list: *mut RapidmqTokenList) {
    guard_or((), || unsafe { Owned::free(list) })
}

/// Frees a new token. NULL is ignored.
///
/// # Safety
/// `token` is NULL or was returned by this library and not freed already.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn rapidmq_created_token_free(token: *mut RapidmqCreatedToken) {
    guard_or((), || unsafe { Owned::free(token) })
}
