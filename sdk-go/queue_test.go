package rapidmq_test

// Queue mode (C15, C20, C21, C22, C26): per-message acks, nack with delay, deadlines, dead letters,
// priority, restarts and bad input. Waiting for a delay or a deadline is time passing by design.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func sendAll(t *testing.T, client *rapidmq.Client, topic string, messages ...rapidmq.Message) {
	t.Helper()
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	ctx := ctxT(t)
	var futures []*rapidmq.SendFuture
	for _, m := range messages {
		f, err := p.SendAsync(ctx, m)
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

func queueConfig(topic, sub string, queue rapidmq.QueueSettings) rapidmq.ConsumerConfig {
	cfg := rapidmq.NewConsumerConfig(topic, sub)
	cfg.Start = rapidmq.Earliest
	cfg.CommitInterval = 20 * time.Millisecond
	cfg.Queue = queue
	return cfg
}

func worker(t *testing.T, client *rapidmq.Client, cfg rapidmq.ConsumerConfig) *rapidmq.QueueConsumer {
	t.Helper()
	q, err := client.SubscribeQueue(ctxT(t), cfg)
	if err != nil {
		t.Fatalf("subscribe queue: %v", err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func receive(t *testing.T, q *rapidmq.QueueConsumer, n int) []rapidmq.QueueMessage {
	t.Helper()
	var out []rapidmq.QueueMessage
	for len(out) < n {
		got, err := q.Poll(ctxT(t), n-len(out), 30*time.Second)
		if err != nil || len(got) == 0 {
			t.Fatalf("stalled after %d deliveries: %v", len(out), err)
		}
		out = append(out, got...)
	}
	return out
}

// C15 (competing consumers).
func TestCompetingConsumersShareTheWorkAndEachMessageIsDeliveredOnce(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(2))
	const total = 400
	var msgs []rapidmq.Message
	for i := range total {
		msgs = append(msgs, text(strconv.Itoa(i)))
	}
	sendAll(t, client, topic, msgs...)
	var mu sync.Mutex
	counts := map[[2]uint64]int{}
	perWorker := [2]int{}
	var workers []*rapidmq.QueueConsumer
	for range 2 {
		cfg := queueConfig(topic, "pool", rapidmq.QueueSettings{})
		cfg.Prefetch = 10
		workers = append(workers, worker(t, client, cfg))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for i, q := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(guard)
			for time.Now().Before(deadline) {
				mu.Lock()
				done := len(counts) >= total
				mu.Unlock()
				if done {
					return
				}
				got, err := q.Poll(ctxT(t), 50, 200*time.Millisecond)
				if err != nil {
					errs <- err
					return
				}
				for _, d := range got {
					if d.Attempt != 1 {
						errs <- errors.New("a first delivery has attempt 1")
						return
					}
					if err := q.Ack(d); err != nil {
						errs <- err
						return
					}
					mu.Lock()
					counts[[2]uint64{uint64(d.Partition), d.Offset}]++
					perWorker[i]++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(counts) != total {
		t.Fatalf("%d distinct deliveries", len(counts))
	}
	for k, n := range counts {
		if n != 1 {
			t.Fatalf("%v came %d times", k, n)
		}
	}
	if perWorker[0] == 0 || perWorker[1] == 0 {
		t.Fatalf("per worker %v", perWorker)
	}
	for _, q := range workers {
		if err := q.Close(); err != nil {
			t.Fatal(err)
		}
	}
	info, err := client.Admin().DescribeSubscription(ctxT(t), topic, "pool")
	if err != nil || info.Mode != rapidmq.ModeQueue || info.QueueStats == nil || info.QueueStats.InFlight != 0 {
		t.Fatalf("info %+v %v", info, err)
	}
}

// C15 (nack, dead letters, replay).
func TestNackedMessageIsRedeliveredThenDeadLetteredAfterMaxDeliveriesAndReplayed(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	sendAll(t, client, topic, text("poison"))
	q := worker(t, client, queueConfig(topic, "w", rapidmq.QueueSettings{MaxDeliveries: rapidmq.Ptr(uint32(2))}))
	first := receive(t, q, 1)[0]
	if first.Attempt != 1 {
		t.Fatalf("attempt %d", first.Attempt)
	}
	nackedAt := time.Now()
	if err := q.Nack(first, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	second := receive(t, q, 1)[0]
	if since := time.Since(nackedAt); since < 1500*time.Millisecond {
		t.Fatalf("redelivered after %s", since)
	}
	if second.Attempt != 2 || string(second.Value) != "poison" {
		t.Fatalf("second %+v", second)
	}
	if err := q.Nack(second, 0); err != nil {
		t.Fatal(err)
	}
	admin, dlq := client.Admin(), topic+".dlq"
	pending := func(n int) func() bool {
		return func() bool {
			page, err := admin.ListDeadLetters(ctxT(t), dlq, 10, "")
			return err == nil && len(page.DeadLetters) == n
		}
	}
	eventually(t, "the message is dead-lettered", pending(1))
	page, err := admin.ListDeadLetters(ctxT(t), dlq, 10, "")
	if err != nil || len(page.DeadLetters) != 1 || page.NextPageToken != "" {
		t.Fatalf("page %+v %v", page, err)
	}
	l := page.DeadLetters[0]
	if l.Partition != 0 || l.Offset != 0 || l.OriginalTopic != topic || l.OriginalOffset != 0 || l.Attempts != 2 || string(l.Message.Value) != "poison" {
		t.Fatalf("letter %+v", l)
	}
	if v, ok := l.Message.Header("rapidmq-dlq-topic"); !ok || string(v) != topic {
		t.Fatalf("dlq header %q", v)
	}
	info, err := admin.DescribeSubscription(ctxT(t), topic, "w")
	if err != nil || info.QueueStats.DeadLettered != 1 {
		t.Fatalf("info %+v %v", info, err)
	}

	// Two more letters: pages of two follow the token, and replay counts down what remains.
	sendAll(t, client, topic, text("p1"), text("p2"))
	for range 2 {
		for _, m := range receive(t, q, 2) {
			if err := q.Nack(m, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	eventually(t, "three letters are pending", pending(3))
	pageOne, err := admin.ListDeadLetters(ctxT(t), dlq, 2, "")
	if err != nil || pageOne.NextPageToken == "" {
		t.Fatalf("first page %+v %v", pageOne, err)
	}
	pageTwo, err := admin.ListDeadLetters(ctxT(t), dlq, 2, pageOne.NextPageToken)
	if err != nil || pageTwo.NextPageToken != "" {
		t.Fatalf("second page %+v %v", pageTwo, err)
	}
	var offsets []uint64
	for _, d := range append(pageOne.DeadLetters, pageTwo.DeadLetters...) {
		offsets = append(offsets, d.Offset)
	}
	if len(offsets) != 3 || offsets[0] != 0 || offsets[1] != 1 || offsets[2] != 2 {
		t.Fatalf("each letter once, in order: %v", offsets)
	}
	if _, err := admin.ListDeadLetters(ctxT(t), dlq, 2, "not-a-token"); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("bad token: %v", err)
	}
	if _, err := admin.ListDeadLetters(ctxT(t), dlq, 1001, ""); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("page above 1000: %v", err)
	}

	if r, err := admin.ReplayDeadLetters(ctxT(t), dlq, 2); err != nil || r.Replayed != 2 || r.Remaining != 1 {
		t.Fatalf("replayed %+v %v", r, err)
	}
	if r, err := admin.ReplayDeadLetters(ctxT(t), dlq, 0); err != nil || r.Replayed != 1 || r.Remaining != 0 {
		t.Fatalf("replayed %+v %v", r, err)
	}
	back := map[string]uint32{}
	for _, m := range receive(t, q, 3) {
		back[string(m.Value)] = m.Attempt
		if err := q.Ack(m); err != nil {
			t.Fatal(err)
		}
	}
	if len(back) != 3 || back["poison"] != 1 || back["p1"] != 1 || back["p2"] != 1 {
		t.Fatalf("each replayed message comes back once and starts over: %v", back)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if page, err := admin.ListDeadLetters(ctxT(t), dlq, 10, ""); err != nil || len(page.DeadLetters) != 0 || page.NextPageToken != "" {
		t.Fatalf("after replay %+v %v", page, err)
	}
}

// C15 (deadline, extension) and C22 (RECEIPT_UNKNOWN surfaces without ending the consumer).
func TestAnUnackedDeliveryComesBackAfterItsDeadlineUnlessExtended(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	sendAll(t, client, topic, text("slow"), text("stuck"))
	q := worker(t, client, queueConfig(topic, "w", rapidmq.QueueSettings{AckDeadline: 800 * time.Millisecond}))
	got := map[string]rapidmq.QueueMessage{}
	for _, d := range receive(t, q, 2) {
		got[string(d.Value)] = d
	}
	slow, stuck := got["slow"], got["stuck"]
	if err := q.ExtendDeadline(slow, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	again := receive(t, q, 1)[0]
	if since := time.Since(started); since < 500*time.Millisecond {
		t.Fatalf("came back after %s", since)
	}
	if string(again.Value) != "stuck" || again.Attempt != 2 {
		t.Fatalf("again %+v", again)
	}
	for _, d := range []rapidmq.QueueMessage{again, slow, stuck} { // stuck: the timed-out first delivery
		if err := q.Ack(d); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the stale ack is reported", func() bool { return q.Stats().StreamErrors >= 1 })
	errs := q.TakeStreamErrors()
	if len(errs) != 1 || !errors.Is(errs[0], rapidmq.ErrReceiptUnknown) || code(errs[0]) != 4007 {
		t.Fatalf("stream errors %v", errs)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := client.Admin().DescribeSubscription(ctxT(t), topic, "w")
	if err != nil || info.QueueStats.InFlight != 0 {
		t.Fatalf("info %+v %v", info, err)
	}
}

// C20 queue-priority.
func TestABacklogOfMixedPrioritiesIsDeliveredHighestFirst(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	priorities := []uint8{3, 9, 0, 5, 9, 1, 7}
	var msgs []rapidmq.Message
	for _, p := range priorities {
		msgs = append(msgs, rapidmq.Message{Value: []byte("p" + strconv.Itoa(int(p))), Priority: p})
	}
	sendAll(t, client, topic, msgs...)
	q := worker(t, client, queueConfig(topic, "pager", rapidmq.QueueSettings{}))
	var got []uint8
	for _, d := range receive(t, q, len(priorities)) {
		got = append(got, d.Priority)
	}
	want := []uint8{9, 9, 7, 5, 3, 1, 0}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// C21 queue-restart-stale-receipts.
func TestAfterABrokerRestartTheUnackedMessageReturnsAndStaleReceiptsAreDropped(t *testing.T) {
	broker, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	sendAll(t, client, topic, text("a"), text("b"))
	q := worker(t, client, queueConfig(topic, "w", rapidmq.QueueSettings{AckDeadline: time.Minute}))
	both := receive(t, q, 2)
	acked, held := both[0], both[1]
	if err := q.Ack(acked); err != nil {
		t.Fatal(err)
	}
	if err := q.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	admin := client.Admin()
	eventually(t, "the ack is recorded", func() bool {
		info, err := admin.DescribeSubscription(ctxT(t), topic, "w")
		return err == nil && info.TotalLag == 1
	})
	broker.Restart()
	if err := client.SetEndpoints(broker.URL()); err != nil {
		t.Fatal(err)
	}
	again := receive(t, q, 1)[0]
	if string(again.Value) != string(held.Value) || again.Attempt != 2 {
		t.Fatalf("again %+v; the attempt count survives the restart", again)
	}
	if q.Stats().Reconnects < 1 {
		t.Fatal("no reconnect counted")
	}
	if err := q.Ack(held); err != nil {
		t.Fatal(err)
	}
	if n := q.Stats().StaleReceipts; n != 1 {
		t.Fatalf("stale receipts %d: the old receipt is dropped locally", n)
	}
	if err := q.Ack(again); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if errs := q.TakeStreamErrors(); len(errs) != 0 {
		t.Fatalf("stream errors %v", errs)
	}
	info, err := admin.DescribeSubscription(ctxT(t), topic, "w")
	if err != nil || info.QueueStats.InFlight != 0 {
		t.Fatalf("info %+v %v", info, err)
	}
}

// C22 queue-and-message-bad-input.
func TestQueueSettingsAreCreatedAndDescribedAndBadOnesGetTheirCodes(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	admin, ctx := client.Admin(), ctxT(t)
	info, err := admin.CreateQueueSubscription(ctx, topic, "jobs", rapidmq.Earliest, rapidmq.QueueSettings{
		AckDeadline: 12 * time.Second, MaxDeliveries: rapidmq.Ptr(uint32(7)), DeadLetterTopic: topic + "-dead",
	})
	if err != nil || info.Mode != rapidmq.ModeQueue {
		t.Fatalf("create %+v %v", info, err)
	}
	described, err := admin.DescribeSubscription(ctx, topic, "jobs")
	if err != nil || described.Queue == nil || *described.Queue != (rapidmq.QueueInfo{AckDeadline: 12 * time.Second, MaxDeliveries: 7, DeadLetterTopic: topic + "-dead"}) {
		t.Fatalf("described %+v %v", described.Queue, err)
	}
	_, err = client.SubscribeQueue(ctx, queueConfig(topic, "zero", rapidmq.QueueSettings{MaxDeliveries: rapidmq.Ptr(uint32(0))}))
	if !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("max deliveries 0: %v", err)
	}
	if _, err := client.SubscribeQueue(ctx, rapidmq.NewConsumerConfig(topic, "")); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("no subscription name: %v", err)
	}
	if _, err := admin.CreateSubscription(ctx, topic, "stream", rapidmq.Earliest); err != nil {
		t.Fatal(err)
	}
	_, err = client.SubscribeQueue(ctx, queueConfig(topic, "stream", rapidmq.QueueSettings{}))
	if !errors.Is(err, rapidmq.ErrSubscriptionModeMismatch) || code(err) != 4003 {
		t.Fatalf("mode mismatch: %v", err)
	}
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	_, err = p.Send(ctx, rapidmq.Message{Value: []byte("too high"), Priority: 10})
	if !errors.Is(err, rapidmq.ErrInvalidPriority) || code(err) != 3005 {
		t.Fatalf("priority 10: %v", err)
	}
	_, err = p.Send(ctx, rapidmq.Message{Value: []byte("far"), DeliverAt: time.Now().AddDate(10, 0, 0)})
	if !errors.Is(err, rapidmq.ErrDeliverAtOutOfRange) {
		t.Fatalf("far deliver_at: %v", err)
	}
}

// C26 queue-handler.
func TestAHandlerAcksWhatItHandlesAndNacksFailuresWithBackoffUntilDeadLettered(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(2))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	for i := range 18 {
		if _, err := p.SendAsync(ctxT(t), text(fmt.Sprintf("ok-%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []string{"flaky", "poison"} {
		if _, err := p.SendAsync(ctxT(t), text(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	q := worker(t, client, queueConfig(topic, "handled", rapidmq.QueueSettings{MaxDeliveries: rapidmq.Ptr(uint32(3))}))

	type attempt struct {
		n  uint32
		at time.Time
	}
	var mu sync.Mutex
	handled := map[string][]attempt{}
	var running, most atomic.Int32
	cfg := rapidmq.NewRunConfig()
	cfg.Concurrency, cfg.RetryBackoff, cfg.MaxRetryBackoff = 4, 200*time.Millisecond, 5*time.Second
	ctx, stop := context.WithCancel(ctxT(t))
	defer stop()
	done := make(chan error, 1)
	go func() {
		done <- q.Run(ctx, cfg, func(ctx context.Context, m rapidmq.QueueMessage) error {
			now := running.Add(1)
			defer running.Add(-1)
			for old := most.Load(); now > old && !most.CompareAndSwap(old, now); old = most.Load() {
			}
			value := string(m.Value)
			mu.Lock()
			handled[value] = append(handled[value], attempt{m.Attempt, time.Now()})
			mu.Unlock()
			switch {
			case value == "poison":
				return errors.New("always fails")
			case value == "flaky" && m.Attempt == 1:
				panic("fails once") // a panic is a failure too
			}
			return nil
		})
	}()

	dlq := topic + ".dlq"
	eventually(t, "the poison message is dead-lettered", func() bool {
		page, err := client.Admin().ListDeadLetters(ctxT(t), dlq, 10, "")
		return err == nil && len(page.DeadLetters) == 1
	})
	eventually(t, "everything else is handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) == 20 && len(handled["flaky"]) == 2
	})
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(guard):
		t.Fatal("Run did not return")
	}

	mu.Lock()
	defer mu.Unlock()
	attempts := func(v string) []uint32 {
		var out []uint32
		for _, a := range handled[v] {
			out = append(out, a.n)
		}
		return out
	}
	for i := range 18 {
		if got := attempts(fmt.Sprintf("ok-%d", i)); !slices.Equal(got, []uint32{1}) {
			t.Fatalf("ok-%d attempts %v", i, got)
		}
	}
	flaky, poison := handled["flaky"], handled["poison"]
	if got := attempts("flaky"); !slices.Equal(got, []uint32{1, 2}) || flaky[1].at.Sub(flaky[0].at) < 200*time.Millisecond {
		t.Fatalf("flaky %v", flaky)
	}
	if got := attempts("poison"); !slices.Equal(got, []uint32{1, 2, 3}) ||
		poison[1].at.Sub(poison[0].at) < 200*time.Millisecond || poison[2].at.Sub(poison[1].at) < 400*time.Millisecond {
		t.Fatalf("poison %v", poison)
	}
	page, err := client.Admin().ListDeadLetters(ctxT(t), dlq, 10, "")
	if err != nil || string(page.DeadLetters[0].Message.Value) != "poison" || page.DeadLetters[0].Attempts != 3 {
		t.Fatalf("dead letters %+v %v", page, err)
	}
	if m := most.Load(); m > 4 {
		t.Fatalf("%d handled at once, want at most 4", m)
	}
	if d := cfg.RetryDelay(3); d != 800*time.Millisecond {
		t.Fatalf("retry delay of attempt 3: %v", d)
	}
	info, err := client.Admin().DescribeSubscription(ctxT(t), topic, "handled")
	if err != nil || info.QueueStats == nil || info.QueueStats.InFlight != 0 {
		t.Fatalf("after the run: %+v %v", info, err)
	}
}
