package rapidmq_test

// C23 auth-and-acls (docs/sdk-conformance.md) against brokers started with --auth: an API token
// authenticates every call and a wrong one fails at connect; a user and password log in and the
// session is renewed before it expires; users and tokens are managed through the admin API and
// a revoked token is refused. Tokens come from `rapidmq token generate`, as in the other SDKs'
// suites.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
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

	created, err := admin.CreateToken(ctx, "ci-bot", "deploys", time.Hour)
	if err != nil || !strings.HasPrefix(created.Token, "rmq_") || created.Info.User != "ci-bot" ||
		created.Info.Kind != "api" || created.Info.Description != "deploys" || created.Info.ExpiresAt.IsZero() {
		t.Fatalf("create token: %v %v", created, err)
	}
	secret := created.Token[strings.LastIndex(created.Token, "_")+1:]
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
