package rapidmq_test

// A real broker per test, started with the shared launch protocol of tests/testkit:
//
//  1. rapidmq serve --data-dir DIR --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0
//     --ready-file FILE;
//  2. wait for FILE (written atomically once both listeners are bound and storage is open),
//     JSON {"grpc": "127.0.0.1:PORT", "http": "127.0.0.1:PORT", "pid": N};
//  3. stop with SIGTERM (graceful) or SIGKILL (crash tests).
//
// The binary comes from RAPIDMQ_BIN. Each broker gets its own temporary data directory and log
// file; the log is printed when a test fails. Waiting for readiness watches the ready file and
// the process, bounded by readyTimeout: no sleep decides anything.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

const (
	readyTimeout = 60 * time.Second
	// guard bounds anything a test waits on; reaching it fails the test (a hang guard only).
	guard = 60 * time.Second
)

// Broker is a running broker owned by a test; its data directory survives restarts.
type Broker struct {
	t         testing.TB
	dataDir   string
	readyFile string
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{}
	// args are extra `rapidmq serve` arguments (TLS settings, --auth).
	args []string
	// env is extra environment, KEY=value (the bootstrap admin's credentials).
	env []string
	// GRPC is host:port of the gRPC listener.
	GRPC string
}

// URL is the gRPC endpoint, e.g. http://127.0.0.1:40123.
func (b *Broker) URL() string { return "http://" + b.GRPC }

func startBroker(t testing.TB) *Broker {
	t.Helper()
	return startBrokerWith(t)
}

// startBrokerWith starts a broker with extra `rapidmq serve` arguments.
func startBrokerWith(t testing.TB, args ...string) *Broker {
	t.Helper()
	return startBrokerEnv(t, nil, args...)
}

// startBrokerEnv starts a broker with extra environment (KEY=value) and `rapidmq serve`
// arguments.
func startBrokerEnv(t testing.TB, env []string, args ...string) *Broker {
	t.Helper()
	bin := os.Getenv("RAPIDMQ_BIN")
	if bin == "" {
		t.Fatal("RAPIDMQ_BIN must point at the rapidmq binary (cargo build -p rapidmq-cli)")
	}
	dir := t.TempDir()
	b := &Broker{
		t:         t,
		dataDir:   filepath.Join(dir, "data"),
		readyFile: filepath.Join(dir, "ready.json"),
		logPath:   filepath.Join(dir, "broker.log"),
		args:      args,
		env:       env,
	}
	b.launch()
	t.Cleanup(func() {
		b.Kill()
		if t.Failed() {
			t.Logf("---- broker log (%s) ----\n%s", b.logPath, b.log())
		}
	})
	return b
}

func (b *Broker) launch() {
	b.t.Helper()
	if b.cmd != nil {
		b.t.Fatal("the broker is still running")
	}
	_ = os.Remove(b.readyFile)
	log, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	defer log.Close()
	args := append([]string{"serve",
		"--data-dir", b.dataDir,
		"--grpc-listen", "127.0.0.1:0",
		"--http-listen", "127.0.0.1:0",
		"--ready-file", b.readyFile}, b.args...)
	cmd := exec.Command(os.Getenv("RAPIDMQ_BIN"), args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = os.Environ()
	if os.Getenv("RAPIDMQ_LOG") == "" {
		cmd.Env = append(cmd.Env, "RAPIDMQ_LOG=rapidmq=debug,info")
	}
	cmd.Env = append(cmd.Env, b.env...)
	if err := cmd.Start(); err != nil {
		b.t.Fatalf("start %s: %v", os.Getenv("RAPIDMQ_BIN"), err)
	}
	b.cmd = cmd
	b.exited = make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(b.exited)

	deadline := time.After(readyTimeout)
	// Re-checks the ready file and the process; the tick paces the checks, it decides nothing.
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if data, err := os.ReadFile(b.readyFile); err == nil {
			var ready struct {
				GRPC string `json:"grpc"`
			}
			if json.Unmarshal(data, &ready) == nil && ready.GRPC != "" {
				b.GRPC = ready.GRPC
				return
			}
		}
		select {
		case <-b.exited:
			b.cmd = nil
			b.t.Fatalf("broker exited before ready; log:\n%s", b.log())
		case <-deadline:
			b.t.Fatalf("broker not ready after %s; log:\n%s", readyTimeout, b.log())
		case <-tick.C:
		}
	}
}

func (b *Broker) signal(sig syscall.Signal) {
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(sig)
	<-b.exited
	b.cmd = nil
}

// Kill is kill -9.
func (b *Broker) Kill() { b.signal(syscall.SIGKILL) }

// Stop is a graceful stop (SIGTERM).
func (b *Broker) Stop() { b.signal(syscall.SIGTERM) }

// CrashAndRestart kills the broker and starts it again on the same data.
func (b *Broker) CrashAndRestart() {
	b.Kill()
	b.launch()
}

// Restart stops the broker gracefully and starts it again on the same data.
func (b *Broker) Restart() {
	b.Stop()
	b.launch()
}

func (b *Broker) log() string {
	data, _ := os.ReadFile(b.logPath)
	return string(data)
}

// clusterListeners binds count free ports for cluster listeners, for the caller to release
// just before the brokers start. They are picked below the kernel's ephemeral range
// (32768-60999 on Linux): the brokers bind their gRPC and HTTP listeners to port 0, which the
// kernel takes from that range, so a cluster port released there could go to another broker's
// listener first ("cannot bind cluster address ...: Address already in use").
func clusterListeners(t testing.TB, count int) []net.Listener {
	t.Helper()
	const low, span = 20000, 12000
	next := rand.IntN(span)
	var listeners []net.Listener
	for tries := 0; tries < span && len(listeners) < count; tries++ {
		port := low + next%span
		next += 7919
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			listeners = append(listeners, l)
		}
	}
	if len(listeners) < count {
		t.Fatal("no free ports below the ephemeral range")
	}
	return listeners
}

// startCluster starts count cluster-mode nodes (ids 1..count, every one a peer of the others).
// The cluster ports are bound and released first, so every node is told every peer's address
// before any node starts.
func startCluster(t testing.TB, count int) []*Broker {
	t.Helper()
	listeners := clusterListeners(t, count)
	peers := make([]string, count)
	for i, l := range listeners {
		peers[i] = fmt.Sprintf("%d=%s", i+1, l.Addr())
	}
	for _, l := range listeners {
		_ = l.Close()
	}
	list := strings.Join(peers, ",")
	nodes := make([]*Broker, count)
	for i := range nodes {
		nodes[i] = startBrokerWith(t, "--node-id", strconv.Itoa(i+1), "--peers", list)
	}
	return nodes
}

// ctxT is a context bounded by the hang guard.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*guard)
	t.Cleanup(cancel)
	return ctx
}

func connect(t testing.TB, b *Broker) *rapidmq.Client {
	t.Helper()
	client, err := rapidmq.Connect(ctxT(t), rapidmq.NewClientConfig(b.URL()))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return client
}

// setup starts a broker and connects a client to it.
func setup(t testing.TB) (*Broker, *rapidmq.Client) {
	b := startBroker(t)
	return b, connect(t, b)
}

var names atomic.Int64

func uniqueTopic() string {
	return fmt.Sprintf("t%d-%d", os.Getpid(), names.Add(1))
}

func makeTopic(t testing.TB, client *rapidmq.Client, cfg rapidmq.TopicConfig) string {
	t.Helper()
	name := uniqueTopic()
	if cfg.Partitions == 0 {
		cfg.Partitions = 1
	}
	if _, err := client.Admin().CreateTopic(ctxT(t), name, cfg); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	return name
}

func partitions(n uint32) rapidmq.TopicConfig { return rapidmq.TopicConfig{Partitions: n} }

func newProducer(t testing.TB, client *rapidmq.Client, cfg rapidmq.ProducerConfig) *rapidmq.Producer {
	t.Helper()
	p, err := client.NewProducer(ctxT(t), cfg)
	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func subscribe(t testing.TB, client *rapidmq.Client, cfg rapidmq.ConsumerConfig) *rapidmq.Consumer {
	t.Helper()
	c, err := client.Subscribe(ctxT(t), cfg)
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func text(s string) rapidmq.Message { return rapidmq.Message{Value: []byte(s)} }

// publishValues sends "0" .. "n-1" and returns the deliveries.
func publishValues(t testing.TB, p *rapidmq.Producer, n int) []rapidmq.Delivery {
	t.Helper()
	return publishEach(t, p, n, func(i int) rapidmq.Message { return text(strconv.Itoa(i)) })
}

// publishEach sends message(0) .. message(n-1) and returns the deliveries.
func publishEach(t testing.TB, p *rapidmq.Producer, n int, message func(i int) rapidmq.Message) []rapidmq.Delivery {
	t.Helper()
	ctx := ctxT(t)
	futures := make([]*rapidmq.SendFuture, n)
	for i := range futures {
		f, err := p.SendAsync(ctx, message(i))
		if err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
		futures[i] = f
	}
	out := make([]rapidmq.Delivery, n)
	for i, f := range futures {
		d, err := f.Wait(ctx)
		if err != nil {
			t.Fatalf("receipt %d: %v", i, err)
		}
		out[i] = d
	}
	return out
}

// readLog is every message of every partition, read back with Fetch.
func readLog(t testing.TB, client *rapidmq.Client, topic string) []rapidmq.ReceivedMessage {
	t.Helper()
	ctx := ctxT(t)
	info, err := client.Admin().DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var out []rapidmq.ReceivedMessage
	for _, p := range info.Partitions {
		offset := p.LogStartOffset
		for offset < p.HighWatermark {
			fetched, err := client.Fetch(ctx, topic, p.Partition, offset, 1000, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(fetched.Messages) == 0 {
				t.Fatal("fetch made no progress")
			}
			offset = fetched.Messages[len(fetched.Messages)-1].Offset + 1
			out = append(out, fetched.Messages...)
		}
	}
	return out
}

// pollUntil polls until n messages arrived; a 10 s silence fails the test.
func pollUntil(t testing.TB, c *rapidmq.Consumer, n, max int) []rapidmq.ReceivedMessage {
	t.Helper()
	var out []rapidmq.ReceivedMessage
	for len(out) < n {
		got, err := c.Poll(ctxT(t), max, 10*time.Second)
		if err != nil {
			t.Fatalf("poll: %v", err)
		}
		if len(got) == 0 {
			t.Fatalf("stalled at %d", len(out))
		}
		out = append(out, got...)
	}
	return out
}

// eventually re-checks condition (every 20 ms, bounded by guard) until it holds: for state the
// broker applies asynchronously. Each check observes; none decides by elapsed time.
func eventually(t testing.TB, what string, condition func() bool) {
	t.Helper()
	deadline := time.Now().Add(guard)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !condition() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		<-tick.C
	}
}

// code is the stable code of err (0 when it is not a *rapidmq.Error).
func code(err error) rapidmq.Code {
	var e *rapidmq.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return 0
}

func errorf(format string, args ...any) error { return fmt.Errorf(format, args...) }
