package rapidmq_test

// The audit log through the admin API, against brokers started with --auth and connected as the
// bootstrap admin (a cluster admin).

import (
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// auditedAs lists the records whose action starts with prefix, failing the test on an error.
func auditedAs(t *testing.T, admin *rapidmq.Admin, query rapidmq.AuditQuery) rapidmq.AuditPage {
	t.Helper()
	page, err := admin.ListAuditEvents(ctxT(t), query)
	if err != nil {
		t.Fatalf("list audit events %+v: %v", query, err)
	}
	return page
}

func TestAdminChangesAreAuditedFilteredAndPaged(t *testing.T) {
	_, client := adminWithToken(t)
	admin := client.Admin()
	ctx := ctxT(t)
	me, err := admin.WhoAmI(ctx)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	for _, name := range []string{"orders-writer", "orders-reader"} {
		if _, err := admin.CreateRole(ctx, name, []string{"allow describe topic:orders.*"}); err != nil {
			t.Fatalf("create role %s: %v", name, err)
		}
	}

	page := auditedAs(t, admin, rapidmq.AuditQuery{ActionPrefix: "role."})
	if len(page.Events) != 2 || page.NextPageToken != "" {
		t.Fatalf("role.* records: %+v", page)
	}
	got := page.Events[0]
	if got.Action != "role.create" || got.Actor != me.Tenant+"/"+me.User || got.Tenant != "default" ||
		got.Target != "role:default/orders-writer" || got.Outcome != "ok" || got.Transport != "grpc" ||
		got.Count != 1 || got.Time.IsZero() || got.ID == "" {
		t.Fatalf("the role.create record: %+v", got)
	}
	if page.Events[1].Target != "role:default/orders-reader" {
		t.Fatalf("records are oldest first: %+v", page.Events)
	}

	if other := auditedAs(t, admin, rapidmq.AuditQuery{ActionPrefix: "role.", Actor: "default/nobody"}); len(other.Events) != 0 {
		t.Fatalf("another actor's records: %+v", other)
	}
	if later := auditedAs(t, admin, rapidmq.AuditQuery{ActionPrefix: "role.", Since: got.Time.Add(24 * 3600e9)}); len(later.Events) != 0 {
		t.Fatalf("records of tomorrow: %+v", later)
	}
	first := auditedAs(t, admin, rapidmq.AuditQuery{ActionPrefix: "role.create", Limit: 1})
	if len(first.Events) != 1 || first.Events[0] != got || first.NextPageToken == "" {
		t.Fatalf("first page of one: %+v", first)
	}
	next := auditedAs(t, admin, rapidmq.AuditQuery{ActionPrefix: "role.create", Limit: 1, PageToken: first.NextPageToken})
	if len(next.Events) != 1 || next.Events[0] != page.Events[1] {
		t.Fatalf("second page: %+v", next)
	}
}

func TestTenantChangesAreAuditedWithTheirActor(t *testing.T) {
	_, client := adminWithToken(t)
	admin := client.Admin()
	ctx := ctxT(t)
	me, err := admin.WhoAmI(ctx)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	if _, err := admin.CreateTenant(ctx, "acme", rapidmq.TenantQuotas{MaxTopics: rapidmq.Ptr[uint64](10)}); err != nil {
		t.Fatalf("create acme: %v", err)
	}
	if err := admin.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatalf("delete acme: %v", err)
	}
	page := auditedAs(t, admin, rapidmq.AuditQuery{ActionPrefix: "tenant."})
	var actions []string
	for _, e := range page.Events {
		actions = append(actions, e.Action)
		if e.Actor != me.Tenant+"/"+me.User || e.Target != "tenant:acme" || e.Outcome != "ok" {
			t.Fatalf("a tenant record: %+v", e)
		}
	}
	if len(actions) != 2 || actions[0] != "tenant.create" || actions[1] != "tenant.delete" {
		t.Fatalf("tenant.* records: %+v", page.Events)
	}
}
