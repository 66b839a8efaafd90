package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import "context"

// BindingScope says where a bound role applies.
type BindingScope uint32

const (
	// ScopeTenant: in the user's tenant.
	ScopeTenant BindingScope = C.RAPIDMQ_BINDING_SCOPE_TENANT
	// ScopeCluster: across the broker (admin bound here is a cluster admin).
	ScopeCluster BindingScope = C.RAPIDMQ_BINDING_SCOPE_CLUSTER
)

// String is "tenant" or "cluster".
func (s BindingScope) String() string {
	switch s {
	case ScopeTenant:
		return "tenant"
	case ScopeCluster:
		return "cluster"
	}
	return "unknown"
}

// RoleInfo describes a role: built-in (admin, producer, consumer, viewer) or custom to the
// tenant.
type RoleInfo struct {
	Name string
	// Builtin roles cannot be changed or deleted.
	Builtin bool
	// Permissions in their text form, e.g. "allow publish,describe topic:orders.*".
	Permissions []string
}

// RoleBinding is a role bound to a user.
type RoleBinding struct {
	Tenant, User, Role string
	Scope              BindingScope
}

func roleFromC(r *C.RapidmqRoleInfo) RoleInfo {
	info := RoleInfo{Name: goString(r.name), Builtin: bool(r.builtin), Permissions: []string{}}
	for _, p := range items(r.permissions, r.permissions_len) {
		info.Permissions = append(info.Permissions, goString(p))
	}
	return info
}

func bindingFromC(b *C.RapidmqRoleBinding) RoleBinding {
	return RoleBinding{goString(b.tenant), goString(b.user), goString(b.role), BindingScope(b.scope)}
}

// CreateRole creates a custom role in the caller's tenant from permissions in their text form:
// "allow|deny ACTIONS RESOURCE", e.g. "allow publish,describe topic:orders.*" or
// "deny consume subscription:orders.*/audit-*" (docs/security.md). Errors:
// [ErrRoleAlreadyExists] (the built-in names are taken), [ErrInvalidName],
// [ErrInvalidArgument] (a permission that does not parse).
func (a *Admin) CreateRole(ctx context.Context, name string, permissions []string) (RoleInfo, error) {
	var p pins
	defer p.Unpin()
	n := p.str(name)
	list, count := p.strs(permissions)
	var r *C.RapidmqRoleInfo
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_create_role(h, n, list, count, cancel, &r, cerr)
	})
	if err != nil {
		return RoleInfo{}, err
	}
	defer C.rapidmq_role_info_free(r)
	return roleFromC(r), nil
}

// DeleteRole deletes a custom role and its bindings. Errors: [ErrRoleNotFound],
// [ErrInvalidArgument] (a built-in role).
func (a *Admin) DeleteRole(ctx context.Context, name string) error {
	var p pins
	defer p.Unpin()
	n := p.str(name)
	return a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_delete_role(h, n, cancel, cerr)
	})
}

// ListRoles lists the built-in and custom roles of the caller's tenant.
func (a *Admin) ListRoles(ctx context.Context) ([]RoleInfo, error) {
	var list *C.RapidmqRoleList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_roles(h, cancel, &list, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_role_list_free(list)
	out := []RoleInfo{}
	for i := range items(list.items, list.len) {
		out = append(out, roleFromC(&items(list.items, list.len)[i]))
	}
	return out, nil
}

// BindRole binds role to user in the tenant ([ScopeTenant]) or across the broker
// ([ScopeCluster], by a cluster admin only). Binding twice is not an error. Errors:
// [ErrUserNotFound], [ErrRoleNotFound].
func (a *Admin) BindRole(ctx context.Context, user, role string, scope BindingScope) (RoleBinding, error) {
	var p pins
	defer p.Unpin()
	u, r := p.str(user), p.str(role)
	var b *C.RapidmqRoleBinding
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_bind_role(h, u, r, C.uint32_t(scope), cancel, &b, cerr)
	})
	if err != nil {
		return RoleBinding{}, err
	}
	defer C.rapidmq_role_binding_free(b)
	return bindingFromC(b), nil
}

// UnbindRole removes the binding of role to user. Errors: [ErrRoleNotFound] (no such
// binding), [ErrUserNotFound].
func (a *Admin) UnbindRole(ctx context.Context, user, role string) error {
	var p pins
	defer p.Unpin()
	u, r := p.str(user), p.str(role)
	return a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_unbind_role(h, u, r, cancel, cerr)
	})
}

// ListRoleBindings lists the role bindings of the caller's tenant, or of user (empty: all).
func (a *Admin) ListRoleBindings(ctx context.Context, user string) ([]RoleBinding, error) {
	var p pins
	defer p.Unpin()
	u := p.str(user)
	var list *C.RapidmqRoleBindingList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_role_bindings(h, u, cancel, &list, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_role_binding_list_free(list)
	out := []RoleBinding{}
	for i := range items(list.items, list.len) {
		out = append(out, bindingFromC(&items(list.items, list.len)[i]))
	}
	return out, nil
}
