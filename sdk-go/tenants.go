package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import (
	"context"
	"time"
)

// TenantQuotas are a tenant's limits. In a request nil leaves a quota as it is (or at the
// broker's default) and a set 0 means unlimited; in a [TenantInfo] every quota is set, to the
// value in effect. Rates are per broker node. Set one with [Ptr]: MaxTopics: rapidmq.Ptr[uint64](10).
type TenantQuotas struct {
	PublishBytesPerSec *uint64
	PublishMsgsPerSec  *uint64
	ConsumeBytesPerSec *uint64
	// StorageBytes bounds the bytes stored in the tenant's partitions.
	StorageBytes  *uint64
	MaxTopics     *uint64
	MaxPartitions *uint64
	// MaxConnections bounds the open client connections in the tenant.
	MaxConnections *uint64
}

// The quota names, as the broker, the CLI and the rapidmq-quota header spell them; pass them to
// [Admin.SetTenantQuotas] as reset.
const (
	QuotaPublishBytesPerSec = "publish_bytes_per_sec"
	QuotaPublishMsgsPerSec  = "publish_msgs_per_sec"
	QuotaConsumeBytesPerSec = "consume_bytes_per_sec"
	QuotaStorageBytes       = "storage_bytes"
	QuotaMaxTopics          = "max_topics"
	QuotaMaxPartitions      = "max_partitions"
	QuotaMaxConnections     = "max_connections"
)

// slots are q's fields, indexed by the C ABI's RapidmqQuota.
func (q *TenantQuotas) slots() [C.RAPIDMQ_QUOTA_COUNT]**uint64 {
	var s [C.RAPIDMQ_QUOTA_COUNT]**uint64
	s[C.RAPIDMQ_QUOTA_PUBLISH_BYTES_PER_SEC] = &q.PublishBytesPerSec
	s[C.RAPIDMQ_QUOTA_PUBLISH_MSGS_PER_SEC] = &q.PublishMsgsPerSec
	s[C.RAPIDMQ_QUOTA_CONSUME_BYTES_PER_SEC] = &q.ConsumeBytesPerSec
	s[C.RAPIDMQ_QUOTA_STORAGE_BYTES] = &q.StorageBytes
	s[C.RAPIDMQ_QUOTA_MAX_TOPICS] = &q.MaxTopics
	s[C.RAPIDMQ_QUOTA_MAX_PARTITIONS] = &q.MaxPartitions
	s[C.RAPIDMQ_QUOTA_MAX_CONNECTIONS] = &q.MaxConnections
	return s
}

func (q TenantQuotas) c() C.RapidmqTenantQuotas {
	var out C.RapidmqTenantQuotas
	for i, field := range q.slots() {
		if *field != nil {
			out.quotas[i] = C.RapidmqQuotaValue{set: true, value: C.uint64_t(**field)}
		}
	}
	return out
}

func quotasFromC(c *C.RapidmqTenantQuotas) TenantQuotas {
	var out TenantQuotas
	for i, field := range out.slots() {
		if slot := c.quotas[i]; bool(slot.set) {
			*field = Ptr(uint64(slot.value))
		}
	}
	return out
}

// TenantUsage is what a tenant uses now, on the node that answered.
type TenantUsage struct {
	Topics, Partitions, StorageBytes, Connections, Users uint64
}

// TenantInfo describes a tenant, its quotas in effect and its usage.
type TenantInfo struct {
	Name   string
	Quotas TenantQuotas
	Usage  TenantUsage
	// CreatedAt is the zero time for default.
	CreatedAt time.Time
}

// AuditEvent is one audit record; repeated failures from one source are coalesced into one
// with a Count.
type AuditEvent struct {
	// ID is opaque and ordered.
	ID     string
	Time   time.Time
	Node   uint32
	Tenant string
	// Actor is "tenant/user", "token:<id>" or "anonymous".
	Actor      string
	SourceAddr string
	// Transport is "grpc" or "http".
	Transport string
	// Action is dotted and stable, e.g. "auth.login", "role.bind", "tenant.create".
	Action string
	// Target is what it acted on, e.g. "topic:orders".
	Target string
	// Outcome is "ok", "denied" or "failed".
	Outcome string
	Detail  string
	Count   uint64
}

// AuditQuery selects audit records; every zero field matches anything.
type AuditQuery struct {
	// Since is an inclusive lower bound on the record time; Until an exclusive upper one.
	Since, Until time.Time
	// Actor is "tenant/user", "token:<id>" or "anonymous".
	Actor string
	// ActionPrefix is e.g. "auth." or "topic.delete".
	ActionPrefix string
	// Outcome is "ok", "denied" or "failed".
	Outcome string
	// Limit is the most records per page (0: 100; the broker caps it at 1000).
	Limit uint32
	// PageToken is the NextPageToken of the previous page.
	PageToken string
}

// AuditPage is one page of audit records, oldest first.
type AuditPage struct {
	Events []AuditEvent
	// NextPageToken is empty when there is nothing more.
	NextPageToken string
}

func tenantFromC(t *C.RapidmqTenantInfo) TenantInfo {
	info := TenantInfo{
		Name:   goString(t.name),
		Quotas: quotasFromC(&t.quotas),
		Usage: TenantUsage{
			uint64(t.usage.topics), uint64(t.usage.partitions), uint64(t.usage.storage_bytes),
			uint64(t.usage.connections), uint64(t.usage.users),
		},
	}
	if t.created_at_ms != 0 {
		info.CreatedAt = msTime(t.created_at_ms)
	}
	return info
}

func auditEventFromC(e *C.RapidmqAuditEvent) AuditEvent {
	return AuditEvent{
		ID: goString(e.id), Time: msTime(e.ts_ms), Node: uint32(e.node), Tenant: goString(e.tenant),
		Actor: goString(e.actor), SourceAddr: goString(e.source_addr), Transport: goString(e.transport),
		Action: goString(e.action), Target: goString(e.target), Outcome: goString(e.outcome),
		Detail: goString(e.detail), Count: uint64(e.count),
	}
}

// tenantCall runs a call that returns one tenant.
func (a *Admin) tenantCall(ctx context.Context, call func(*C.RapidmqClient, *C.RapidmqCancel, **C.RapidmqTenantInfo, *C.RapidmqError) uint32) (TenantInfo, error) {
	var t *C.RapidmqTenantInfo
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return call(h, cancel, &t, cerr)
	})
	if err != nil {
		return TenantInfo{}, err
	}
	defer C.rapidmq_tenant_info_free(t)
	return tenantFromC(t), nil
}

// CreateTenant creates a tenant (a cluster admin only); nil quotas take the broker's defaults.
// Errors: [ErrTenantAlreadyExists], [ErrInvalidName], [ErrPermissionDenied].
func (a *Admin) CreateTenant(ctx context.Context, name string, quotas TenantQuotas) (TenantInfo, error) {
	var p pins
	defer p.Unpin()
	n, q := p.str(name), quotas.c()
	return a.tenantCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqTenantInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_create_tenant(h, n, &q, cancel, out, cerr)
	})
}

// DeleteTenant deletes an empty tenant (a cluster admin only). Errors: [ErrTenantNotFound],
// [ErrTenantNotEmpty] (it still has topics or users), [ErrInvalidArgument] (default).
func (a *Admin) DeleteTenant(ctx context.Context, name string) error {
	var p pins
	defer p.Unpin()
	n := p.str(name)
	return a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_delete_tenant(h, n, cancel, cerr)
	})
}

// ListTenants lists every tenant by name (a cluster admin only).
func (a *Admin) ListTenants(ctx context.Context) ([]TenantInfo, error) {
	var list *C.RapidmqTenantList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_tenants(h, cancel, &list, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_tenant_list_free(list)
	out := []TenantInfo{}
	for i := range items(list.items, list.len) {
		out = append(out, tenantFromC(&items(list.items, list.len)[i]))
	}
	return out, nil
}

// DescribeTenant returns a tenant's quotas in effect and its usage; name empty: the caller's
// tenant. Errors: [ErrTenantNotFound] (also for another tenant when the caller is not a cluster
// admin).
func (a *Admin) DescribeTenant(ctx context.Context, name string) (TenantInfo, error) {
	var p pins
	defer p.Unpin()
	n := p.str(name)
	return a.tenantCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqTenantInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_describe_tenant(h, n, cancel, out, cerr)
	})
}

// SetTenantQuotas changes some of a tenant's quotas (a cluster admin only): the set fields of
// quotas replace, the quotas named in reset (Quota* names) go back to the broker's defaults,
// the rest stay. It returns the tenant with the quotas now in effect. Errors:
// [ErrTenantNotFound], [ErrInvalidArgument] (an unknown name in reset).
func (a *Admin) SetTenantQuotas(ctx context.Context, name string, quotas TenantQuotas, reset []string) (TenantInfo, error) {
	var p pins
	defer p.Unpin()
	n, q := p.str(name), quotas.c()
	list, count := p.strs(reset)
	return a.tenantCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqTenantInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_set_tenant_quotas(h, n, &q, list, count, cancel, out, cerr)
	})
}

// ListAuditEvents returns one page of the audit log, oldest first: the caller's tenant for a
// tenant admin, every tenant for a cluster admin. Pass NextPageToken back as PageToken for the
// next page. Errors: [ErrPermissionDenied], [ErrInvalidArgument] (a page token the broker did
// not issue).
func (a *Admin) ListAuditEvents(ctx context.Context, query AuditQuery) (AuditPage, error) {
	var p pins
	defer p.Unpin()
	q := C.RapidmqAuditQuery{
		actor:         p.str(query.Actor),
		action_prefix: p.str(query.ActionPrefix),
		outcome:       p.str(query.Outcome),
		limit:         C.uint32_t(query.Limit),
		page_token:    p.str(query.PageToken),
	}
	if !query.Since.IsZero() {
		q.has_since_ms, q.since_ms = true, C.uint64_t(query.Since.UnixMilli())
	}
	if !query.Until.IsZero() {
		q.has_until_ms, q.until_ms = true, C.uint64_t(query.Until.UnixMilli())
	}
	var page *C.RapidmqAuditPage
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_audit_events(h, &q, cancel, &page, cerr)
	})
	if err != nil {
		return AuditPage{}, err
	}
	defer C.rapidmq_audit_page_free(page)
	out := AuditPage{Events: []AuditEvent{}, NextPageToken: goString(page.next_page_token)}
	for i := range items(page.items, page.len) {
		out.Events = append(out.Events, auditEventFromC(&items(page.items, page.len)[i]))
	}
	return out, nil
}
