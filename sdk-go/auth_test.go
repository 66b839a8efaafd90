package rapidmq_test

// C23 auth-and-acls (docs/sdk-conformance.md) against brokers started with --auth: an API token
// authenticates every call and a wrong one fails at connect; a user and password log in and the
// session is renewed before it expires; users and tokens are managed through the admin API and
// a revoked token is refused; roles and bindings are managed through the admin API and a user
// without a role that allows an operation gets PERMISSION_DENIED. Tokens come from
// `rapidmq token generate`, as in the other SDKs' suites.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

const password = "correct horse"

// generateToken is a fresh rmq_ token from `rapidmq token generate`.
func generateToken(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(os.Getenv("RAPIDMQ_BIN"), "token", "generate").Output()
	if err != nil {
		t.Fatalf("rapidmq token generate: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// connectWith connects with a token or a user and password; the caller closes the client.
func connectWith(t *testing.T, b *Broker, token, user, password string) (*rapidmq.Client, error) {
	t.Helper()
	cfg := rapidmq.NewClientConfig(b.URL())
	cfg.Token, cfg.User, cfg.Password = token, user, password
	client, err := rapidmq.Connect(ctxT(t), cfg)
	if err == nil {
		t.Cleanup(func() { _ = client.Close() })
	}
	return client, err
}

// assertUnauthenticated checks a non-retriable UNAUTHENTICATED.
func assertUnauthenticated(t *testing.T, what string, err error) {
	t.Helper()
	var e *rapidmq.Error
	if !errors.Is(err, rapidmq.ErrUnauthenticated) || !errors.As(err, &e) || e.Retriable || e.Code != 6001 {
		t.Fatalf("%s: want a non-retriable UNAUTHENTICATED, got %v", what, err)
	}
}

// C23: an API token on publish, consume and admin calls; wrong tokens fail at connect.
func TestAnAPITokenAuthenticatesEveryCallAndAWrongOneFailsAtConnect(t *testing.T) {
	token := generateToken(t)
	b := startBrokerEnv(t, []string{"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN=" + token}, "--auth")
	client, err := connectWith(t, b, token, "", "")
	if err != nil {
		t.Fatalf("connect with the admin token: %v", err)
	}
	admin := client.Admin()
	if me, err := admin.WhoAmI(ctxT(t)); err != nil || me != (rapidmq.Identity{Tenant: "default", User: "admin"}) {
		t.Fatalf("whoami: %+v %v", me, err)
	}
	roundTrip(t, client, "hello")
	if topics, err := admin.ListTopics(ctxT(t)); err != nil || len(topics) != 1 {
		t.Fatalf("list topics: %v %v", topics, err)
	}

	for _, wrong := range []string{generateToken(t), "not-a-token"} {
		_, err := connectWith(t, b, wrong, "", "")
		assertUnauthenticated(t, "a wrong token", err)
	}
	// Without credentials the connection opens, and the first call is refused.
	anonymous := connect(t, b)
	_, err = anonymous.Admin().ListTopics(ctxT(t))
	assertUnauthenticated(t, "anonymous", err)
}

// C23: a login at connect, renewed at 80 % of a 1.5 s session; wrong logins fail at connect.
func TestAUserAndPasswordLogInAndTheSessionIsRenewedBeforeItExpires(t *testing.T) {
	b := startBrokerEnv(t, []string{
		"RAPIDMQ_BOOTSTRAP_ADMIN_PASSWORD=" + password,
		"RAPIDMQ_AUTH__SESSION_TTL_MS=1500",
	}, "--auth")
	client, err := connectWith(t, b, "", "admin", password)
	if err != nil {
		t.Fatalf("log in as admin: %v", err)
	}
	admin := client.Admin()
	if me, err := admin.WhoAmI(ctxT(t)); err != nil || me.User != "admin" {
		t.Fatalf("whoami: %+v %v", me, err)
	}
	sessions := func() []rapidmq.TokenInfo {
		tokens, err := admin.ListTokens(ctxT(t), "admin")
		if err != nil {
			t.Fatalf("list tokens: %v", err)
		}
		return slices.DeleteFunc(tokens, func(t rapidmq.TokenInfo) bool { return t.Kind != "session" })
	}
	first := sessions()
	if len(first) != 1 || first[0].ExpiresAt.IsZero() {
		t.Fatalf("one expiring session: %+v", first)
	}
	eventually(t, "the session is renewed and the first one has expired", func() bool {
		renewed := slices.ContainsFunc(sessions(), func(s rapidmq.TokenInfo) bool { return s.ID != first[0].ID })
		return renewed && time.Now().After(first[0].ExpiresAt)
	})
	if _, err := admin.ListTopics(ctxT(t)); err != nil {
		t.Fatalf("on the renewed session: %v", err)
	}

	for _, wrong := range [][2]string{{"admin", "wrong horse"}, {"mallory", password}} {
		_, err := connectWith(t, b, "", wrong[0], wrong[1])
		assertUnauthenticated(t, wrong[0], err)
	}
}

// C23: users and API tokens through the admin API; a revoked token, a changed password and a
// deleted user are refused.
func TestUsersAndTokensAreManagedAndARevokedTokenIsRefused(t *testing.T) {
	token := generateToken(t)
	b := startBrokerEnv(t, []string{"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN=" + token}, "--auth")
	client, err := connectWith(t, b, token, "", "")
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	admin := client.Admin()
	ctx := ctxT(t)
	if u, err := admin.CreateUser(ctx, "alice", "s3cret"); err != nil || u.Name != "alice" || !u.HasPassword {
		t.Fatalf("create alice: %+v %v", u, err)
	}
	if u, err := admin.CreateUser(ctx, "ci-bot", ""); err != nil || u.HasPassword {
		t.Fatalf("create ci-bot: %+v %v", u, err)
	}
	users, err := admin.ListUsers(ctx)
	var names []string
	for _, u := range users {
		names = append(names, u.Name)
	}
	if err != nil || !slices.Equal(names, []string{"admin", "alice", "ci-bot"}) {
		t.Fatalf("list users: %v %v", names, err)
	}
	if _, err := admin.CreateUser(ctx, "alice", "again"); !errors.Is(err, rapidmq.ErrUserAlreadyExists) {
		t.Fatalf("create alice again: %v", err)
	}
	// A user may do only what a role bound to it allows (deny by default).
	for _, user := range []string{"alice", "ci-bot"} {
		if _, err := admin.BindRole(ctx, user, "viewer", rapidmq.ScopeTenant); err != nil {
			t.Fatalf("bind viewer to %s: %v", user, err)
		}
	}

	created, err := admin.CreateToken(ctx, "ci-bot", "deploys", time.Hour)
	if err != nil || !strings.HasPrefix(created.Token, "rmq_") || created.Info.User != "ci-bot" ||
		created.Info.Kind != "api" || created.Info.Description != "deploys" || created.Info.ExpiresAt.IsZero() {
		t.Fatalf("create token: %v %v", created, err)
	}
	// rmq_<id>_<secret>: the id is base32, the secret base64url (it may hold "_").
	secret := strings.SplitN(created.Token, "_", 3)[2]
	for _, printed := range []string{fmt.Sprint(created), fmt.Sprintf("%+v", created), fmt.Sprintf("%#v", created)} {
		if strings.Contains(printed, secret) {
			t.Fatalf("the secret is printed: %s", printed)
		}
	}
	if listed, err := admin.ListTokens(ctx, "ci-bot"); err != nil || len(listed) != 1 || listed[0].ID != created.Info.ID {
		t.Fatalf("list tokens: %+v %v", listed, err)
	}

	bot, err := connectWith(t, b, created.Token, "", "")
	if err != nil {
		t.Fatalf("connect as ci-bot: %v", err)
	}
	if me, err := bot.Admin().WhoAmI(ctx); err != nil || me.User != "ci-bot" {
		t.Fatalf("whoami as ci-bot: %+v %v", me, err)
	}
	if err := admin.RevokeToken(ctx, created.Info.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, err = bot.Admin().ListTopics(ctx)
	assertUnauthenticated(t, "the revoked token on an open client", err)
	_, err = connectWith(t, b, created.Token, "", "")
	assertUnauthenticated(t, "the revoked token at connect", err)
	if err := admin.RevokeTokens(ctx, created.Info.ID); !errors.Is(err, rapidmq.ErrTokenNotFound) {
		t.Fatalf("revoke again: %v", err)
	}

	if err := admin.SetPassword(ctx, "alice", "n3w"); err != nil {
		t.Fatalf("set password: %v", err)
	}
	_, err = connectWith(t, b, "", "alice", "s3cret")
	assertUnauthenticated(t, "the old password", err)
	alice, err := connectWith(t, b, "", "alice", "n3w")
	if err != nil {
		t.Fatalf("log in as alice: %v", err)
	}
	if me, err := alice.Admin().WhoAmI(ctx); err != nil || me.User != "alice" {
		t.Fatalf("whoami as alice: %+v %v", me, err)
	}
	if err := admin.DeleteUser(ctx, "alice"); err != nil {
		t.Fatalf("delete alice: %v", err)
	}
	if err := admin.DeleteUser(ctx, "alice"); !errors.Is(err, rapidmq.ErrUserNotFound) {
		t.Fatalf("delete alice again: %v", err)
	}
	_, err = connectWith(t, b, "", "alice", "n3w")
	assertUnauthenticated(t, "a deleted user", err)
}

// C23: revoking the token of a client with an open consumer ends its stream; Receive returns
// UNAUTHENTICATED instead of reconnecting with the dead token.
func TestARevokedTokenEndsAnOpenConsumer(t *testing.T) {
	token := generateToken(t)
	b := startBrokerEnv(t, []string{"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN=" + token}, "--auth")
	client, err := connectWith(t, b, token, "", "")
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	admin := client.Admin()
	topic := makeTopic(t, client, partitions(1))
	created, err := admin.CreateToken(ctxT(t), "", "consumer", 0)
	if err != nil {
		t.Fatalf("create token: %v", err)
	}
	bot, err := connectWith(t, b, created.Token, "", "")
	if err != nil {
		t.Fatalf("connect with the new token: %v", err)
	}
	cfg := rapidmq.NewConsumerConfig(topic, "auth")
	cfg.Start = rapidmq.Earliest
	consumer := subscribe(t, bot, cfg)
	if err := admin.RevokeToken(ctxT(t), created.Info.ID); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, err = consumer.Receive(ctxT(t))
	assertUnauthenticated(t, "the open consumer", err)
}

// assertPermissionDenied checks a non-retriable PERMISSION_DENIED that names what was refused.
func assertPermissionDenied(t *testing.T, what string, err error, names string) {
	t.Helper()
	var e *rapidmq.Error
	if !errors.Is(err, rapidmq.ErrPermissionDenied) || !errors.As(err, &e) || e.Retriable || e.Code != 6002 {
		t.Fatalf("%s: want a non-retriable PERMISSION_DENIED, got %v", what, err)
	}
	if !strings.Contains(e.Message, names) {
		t.Fatalf("%s: want %q in the message: %v", what, names, err)
	}
}

// sortedActions is permissions in their text form with each one's actions sorted, to compare
// them whatever order the broker lists actions in.
func sortedActions(permissions []string) []string {
	out := []string{}
	for _, p := range permissions {
		words := strings.Fields(p)
		if len(words) == 3 {
			actions := strings.Split(words[1], ",")
			slices.Sort(actions)
			words[1] = strings.Join(actions, ",")
		}
		out = append(out, strings.Join(words, " "))
	}
	return out
}

// adminWithToken starts a broker with --auth and a bootstrap token and connects as its admin.
func adminWithToken(t *testing.T) (*Broker, *rapidmq.Client) {
	t.Helper()
	token := generateToken(t)
	b := startBrokerEnv(t, []string{"RAPIDMQ_BOOTSTRAP_ADMIN_TOKEN=" + token}, "--auth")
	client, err := connectWith(t, b, token, "", "")
	if err != nil {
		t.Fatalf("connect as admin: %v", err)
	}
	return b, client
}

// userWithToken creates user, binds role to it in the tenant and connects with a new API token.
func userWithToken(t *testing.T, b *Broker, admin *rapidmq.Admin, user, role string) *rapidmq.Client {
	t.Helper()
	ctx := ctxT(t)
	if _, err := admin.CreateUser(ctx, user, ""); err != nil {
		t.Fatalf("create %s: %v", user, err)
	}
	want := rapidmq.RoleBinding{Tenant: "default", User: user, Role: role, Scope: rapidmq.ScopeTenant}
	if got, err := admin.BindRole(ctx, user, role, rapidmq.ScopeTenant); err != nil || got != want {
		t.Fatalf("bind %s to %s: %+v %v", role, user, got, err)
	}
	created, err := admin.CreateToken(ctx, user, "C23", 0)
	if err != nil {
		t.Fatalf("token for %s: %v", user, err)
	}
	client, err := connectWith(t, b, created.Token, "", "")
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	return client
}

// C23: a user bound to the built-in consumer role consumes but may not publish
// (PERMISSION_DENIED); the four built-in roles are listed.
func TestAConsumerRoleConsumesButMayNotPublish(t *testing.T) {
	b, client := adminWithToken(t)
	admin := client.Admin()
	ctx := ctxT(t)
	topic := makeTopic(t, client, partitions(1))
	if d, err := newProducer(t, client, rapidmq.NewProducerConfig(topic)).Send(ctx, text("from admin")); err != nil ||
		d.Status != rapidmq.SendAppended {
		t.Fatalf("admin publishes: %+v %v", d, err)
	}
	reader := userWithToken(t, b, admin, "reader", "consumer")

	p, err := reader.NewProducer(ctx, rapidmq.NewProducerConfig(topic))
	if err == nil {
		t.Cleanup(func() { _ = p.Close() })
		_, err = p.Send(ctx, text("from reader"))
	}
	assertPermissionDenied(t, "reader publishes", err, topic)

	cfg := rapidmq.NewConsumerConfig(topic, "reader")
	cfg.Start = rapidmq.Earliest
	if m, err := subscribe(t, reader, cfg).Receive(ctx); err != nil || string(m.Value) != "from admin" {
		t.Fatalf("reader consumes: %q %v", m.Value, err)
	}

	roles, err := admin.ListRoles(ctx)
	if err != nil {
		t.Fatalf("list roles: %v", err)
	}
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
		if !r.Builtin {
			t.Fatalf("%s is not built-in", r.Name)
		}
		want := []string{"allow consume,describe topic:*", "allow consume,describe,create subscription:*"}
		if r.Name == "consumer" && !slices.Equal(sortedActions(r.Permissions), sortedActions(want)) {
			t.Fatalf("consumer's permissions: %q", r.Permissions)
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"admin", "consumer", "producer", "viewer"}) {
		t.Fatalf("built-in roles: %v", names)
	}
}

// C23: custom roles and bindings through the admin API, with their error codes; deleting a role
// removes its bindings.
func TestRolesAndBindingsAreManagedThroughTheAdminAPI(t *testing.T) {
	_, client := adminWithToken(t)
	admin := client.Admin()
	ctx := ctxT(t)
	permissions := []string{"allow publish,describe topic:orders.*", "deny publish topic:orders.audit"}
	role, err := admin.CreateRole(ctx, "orders-writer", permissions)
	if err != nil || !reflect.DeepEqual(role, rapidmq.RoleInfo{Name: "orders-writer", Permissions: permissions}) {
		t.Fatalf("create role: %+v %v", role, err)
	}
	for _, taken := range []string{"orders-writer", "admin"} {
		if _, err := admin.CreateRole(ctx, taken, permissions); !errors.Is(err, rapidmq.ErrRoleAlreadyExists) || code(err) != 6008 {
			t.Fatalf("create %s again: %v", taken, err)
		}
	}
	if _, err := admin.CreateRole(ctx, "bad", []string{"allow fly topic:*"}); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("an unknown action: %v", err)
	}

	if _, err := admin.CreateUser(ctx, "bob", ""); err != nil {
		t.Fatalf("create bob: %v", err)
	}
	want := rapidmq.RoleBinding{Tenant: "default", User: "bob", Role: "orders-writer", Scope: rapidmq.ScopeTenant}
	for range 2 { // binding twice is not an error
		if got, err := admin.BindRole(ctx, "bob", "orders-writer", rapidmq.ScopeTenant); err != nil || got != want {
			t.Fatalf("bind: %+v %v", got, err)
		}
	}
	if _, err := admin.BindRole(ctx, "bob", "no-such-role", rapidmq.ScopeTenant); !errors.Is(err, rapidmq.ErrRoleNotFound) || code(err) != 6007 {
		t.Fatalf("bind an unknown role: %v", err)
	}
	if _, err := admin.BindRole(ctx, "bob", "viewer", rapidmq.ScopeTenant); err != nil {
		t.Fatalf("bind viewer: %v", err)
	}
	bindings := func() []rapidmq.RoleBinding {
		got, err := admin.ListRoleBindings(ctx, "bob")
		if err != nil {
			t.Fatalf("list bindings: %v", err)
		}
		slices.SortFunc(got, func(a, b rapidmq.RoleBinding) int { return strings.Compare(a.Role, b.Role) })
		return got
	}
	viewer := rapidmq.RoleBinding{Tenant: "default", User: "bob", Role: "viewer", Scope: rapidmq.ScopeTenant}
	if got := bindings(); !slices.Equal(got, []rapidmq.RoleBinding{want, viewer}) {
		t.Fatalf("bob's bindings: %+v", got)
	}
	all, err := admin.ListRoleBindings(ctx, "")
	admins := rapidmq.RoleBinding{Tenant: "default", User: "admin", Role: "admin", Scope: rapidmq.ScopeCluster}
	if err != nil || !slices.Contains(all, admins) || len(all) != 3 {
		t.Fatalf("every binding: %+v %v", all, err)
	}

	if err := admin.UnbindRole(ctx, "bob", "viewer"); err != nil {
		t.Fatalf("unbind: %v", err)
	}
	if err := admin.UnbindRole(ctx, "bob", "viewer"); !errors.Is(err, rapidmq.ErrRoleNotFound) {
		t.Fatalf("unbind again: %v", err)
	}
	if err := admin.DeleteRole(ctx, "orders-writer"); err != nil {
		t.Fatalf("delete role: %v", err)
	}
	if got := bindings(); len(got) != 0 {
		t.Fatalf("the deleted role's binding is left: %+v", got)
	}
	if err := admin.DeleteRole(ctx, "orders-writer"); !errors.Is(err, rapidmq.ErrRoleNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if err := admin.DeleteRole(ctx, "consumer"); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("delete a built-in role: %v", err)
	}
}

// C23: role administration needs admin on the tenant; a viewer may neither create a role nor
// bind itself one (PERMISSION_DENIED), and can still ask who it is.
func TestAViewerMayNotGrantItselfARole(t *testing.T) {
	b, client := adminWithToken(t)
	auditor := userWithToken(t, b, client.Admin(), "auditor", "viewer").Admin()
	ctx := ctxT(t)
	if me, err := auditor.WhoAmI(ctx); err != nil || me.User != "auditor" {
		t.Fatalf("whoami: %+v %v", me, err)
	}
	_, err := auditor.CreateRole(ctx, "everything", []string{"allow all topic:*"})
	assertPermissionDenied(t, "a viewer creates a role", err, "auditor")
	_, err = auditor.BindRole(ctx, "auditor", "admin", rapidmq.ScopeTenant)
	assertPermissionDenied(t, "a viewer binds itself admin", err, "auditor")
	if bound, err := client.Admin().ListRoleBindings(ctx, "auditor"); err != nil || len(bound) != 1 || bound[0].Role != "viewer" {
		t.Fatalf("the auditor's bindings: %+v %v", bound, err)
	}
}
