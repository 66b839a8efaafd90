package rapidmq_test

// Tenants, quotas and the audit log through the admin API, against brokers started with --auth
// and connected as the bootstrap admin (a cluster admin).

import (
	"errors"
	"slices"
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// assertQuota checks that a quota in effect is set to want.
func assertQuota(t *testing.T, what string, got *uint64, want uint64) {
	t.Helper()
	if got == nil || *got != want {
		t.Fatalf("%s: want %d, got %v", what, want, got)
	}
}

// allSet checks that every quota of a tenant is reported (the values in effect).
func allSet(t *testing.T, info rapidmq.TenantInfo) {
	t.Helper()
	q := info.Quotas
	for _, v := range []*uint64{q.PublishBytesPerSec, q.PublishMsgsPerSec, q.ConsumeBytesPerSec, q.StorageBytes, q.MaxTopics, q.MaxPartitions, q.MaxConnections} {
		if v == nil {
			t.Fatalf("%s: a quota in effect is unset: %+v", info.Name, q)
		}
	}
}

func TestTenantsAndTheirQuotasAreManagedThroughTheAdminAPI(t *testing.T) {
	_, client := adminWithToken(t)
	admin := client.Admin()
	ctx := ctxT(t)
	makeTopic(t, client, partitions(3))

	// The broker's defaults, as a tenant created without quotas gets them.
	plain, err := admin.CreateTenant(ctx, "plain", rapidmq.TenantQuotas{})
	if err != nil {
		t.Fatalf("create plain: %v", err)
	}
	allSet(t, plain)
	defaults := plain.Quotas

	quotas := rapidmq.TenantQuotas{MaxTopics: rapidmq.Ptr[uint64](10), StorageBytes: rapidmq.Ptr[uint64](1 << 30), MaxConnections: rapidmq.Ptr[uint64](0)}
	acme, err := admin.CreateTenant(ctx, "acme", quotas)
	if err != nil || acme.Name != "acme" || acme.CreatedAt.IsZero() {
		t.Fatalf("create acme: %+v %v", acme, err)
	}
	allSet(t, acme)
	assertQuota(t, "acme max_topics", acme.Quotas.MaxTopics, 10)
	assertQuota(t, "acme storage_bytes", acme.Quotas.StorageBytes, 1<<30)
	assertQuota(t, "acme max_connections (0: unlimited)", acme.Quotas.MaxConnections, 0)
	assertQuota(t, "acme max_partitions (unset: the default)", acme.Quotas.MaxPartitions, *defaults.MaxPartitions)

	_, err = admin.CreateTenant(ctx, "acme", rapidmq.TenantQuotas{})
	var e *rapidmq.Error
	if !errors.Is(err, rapidmq.ErrTenantAlreadyExists) || !errors.As(err, &e) || e.Code != 6011 {
		t.Fatalf("create acme again: %v", err)
	}

	tenants, err := admin.ListTenants(ctx)
	if err != nil {
		t.Fatalf("list tenants: %v", err)
	}
	var names []string
	for _, info := range tenants {
		names = append(names, info.Name)
	}
	if !slices.Equal(names, []string{"acme", "default", "plain"}) {
		t.Fatalf("tenants: %v", names)
	}

	described, err := admin.DescribeTenant(ctx, "acme")
	if err != nil || described.Name != "acme" || described.Usage != (rapidmq.TenantUsage{}) {
		t.Fatalf("describe acme: %+v %v", described, err)
	}
	assertQuota(t, "described max_topics", described.Quotas.MaxTopics, 10)
	home, err := admin.DescribeTenant(ctx, "")
	if err != nil || home.Name != "default" || !home.CreatedAt.IsZero() {
		t.Fatalf("describe the caller's tenant: %+v %v", home, err)
	}
	if home.Usage.Topics != 1 || home.Usage.Partitions != 3 {
		t.Fatalf("default's usage after one topic of 3 partitions: %+v", home.Usage)
	}

	// One quota set (to 0, unlimited, which is not "unset"), one reset to the default.
	changed, err := admin.SetTenantQuotas(ctx, "acme", rapidmq.TenantQuotas{MaxTopics: rapidmq.Ptr[uint64](0)}, []string{rapidmq.QuotaStorageBytes})
	if err != nil {
		t.Fatalf("set quotas: %v", err)
	}
	assertQuota(t, "max_topics set to unlimited", changed.Quotas.MaxTopics, 0)
	assertQuota(t, "storage_bytes reset", changed.Quotas.StorageBytes, *defaults.StorageBytes)
	assertQuota(t, "max_connections kept", changed.Quotas.MaxConnections, 0)
	if again, err := admin.DescribeTenant(ctx, "acme"); err != nil || !sameQuotas(again.Quotas, changed.Quotas) {
		t.Fatalf("describe after set: %+v %v", again, err)
	}
	if _, err := admin.SetTenantQuotas(ctx, "acme", rapidmq.TenantQuotas{}, []string{"bogus"}); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("reset an unknown quota: %v", err)
	}

	if err := admin.DeleteTenant(ctx, "acme"); err != nil {
		t.Fatalf("delete acme: %v", err)
	}
	for what, err := range map[string]error{
		"describe a deleted tenant": second(admin.DescribeTenant(ctx, "acme")),
		"delete again":              admin.DeleteTenant(ctx, "acme"),
		"set quotas of a deleted tenant": second(admin.SetTenantQuotas(ctx, "acme",
			rapidmq.TenantQuotas{MaxTopics: rapidmq.Ptr[uint64](1)}, nil)),
	} {
		if !errors.Is(err, rapidmq.ErrTenantNotFound) || !errors.As(err, &e) || e.Code != 6003 {
			t.Fatalf("%s: %v", what, err)
		}
	}
	if err := admin.DeleteTenant(ctx, "default"); !errors.Is(err, rapidmq.ErrPermissionDenied) {
		t.Fatalf("delete default: %v", err)
	}
}

func second[T any](_ T, err error) error { return err }

func sameQuotas(a, b rapidmq.TenantQuotas) bool {
	eq := func(x, y *uint64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return eq(a.PublishBytesPerSec, b.PublishBytesPerSec) && eq(a.PublishMsgsPerSec, b.PublishMsgsPerSec) &&
		eq(a.ConsumeBytesPerSec, b.ConsumeBytesPerSec) && eq(a.StorageBytes, b.StorageBytes) &&
		eq(a.MaxTopics, b.MaxTopics) && eq(a.MaxPartitions, b.MaxPartitions) && eq(a.MaxConnections, b.MaxConnections)
}

// connectIn connects with the bootstrap admin's token, acting in tenant.
func connectIn(t *testing.T, b *Broker, token, tenant string) (*rapidmq.Client, error) {
	t.Helper()
	cfg := rapidmq.NewClientConfig(b.URL())
	cfg.Token, cfg.Tenant = token, tenant
	client, err := rapidmq.Connect(ctxT(t), cfg)
	if err == nil {
		t.Cleanup(func() { _ = client.Close() })
	}
	return client, err
}

func TestAClusterAdminActsInsideATenantWithTheTenantOption(t *testing.T) {
	token := generateToken(t)
	b := startBrokerEnv(t, []string{"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN=" + token}, "--auth")
	client, err := connectIn(t, b, token, "")
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	ctx := ctxT(t)
	if _, err := client.Admin().CreateTenant(ctx, "acme", rapidmq.TenantQuotas{}); err != nil {
		t.Fatalf("create acme: %v", err)
	}

	inside, err := connectIn(t, b, token, "acme")
	if err != nil {
		t.Fatalf("connect in acme: %v", err)
	}
	if _, err := inside.Admin().CreateTopic(ctx, "orders", partitions(1)); err != nil {
		t.Fatalf("create a topic in acme: %v", err)
	}
	acme, err := client.Admin().DescribeTenant(ctx, "acme")
	if err != nil || acme.Usage.Topics != 1 {
		t.Fatalf("describe acme: %+v %v", acme, err)
	}
	topics, err := client.Admin().ListTopics(ctx)
	if err != nil {
		t.Fatalf("list topics in default: %v", err)
	}
	for _, topic := range topics {
		if topic.Name == "orders" {
			t.Fatalf("acme's topic is listed in default: %+v", topics)
		}
	}

	var e *rapidmq.Error
	missing, err := connectIn(t, b, token, "no-such")
	if err == nil {
		_, err = missing.Admin().ListTopics(ctx)
	}
	if !errors.Is(err, rapidmq.ErrTenantNotFound) || !errors.As(err, &e) || e.Code != 6003 {
		t.Fatalf("act in a missing tenant: %v", err)
	}
	if _, err := connectIn(t, b, token, "a/b"); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("connect with a tenant that is not a tenant name: %v", err)
	}
}
