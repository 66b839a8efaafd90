package rapidmq_test

// C17 tls (docs/sdk-conformance.md) against real brokers: a custom CA given as a file or as PEM,
// a wrong CA, an https:// endpoint at a plaintext broker, and mutual TLS. Certificates come
// from `rapidmq tls dev-certs`, as in the other SDKs' suites.

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// certs is a fresh development CA with a server certificate for localhost and 127.0.0.1 and a
// client certificate for alice.
type certs struct{ dir string }

func devCerts(t *testing.T) certs {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command(os.Getenv("RAPIDMQ_BIN"), "tls", "dev-certs", "--client", "alice",
		"--out", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("rapidmq tls dev-certs: %v\n%s", err, out)
	}
	return certs{dir: dir}
}

func (c certs) file(name string) string { return filepath.Join(c.dir, name) }

func (c certs) read(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(c.file(name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// broker starts a TLS broker with the server pair; clientAuth ("" for none) asks for client
// certificates issued by the same CA.
func (c certs) broker(t *testing.T, clientAuth string) *Broker {
	t.Helper()
	args := []string{"--tls-cert-file", c.file("server.pem"), "--tls-key-file", c.file("server.key")}
	if clientAuth != "" {
		args = append(args, "--tls-client-ca-file", c.file("ca.pem"), "--tls-client-auth", clientAuth)
	}
	return startBrokerWith(t, args...)
}

func https(b *Broker) string { return "https://" + b.GRPC }

func connectTLS(t *testing.T, endpoint string, tls rapidmq.TLSConfig) (*rapidmq.Client, error) {
	t.Helper()
	cfg := rapidmq.NewClientConfig(endpoint)
	cfg.TLS = &tls
	client, err := rapidmq.Connect(ctxT(t), cfg)
	if err == nil {
		t.Cleanup(func() { _ = client.Close() })
	}
	return client, err
}

// roundTrip publishes one message on a new topic and consumes it back.
func roundTrip(t *testing.T, client *rapidmq.Client, value string) {
	t.Helper()
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	if d, err := p.Send(ctxT(t), text(value)); err != nil || d.Status != rapidmq.SendAppended {
		t.Fatalf("send over TLS: %+v %v", d, err)
	}
	cfg := rapidmq.NewConsumerConfig(topic, "tls")
	cfg.Start = rapidmq.Earliest
	m, err := subscribe(t, client, cfg).Receive(ctxT(t))
	if err != nil || string(m.Value) != value {
		t.Fatalf("receive over TLS: %q %v", m.Value, err)
	}
}

// assertHandshakeFailed checks a clear, non-retriable TLS_HANDSHAKE_FAILED.
func assertHandshakeFailed(t *testing.T, err error, hint string) {
	t.Helper()
	var e *rapidmq.Error
	if !errors.Is(err, rapidmq.ErrTlsHandshakeFailed) || !errors.As(err, &e) || e.Retriable ||
		e.Code != 6010 || e.Kind != rapidmq.KindTLSHandshake {
		t.Fatalf("want a non-retriable TLS_HANDSHAKE_FAILED, got %v", err)
	}
	if !strings.Contains(e.Message, "TLS handshake") || !strings.Contains(e.Message, hint) {
		t.Fatalf("want %q in the message: %v", hint, err)
	}
}

// C17 tls: a custom CA given as a file or as PEM is trusted.
func TestC17ACustomCAGivenAsAFileOrAsPEMIsTrusted(t *testing.T) {
	c := devCerts(t)
	b := c.broker(t, "")
	client, err := connectTLS(t, https(b), rapidmq.TLSConfig{CACertPath: c.file("ca.pem")})
	if err != nil {
		t.Fatalf("TLS with the broker's CA as a file: %v", err)
	}
	roundTrip(t, client, "over TLS, CA file")

	client, err = connectTLS(t, https(b), rapidmq.TLSConfig{
		CACertPEM:  c.read(t, "ca.pem"),
		ServerName: "localhost",
	})
	if err != nil {
		t.Fatalf("TLS with the broker's CA as PEM, verified as localhost: %v", err)
	}
	roundTrip(t, client, "over TLS, CA PEM")
}

// C17 tls: a broker certificate from another CA fails the handshake clearly, without retries.
func TestC17AWrongCAFailsClearlyAndIsNotRetriable(t *testing.T) {
	c, other := devCerts(t), devCerts(t)
	b := c.broker(t, "")
	_, err := connectTLS(t, https(b), rapidmq.TLSConfig{CACertPath: other.file("ca.pem")})
	assertHandshakeFailed(t, err, "trusted CA")
}

// C17 tls: an https:// endpoint at a plaintext broker fails clearly.
func TestC17HTTPSAtAPlaintextBrokerFailsClearly(t *testing.T) {
	c := devCerts(t)
	b := startBroker(t)
	_, err := connectTLS(t, https(b), rapidmq.TLSConfig{CACertPath: c.file("ca.pem")})
	assertHandshakeFailed(t, err, "did not answer with TLS")
}

// C17 tls: with client_auth=required the client pair is accepted, and no certificate is refused.
func TestC17MutualTLSPresentsTheClientCertificate(t *testing.T) {
	c := devCerts(t)
	b := c.broker(t, "required")
	client, err := connectTLS(t, https(b), rapidmq.TLSConfig{
		CACertPath:     c.file("ca.pem"),
		ClientCertPath: c.file("client.pem"),
		ClientKeyPEM:   c.read(t, "client.key"),
	})
	if err != nil {
		t.Fatalf("mutual TLS: %v", err)
	}
	roundTrip(t, client, "over mutual TLS")

	// Without a certificate the broker refuses the handshake. With TLS 1.3 the client learns
	// that only after its side of the handshake, so the connect probe or the first call fails.
	client, err = connectTLS(t, https(b), rapidmq.TLSConfig{CACertPath: c.file("ca.pem")})
	if err == nil {
		_, err = client.Admin().ListTopics(ctxT(t))
	}
	if err == nil {
		t.Fatal("a client without a certificate was served by a broker that requires one")
	}
}
