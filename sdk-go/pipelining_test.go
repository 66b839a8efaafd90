package rapidmq_test

// C19 pipelining-order-across-restart.

import (
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func TestPipelinedBatchesKeepOrderPerKeyAcrossLostAcksAndABrokerCrash(t *testing.T) {
	const total, keys = 20_000, 16
	broker, client := setup(t)
	topic := makeTopic(t, client, partitions(2))
	cfg := rapidmq.NewProducerConfig(topic)
	cfg.MaxBatchMessages = 50
	cfg.Linger = time.Millisecond
	cfg.MaxInFlightPerPartition = 5
	p := newProducer(t, client, cfg)
	rapidmq.LoseAcks(p, 3) // acks lost mid-window: that batch and later ones are resent

	var mu sync.Mutex
	progress := sync.NewCond(&mu)
	acked := 0
	var failure error
	done := make(chan struct{})
	go func() {
		defer close(done)
		ctx := ctxT(t)
		var window []*rapidmq.SendFuture
		for i := range total {
			f, err := p.SendAsync(ctx, rapidmq.Message{Key: []byte("k" + strconv.Itoa(i%keys)), Value: []byte(strconv.Itoa(i))})
			if err == nil {
				window = append(window, f)
			}
			if err == nil && (len(window) == 2000 || i+1 == total) {
				for _, f := range window {
					if _, err = f.Wait(ctx); err != nil {
						break
					}
				}
				mu.Lock()
				acked += len(window)
				progress.Broadcast()
				mu.Unlock()
				window = window[:0]
			}
			if err != nil {
				mu.Lock()
				failure = err
				progress.Broadcast()
				mu.Unlock()
				return
			}
		}
	}()
	mu.Lock()
	for acked < total/3 && failure == nil {
		progress.Wait()
	}
	mu.Unlock()
	broker.CrashAndRestart()
	if err := client.SetEndpoints(broker.URL()); err != nil {
		t.Fatal(err)
	}
	<-done
	if failure != nil {
		t.Fatal(failure)
	}
	s := p.Stats()
	if s.MaxPartitionInFlight <= 1 || s.Retries < 3 {
		t.Fatalf("batches were pipelined and retried: %+v", s)
	}
	seen := map[int]bool{}
	last := map[string]int{}
	for _, m := range readLog(t, client, topic) {
		v, _ := strconv.Atoi(string(m.Value))
		if seen[v] {
			t.Fatalf("duplicate %d", v)
		}
		seen[v] = true
		if prev, ok := last[string(m.Key)]; ok && prev >= v {
			t.Fatalf("key %s: %d before %d", m.Key, prev, v)
		}
		last[string(m.Key)] = v
	}
	if len(seen) != total {
		t.Fatalf("%d of %d in the log", len(seen), total)
	}
}

// C19 (refusal): a batch refused inside a full pipeline fails alone; the batches after it still
// land, densely and in order.
func TestARefusedBatchInsideAFullPipelineFailsAloneAndLaterBatchesKeepTheirOrder(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, rapidmq.TopicConfig{Partitions: 1, MaxMessageBytes: rapidmq.Ptr(uint32(1024))})
	cfg := rapidmq.NewProducerConfig(topic)
	cfg.MaxBatchMessages = 10
	cfg.Linger = time.Hour
	cfg.MaxInFlightPerPartition = 5
	p := newProducer(t, client, cfg)
	ctx := ctxT(t)
	var futures []*rapidmq.SendFuture
	for i := range 50 {
		m := text(strconv.Itoa(i))
		if i == 25 {
			m.Value = make([]byte, 4096) // its batch (20..29) is refused as a whole
		}
		f, err := p.SendAsync(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.MaxPartitionInFlight < 2 {
		t.Fatalf("the batches were not pipelined: %+v", s)
	}
	next := uint64(0)
	for i, f := range futures {
		d, err := f.Wait(ctx)
		if i >= 20 && i < 30 {
			if !errors.Is(err, rapidmq.ErrMessageTooLarge) {
				t.Fatalf("message %d: %+v %v", i, d, err)
			}
			continue
		}
		if err != nil || d.Offset != next {
			t.Fatalf("message %d: %+v %v, want offset %d", i, d, err, next)
		}
		next++
	}
}
