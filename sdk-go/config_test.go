package rapidmq_test

// Configuration shows the core's defaults; unsupported options are explicit (C14).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func TestConfigDefaultsAreTheCores(t *testing.T) {
	p := rapidmq.NewProducerConfig("t")
	if p.Linger != 5*time.Millisecond || p.MaxBatchMessages != 1000 || p.MaxBatchBytes != 1<<20 ||
		!p.Idempotence || p.MaxInFlightPerPartition != 5 {
		t.Fatalf("producer %+v", p)
	}
	c := rapidmq.NewConsumerConfig("t", "s")
	if c.Prefetch != 0 || c.PrefetchBytes != 0 || c.AutoCommit || c.CommitInterval != 500*time.Millisecond || c.Start != rapidmq.Latest {
		t.Fatalf("consumer %+v", c)
	}
	cc := rapidmq.NewClientConfig()
	if cc.ConnectTimeout != 5*time.Second || cc.RequestTimeout != 30*time.Second {
		t.Fatalf("client %+v", cc)
	}
}

// C14: credentials are no longer UNSUPPORTED; they reach the connect (nothing on port 1).
func TestCredentialsArePassedThroughToTheConnect(t *testing.T) {
	ctx := context.Background()
	cfg := rapidmq.NewClientConfig("http://127.0.0.1:1")
	cfg.Token = "secret"
	_, err := rapidmq.Connect(ctx, cfg)
	var e *rapidmq.Error
	if !errors.Is(err, rapidmq.ErrUnavailable) || !errors.As(err, &e) || !e.Retriable {
		t.Fatalf("token: %v", err)
	}
	cfg = rapidmq.NewClientConfig("http://127.0.0.1:1")
	cfg.User, cfg.Password = "alice", "secret"
	if _, err := rapidmq.Connect(ctx, cfg); !errors.Is(err, rapidmq.ErrUnavailable) {
		t.Fatalf("user: %v", err)
	}
	cfg.Token = "secret"
	for _, text := range []string{fmt.Sprint(cfg), fmt.Sprintf("%+v", cfg), fmt.Sprintf("%#v", cfg)} {
		if strings.Contains(text, "secret") || !strings.Contains(text, "alice") {
			t.Fatalf("printed: %s", text)
		}
	}
}

// A TLS config printed in a log shows where the key is, never the key.
func TestTLSConfigIsPrintedWithoutThePrivateKey(t *testing.T) {
	tls := rapidmq.TLSConfig{ClientKeyPath: "/etc/rapidmq/client.key", ClientKeyPEM: "-----BEGIN PRIVATE KEY-----\nsecret"}
	for _, text := range []string{fmt.Sprint(tls), fmt.Sprintf("%+v", tls), fmt.Sprintf("%#v", &tls)} {
		if strings.Contains(text, "secret") || !strings.Contains(text, "client.key") {
			t.Fatalf("printed: %s", text)
		}
	}
}

// TLS with an http:// endpoint would silently not be used; a PEM given twice is ambiguous.
func TestTLSSettingsAreCheckedBeforeConnecting(t *testing.T) {
	ctx := context.Background()
	invalid := func(endpoint string, tls rapidmq.TLSConfig) error {
		cfg := rapidmq.NewClientConfig(endpoint)
		cfg.TLS = &tls
		_, err := rapidmq.Connect(ctx, cfg)
		var e *rapidmq.Error
		if !errors.As(err, &e) || e.Kind != rapidmq.KindInvalidArgument || e.Retriable {
			return fmt.Errorf("%s %+v: %v", endpoint, tls, err)
		}
		return nil
	}
	for _, c := range []struct {
		endpoint string
		tls      rapidmq.TLSConfig
	}{
		{"http://127.0.0.1:1", rapidmq.TLSConfig{}},
		{"https://127.0.0.1:1", rapidmq.TLSConfig{CACertPath: "ca.pem", CACertPEM: "-----BEGIN"}},
		{"https://127.0.0.1:1", rapidmq.TLSConfig{ClientCertPath: "c.pem"}},
		{"https://127.0.0.1:1", rapidmq.TLSConfig{ClientKeyPEM: "-----BEGIN"}},
	} {
		if err := invalid(c.endpoint, c.tls); err != nil {
			t.Fatal(err)
		}
	}
}

// C14: nothing listens on port 1.
func TestUnreachableEndpointIsARetriableUnavailableError(t *testing.T) {
	cfg := rapidmq.NewClientConfig("http://127.0.0.1:1")
	cfg.ConnectTimeout = 500 * time.Millisecond
	_, err := rapidmq.Connect(context.Background(), cfg)
	var e *rapidmq.Error
	if !errors.Is(err, rapidmq.ErrUnavailable) || !errors.As(err, &e) || !e.Retriable || e.Code != 5003 {
		t.Fatalf("got %v", err)
	}
}

func TestBadSettingsAreInvalidArguments(t *testing.T) {
	if _, err := rapidmq.Connect(context.Background(), rapidmq.NewClientConfig("not-a-url")); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("url: %v", err)
	}
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	cfg := rapidmq.NewProducerConfig(topic)
	cfg.MaxBatchMessages = 0
	if _, err := client.NewProducer(ctxT(t), cfg); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("producer: %v", err)
	}
	cc := rapidmq.NewConsumerConfig(topic, "s")
	cc.CommitInterval = 0
	if _, err := client.Subscribe(ctxT(t), cc); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("consumer: %v", err)
	}
}

func TestACancelledContextStopsACallBeforeItStarts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rapidmq.Connect(ctx, rapidmq.NewClientConfig("http://127.0.0.1:1")); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
}
