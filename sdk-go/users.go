package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import (
	"context"
	"fmt"
	"time"
)

// Identity is the caller as the broker sees it.
type Identity struct {
	// Tenant is the caller's tenant.
	Tenant string
	// User is the user; empty when anonymous (a broker without authentication).
	User string
}

// UserInfo describes a user of the caller's tenant.
type UserInfo struct {
	Tenant, Name string
	// HasPassword says whether the user can log in with a password.
	HasPassword bool
	CreatedAt   time.Time
}

// TokenInfo describes a token (API or session) without its secret.
type TokenInfo struct {
	// ID is the public id (the part after rmq_).
	ID     string
	Tenant string
	// User is the user the token acts as.
	User string
	// Kind is "api" (created by an admin) or "session" (from a login).
	Kind        string
	Description string
	CreatedAt   time.Time
	// ExpiresAt is the zero time for a token that does not expire.
	ExpiresAt time.Time
}

// CreatedToken is a new API token: the full token (rmq_<id>_<secret>), shown only here, and
// its description. It prints without the token.
type CreatedToken struct {
	Token string
	Info  TokenInfo
}

// String prints the token as *** and its description.
func (t CreatedToken) String() string {
	return fmt.Sprintf("CreatedToken{Token:*** Info:%+v}", t.Info)
}

// GoString is [CreatedToken.String], so %#v does not print the secret either.
func (t CreatedToken) GoString() string { return t.String() }

func msTime(v C.uint64_t) time.Time {
	return time.UnixMilli(int64(v))
}

func userFromC(u *C.RapidmqUserInfo) UserInfo {
	return UserInfo{goString(u.tenant), goString(u.name), bool(u.has_password), msTime(u.created_at_ms)}
}

func tokenFromC(t *C.RapidmqTokenInfo) TokenInfo {
	info := TokenInfo{
		ID: goString(t.id), Tenant: goString(t.tenant), User: goString(t.user),
		Kind: goString(t.kind), Description: goString(t.description), CreatedAt: msTime(t.created_at_ms),
	}
	if t.has_expiry {
		info.ExpiresAt = msTime(t.expires_at_ms)
	}
	return info
}

// WhoAmI is the caller as the broker sees it.
func (a *Admin) WhoAmI(ctx context.Context) (Identity, error) {
	var id *C.RapidmqIdentity
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_whoami(h, cancel, &id, cerr)
	})
	if err != nil {
		return Identity{}, err
	}
	defer C.rapidmq_identity_free(id)
	return Identity{goString(id.tenant), goString(id.user)}, nil
}

// CreateUser creates a user in the caller's tenant, with a password, or (empty) for API tokens
// only. Errors: [ErrUserAlreadyExists], [ErrInvalidName].
func (a *Admin) CreateUser(ctx context.Context, name, password string) (UserInfo, error) {
	var p pins
	defer p.Unpin()
	n, pw := p.str(name), p.str(password)
	var u *C.RapidmqUserInfo
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_create_user(h, n, pw, cancel, &u, cerr)
	})
	if err != nil {
		return UserInfo{}, err
	}
	defer C.rapidmq_user_info_free(u)
	return userFromC(u), nil
}

// DeleteUser deletes a user and revokes its tokens. Errors: [ErrUserNotFound].
func (a *Admin) DeleteUser(ctx context.Context, name string) error {
	var p pins
	defer p.Unpin()
	n := p.str(name)
	return a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_delete_user(h, n, cancel, cerr)
	})
}

// ListUsers lists the users of the caller's tenant, by name.
func (a *Admin) ListUsers(ctx context.Context) ([]UserInfo, error) {
	var list *C.RapidmqUserList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_users(h, cancel, &list, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_user_list_free(list)
	out := []UserInfo{}
	for i := range items(list.items, list.len) {
		out = append(out, userFromC(&items(list.items, list.len)[i]))
	}
	return out, nil
}

// SetPassword sets a user's password. Errors: [ErrUserNotFound], [ErrInvalidArgument] (empty).
func (a *Admin) SetPassword(ctx context.Context, name, password string) error {
	var p pins
	defer p.Unpin()
	n, pw := p.str(name), p.str(password)
	return a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_set_password(h, n, pw, cancel, cerr)
	})
}

// CreateToken creates an API token for user (empty: the caller), expiring after ttl (0:
// never). The full token is in the answer only. Errors: [ErrUserNotFound].
func (a *Admin) CreateToken(ctx context.Context, user, description string, ttl time.Duration) (CreatedToken, error) {
	var p pins
	defer p.Unpin()
	u, d := p.str(user), p.str(description)
	var t *C.RapidmqCreatedToken
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_create_token(h, u, d, C.uint64_t(ttl.Milliseconds()), cancel, &t, cerr)
	})
	if err != nil {
		return CreatedToken{}, err
	}
	defer C.rapidmq_created_token_free(t)
	return CreatedToken{Token: goString(t.token), Info: tokenFromC(&t.info)}, nil
}

// ListTokens lists the tokens (API and session) of the caller's tenant, or of user (empty:
// all), without secrets.
func (a *Admin) ListTokens(ctx context.Context, user string) ([]TokenInfo, error) {
	var p pins
	defer p.Unpin()
	u := p.str(user)
	var list *C.RapidmqTokenList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_tokens(h, u, cancel, &list, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_token_list_free(list)
	out := []TokenInfo{}
	for i := range items(list.items, list.len) {
		out = append(out, tokenFromC(&items(list.items, list.len)[i]))
	}
	return out, nil
}

// RevokeToken revokes one token (API or session) by id, at once. Errors: [ErrTokenNotFound].
func (a *Admin) RevokeToken(ctx context.Context, id string) error {
	return a.RevokeTokens(ctx, id)
}

// RevokeTokens revokes tokens by id, at once. Errors: [ErrTokenNotFound].
func (a *Admin) RevokeTokens(ctx context.Context, ids ...string) error {
	var p pins
	defer p.Unpin()
	list, n := p.strs(ids)
	return a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_revoke_tokens(h, list, n, cancel, cerr)
	})
}
