package rapidmq_test

// C08 retry-across-restart-no-duplicates: a broker crash (or graceful restart) mid-run.

import (
	"strconv"
	"sync"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func TestProducerAndConsumerCarryOnAcrossABrokerCrashWithoutLossOrDuplicates(t *testing.T) {
	carryOnAcrossRestart(t, true)
}

func TestProducerAndConsumerCarryOnAcrossAGracefulBrokerRestart(t *testing.T) {
	carryOnAcrossRestart(t, false)
}

func carryOnAcrossRestart(t *testing.T, crash bool) {
	const total = 3000
	broker, client := setup(t)
	topic := makeTopic(t, client, partitions(2))
	producer := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	cfg := earliest(topic, "restart")
	cfg.Prefetch = 100
	cfg.CommitInterval = 50 * time.Millisecond
	consumer := subscribe(t, client, cfg)

	var mu sync.Mutex
	progress := sync.NewCond(&mu)
	acked, seen := map[int]bool{}, map[int]bool{}
	var failures []error
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		progress.Broadcast()
		mu.Unlock()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		ctx := ctxT(t)
		var window []*rapidmq.SendFuture
		for i := range total {
			f, err := producer.SendAsync(ctx, rapidmq.Message{Key: []byte("k" + strconv.Itoa(i%7)), Value: []byte(strconv.Itoa(i))})
			if err != nil {
				fail(err)
				return
			}
			window = append(window, f)
			if len(window) == 100 || i+1 == total {
				for j, f := range window {
					if _, err := f.Wait(ctx); err != nil {
						fail(err)
						return
					}
					mu.Lock()
					acked[i+1-len(window)+j] = true
					mu.Unlock()
				}
				window = window[:0]
				mu.Lock()
				progress.Broadcast()
				mu.Unlock()
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n >= total {
				return
			}
			got, err := consumer.Poll(ctxT(t), 500, 30*time.Second)
			if err != nil {
				fail(err)
				return
			}
			if len(got) == 0 {
				fail(errorf("consumer stalled at %d", n))
				return
			}
			for _, m := range got {
				v, _ := strconv.Atoi(string(m.Value))
				mu.Lock()
				seen[v] = true
				mu.Unlock()
				if err := consumer.Ack(m); err != nil {
					fail(err)
					return
				}
			}
		}
	}()
	mu.Lock()
	for len(acked) < total/3 && len(failures) == 0 {
		progress.Wait()
	}
	mu.Unlock()
	if crash {
		broker.CrashAndRestart()
	} else {
		broker.Restart()
	}
	if err := client.SetEndpoints(broker.URL()); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("failures: %v", failures)
	}
	if len(acked) != total || len(seen) != total {
		t.Fatalf("acked %d, seen %d", len(acked), len(seen))
	}
	if consumer.Stats().Reconnects < 1 {
		t.Fatal("the consumer did not reconnect")
	}
	if err := consumer.Close(); err != nil {
		t.Fatal(err)
	}
	if err := producer.Close(); err != nil {
		t.Fatal(err)
	}
	inLog := map[int]bool{}
	for _, m := range readLog(t, client, topic) {
		v, _ := strconv.Atoi(string(m.Value))
		if inLog[v] {
			t.Fatalf("duplicate %d in the log", v)
		}
		inLog[v] = true
	}
	for v := range acked {
		if !inLog[v] {
			t.Fatalf("acked %d is missing", v)
		}
	}
}
