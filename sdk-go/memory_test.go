package rapidmq_test

// Memory: a long run of sends keeps the process's resident set flat (no per-message leak in
// the binding: cgo handles, futures, native receipts).

import (
	"bufio"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// rssKiB is VmRSS of this process from /proc/self/status, after a full GC.
func rssKiB(t *testing.T) int64 {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatalf("this measurement needs Linux /proc: %v", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		if rest, ok := strings.CutPrefix(scanner.Text(), "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no VmRSS in /proc/self/status")
	return 0
}

func TestOneHundredThousandSendsKeepTheResidentSetFlat(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	value := make([]byte, 100)
	round := func() {
		ctx := ctxT(t)
		futures := make([]*rapidmq.SendFuture, 0, 1000)
		for range 100 {
			futures = futures[:0]
			for range 1000 {
				f, err := p.SendAsync(ctx, rapidmq.Message{Value: value})
				if err != nil {
					t.Fatal(err)
				}
				futures = append(futures, f)
			}
			for _, f := range futures {
				if _, err := f.Wait(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	round() // warm-up: runtime threads, allocator pools, connection buffers
	before := rssKiB(t)
	round()
	after := rssKiB(t)
	t.Logf("RSS before %d KiB, after 100k more sends %d KiB (growth %d KiB)", before, after, after-before)
	// A leak of even 100 bytes per send would add ~10 MiB; allow allocator noise well below it.
	if growth := after - before; growth > 8*1024 {
		t.Fatalf("RSS grew by %d KiB over 100k sends", growth)
	}
}
