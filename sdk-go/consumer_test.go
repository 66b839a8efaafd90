package rapidmq_test

// Consumer conformance (C01, C09–C12) against a real broker, and context cancellation of
// polls.

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/xxh3"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func earliest(topic, sub string) rapidmq.ConsumerConfig {
	cfg := rapidmq.NewConsumerConfig(topic, sub)
	cfg.Start = rapidmq.Earliest
	return cfg
}

// C01 publish-consume-10k-order-per-key.
func TestTenThousandKeyedMessagesArriveInOrderPerKey(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(4))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	ctx := ctxT(t)
	var futures []*rapidmq.SendFuture
	for i := range 10_000 {
		f, err := p.SendAsync(ctx, rapidmq.Message{Key: []byte("k" + strconv.Itoa(i%10)), Value: []byte(strconv.Itoa(i))})
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
	cfg := earliest(topic, "order")
	cfg.AutoCommit = true
	c := subscribe(t, client, cfg)
	last := map[string]int{}
	for _, m := range pollUntil(t, c, 10_000, 1000) {
		if m.Partition != uint32(xxh3.Hash(m.Key)%4) {
			t.Fatalf("key %q on partition %d", m.Key, m.Partition)
		}
		v, _ := strconv.Atoi(string(m.Value))
		if prev, ok := last[string(m.Key)]; ok && prev >= v {
			t.Fatalf("key %q: %d after %d", m.Key, v, prev)
		}
		last[string(m.Key)] = v
	}
	if len(last) != 10 {
		t.Fatalf("%d keys", len(last))
	}
}

// C09 prefetch-bound.
func TestPrefetch100NeverBuffersMoreThan100MessagesAheadOfPoll(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(2))
	publishValues(t, newProducer(t, client, rapidmq.NewProducerConfig(topic)), 1000)
	cfg := earliest(topic, "prefetch")
	cfg.Prefetch = 100
	c := subscribe(t, client, cfg)
	received := 0
	for received < 1000 {
		got, err := c.Poll(ctxT(t), 7, 10*time.Second)
		if err != nil || len(got) == 0 {
			t.Fatalf("stalled at %d: %v", received, err)
		}
		received += len(got)
		if b := c.Stats().Buffered; b > 100 {
			t.Fatalf("buffered %d", b)
		}
		for _, m := range got {
			if err := c.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if s := c.Stats(); s.MaxBuffered <= 7 || s.MaxBuffered > 100 || s.Received != 1000 {
		t.Fatalf("stats %+v", s)
	}
}

// C31 prefetch-bytes-bound: 1,000 messages of 1 kB pass through a 64 KiB window again and again;
// a byte credit never granted back would stall the consumer before the end.
func TestPrefetchBytesBoundTheBufferAndEveryMessageStillArrives(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	pcfg := rapidmq.NewProducerConfig(topic)
	pcfg.MaxBatchMessages = 50
	value := strings.Repeat("v", 1000)
	publishEach(t, newProducer(t, client, pcfg), 1000, func(int) rapidmq.Message { return text(value) })
	ctx := ctxT(t)
	cfg := earliest(topic, "bytes")
	cfg.PrefetchBytes = 64 * 1024
	c := subscribe(t, client, cfg)
	eventually(t, "the window filled", func() bool { return c.Stats().Buffered > 50 })
	received := 0
	for received < 1000 {
		got, err := c.Poll(ctx, 7, 10*time.Second)
		if err != nil || len(got) == 0 {
			t.Fatalf("stalled at %d: %v", received, err)
		}
		received += len(got)
	}
	// The window plus the one batch of 50 that may pass it.
	if s := c.Stats(); s.Received != 1000 || s.MaxBuffered > 64*1024/1000+50 {
		t.Fatalf("stats %+v", s)
	}
}

// C10 commit-and-resume (and C14: nack in stream mode is unsupported).
func TestAckedMessagesAreCommittedOnCloseAndANewMemberResumesAfterThem(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	publishValues(t, newProducer(t, client, rapidmq.NewProducerConfig(topic)), 100)
	cfg := earliest(topic, "resume")
	cfg.Prefetch = 10
	c, err := client.Subscribe(ctxT(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for acked < 60 {
		got, err := c.Poll(ctxT(t), 60-acked, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			if m.Offset != uint64(acked) {
				t.Fatalf("offset %d, want %d", m.Offset, acked)
			}
			if err := c.Ack(m); err != nil {
				t.Fatal(err)
			}
			acked++
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := client.Admin().DescribeSubscription(ctxT(t), topic, "resume")
	if err != nil || info.Cursors[0].CommittedOffset != 60 || info.TotalLag != 40 {
		t.Fatalf("info %+v %v", info, err)
	}
	following := subscribe(t, client, rapidmq.NewConsumerConfig(topic, "resume"))
	first := pollUntil(t, following, 1, 1)[0]
	if first.Offset != 60 {
		t.Fatalf("resumed at %d", first.Offset)
	}
	err = following.Nack(first, time.Second)
	if !errors.Is(err, rapidmq.ErrUnsupported) || code(err) != 1001 {
		t.Fatalf("nack: %v", err)
	}
	if e := new(rapidmq.Error); errors.As(err, &e) && e.Retriable {
		t.Fatal("unsupported is not retriable")
	}
}

// C11 contiguous-commits.
func TestOutOfOrderAcksCommitOnlyUpToTheFirstUnackedMessage(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	publishValues(t, newProducer(t, client, rapidmq.NewProducerConfig(topic)), 10)
	c, err := client.Subscribe(ctxT(t), earliest(topic, "gaps"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range pollUntil(t, c, 10, 10) {
		switch {
		case m.Offset == 4:
		case m.Offset%2 == 1: // by position, as an application that kept only offsets would
			if err := c.AckOffset(m.Partition, m.Offset); err != nil {
				t.Fatal(err)
			}
		default:
			if err := c.Ack(m); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	info, err := client.Admin().DescribeSubscription(ctxT(t), topic, "gaps")
	if err != nil || info.Cursors[0].CommittedOffset != 4 {
		t.Fatalf("info %+v %v", info, err)
	}
}

// C12 bad-input-errors (consumer side).
func TestSubscribingToAnUnknownTopicFailsWithTopicNotFound(t *testing.T) {
	_, client := setup(t)
	_, err := client.Subscribe(ctxT(t), rapidmq.NewConsumerConfig("missing-topic", "s"))
	if !errors.Is(err, rapidmq.ErrTopicNotFound) || code(err) != 2001 {
		t.Fatalf("got %v", err)
	}
	_, err = client.Subscribe(ctxT(t), rapidmq.NewConsumerConfig("bad/name", ""))
	if !errors.Is(err, rapidmq.ErrInvalidArgument) || code(err) != 1001 {
		t.Fatalf("got %v", err)
	}
}

func TestMembersOfOneSubscriptionSplitThePartitionsAndTogetherSeeEverything(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(2))
	publishValues(t, newProducer(t, client, rapidmq.NewProducerConfig(topic)), 200)
	cfg := earliest(topic, "group")
	cfg.Prefetch = 10
	cfg.AutoCommit = true
	a, b := subscribe(t, client, cfg), subscribe(t, client, cfg)
	seen := map[string]bool{}
	for rounds := 0; len(seen) < 200 || len(a.Assignment()) != 1 || len(b.Assignment()) != 1; rounds++ {
		if rounds > 10_000 {
			t.Fatalf("seen %d, assignments %v %v", len(seen), a.Assignment(), b.Assignment())
		}
		for _, member := range []*rapidmq.Consumer{a, b} {
			got, err := member.Poll(ctxT(t), 50, 200*time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range got {
				seen[string(m.Value)] = true
			}
		}
	}
	if a.Assignment()[0] == b.Assignment()[0] {
		t.Fatal("both members own the same partition")
	}
}

// The iterator reuses its batch array between polls, never the message bytes: messages kept
// from earlier polls still hold their own keys and values after many later ones.
func TestMessagesKeptFromTheIteratorKeepTheirBytesAcrossPolls(t *testing.T) {
	const n = 5000
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	publishEach(t, newProducer(t, client, rapidmq.NewProducerConfig(topic)), n, func(i int) rapidmq.Message {
		return rapidmq.Message{Key: []byte("k" + strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))}
	})
	ctx := ctxT(t)
	cfg := earliest(topic, "kept")
	cfg.Prefetch = 300 // many polls
	c := subscribe(t, client, cfg)
	var kept []rapidmq.ReceivedMessage
	for m, err := range c.Messages(ctx) {
		if err != nil {
			t.Fatalf("iterator: %v", err)
		}
		kept = append(kept, m)
		if len(kept) == n {
			break
		}
	}
	for i, m := range kept {
		if string(m.Value) != strconv.Itoa(i) || string(m.Key) != "k"+strconv.Itoa(i) || m.Offset != uint64(i) {
			t.Fatalf("message %d: key %q value %q offset %d", i, m.Key, m.Value, m.Offset)
		}
	}
}

// Leaving the Messages loop early leaves what it did not yield for the next poll, and with
// AutoCommit only what it yielded counts as acknowledged: a member that joins after Close
// resumes right after the last message handed out (the iterator takes a batch from the core).
func TestLeavingTheIteratorEarlyAcknowledgesOnlyWhatItHandedOut(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	publishValues(t, newProducer(t, client, rapidmq.NewProducerConfig(topic)), 3000)
	cfg := earliest(topic, "early")
	cfg.AutoCommit = true
	c := subscribe(t, client, cfg)
	eventually(t, "the window filled", func() bool { return c.Stats().Buffered >= 2000 })
	ctx := ctxT(t)
	yielded := 0
	for m, err := range c.Messages(ctx) {
		if err != nil {
			t.Fatalf("iterator: %v", err)
		}
		if m.Offset != uint64(yielded) {
			t.Fatalf("offset %d at %d", m.Offset, yielded)
		}
		yielded++
		if yielded == 10 {
			break
		}
	}
	got, err := c.Poll(ctx, 5, 10*time.Second)
	if err != nil || len(got) != 5 || got[0].Offset != 10 || got[4].Offset != 14 {
		t.Fatalf("the poll after the loop: %v %v", offsets(got), err)
	}
	again := 0
	for m, err := range c.Messages(ctx) {
		if err != nil || m.Offset != 15 {
			t.Fatalf("the next loop starts at %d: %v", m.Offset, err)
		}
		again++
		break
	}
	if again != 1 {
		t.Fatalf("the next loop yielded %d messages before it was left, want 1", again)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	next := subscribe(t, client, cfg)
	m, err := next.Receive(ctx)
	if err != nil || m.Offset != 16 {
		t.Fatalf("a new member resumes at %d, want 16: %v", m.Offset, err)
	}
}

func offsets(ms []rapidmq.ReceivedMessage) []uint64 {
	out := make([]uint64, len(ms))
	for i, m := range ms {
		out[i] = m.Offset
	}
	return out
}

// Receive and the Messages iterator deliver in order; a deadline ends a Receive that would
// otherwise wait for a minute, and a cancelled context ends the iterator.
func TestReceiveAndTheIteratorHonourTheContext(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	publishValues(t, newProducer(t, client, rapidmq.NewProducerConfig(topic)), 5)
	c := subscribe(t, client, earliest(topic, "iter"))
	m, err := c.Receive(ctxT(t))
	if err != nil || string(m.Value) != "0" {
		t.Fatalf("receive: %+v %v", m, err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	var values []string
	for m, err := range c.Messages(ctx) {
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("iterator ended with %v", err)
			}
			break
		}
		values = append(values, string(m.Value))
		if len(values) == 4 {
			cancel()
		}
	}
	if len(values) != 4 || values[0] != "1" || values[3] != "4" {
		t.Fatalf("values %v", values)
	}
	deadline, cancelDeadline := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelDeadline()
	started := time.Now()
	if _, err := c.Receive(deadline); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("receive: %v", err)
	}
	if elapsed := time.Since(started); elapsed > 10*time.Second {
		t.Fatalf("the deadline did not interrupt the wait (%s)", elapsed)
	}
	// The cancelled waits took nothing: a message sent now is the next one received.
	if _, err := newProducer(t, client, rapidmq.NewProducerConfig(topic)).Send(ctxT(t), text("5")); err != nil {
		t.Fatal(err)
	}
	if m, err := c.Receive(ctxT(t)); err != nil || string(m.Value) != "5" {
		t.Fatalf("after cancellation: %+v %v", m, err)
	}
}

func TestAnEphemeralConsumerTailsNewMessagesOnly(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	publishValues(t, p, 5)
	tail := subscribe(t, client, rapidmq.NewConsumerConfig(topic, ""))
	if _, err := p.Send(ctxT(t), text("new")); err != nil {
		t.Fatal(err)
	}
	got := pollUntil(t, tail, 1, 10)
	if len(got) != 1 || string(got[0].Value) != "new" {
		t.Fatalf("got %+v", got)
	}
}
