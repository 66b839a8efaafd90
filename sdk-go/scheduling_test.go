package rapidmq_test

// C16 delay-and-ttl and C18 receipts-scheduled-and-deduplicated. The broker's own delay
// schedule is the clock here: no test sleeps.

import (
	"slices"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// C16: a delayed message.
func TestADelayedMessageGetsAScheduledReceiptAndIsConsumedOnlyAfterItsDelay(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	ctx := ctxT(t)
	sentAt := time.Now()
	delayed, err := p.Send(ctx, rapidmq.Message{Value: []byte("later"), Delay: 1500 * time.Millisecond})
	if err != nil || delayed.Status != rapidmq.SendScheduled {
		t.Fatalf("delayed %+v %v", delayed, err)
	}
	now, err := p.Send(ctx, text("now"))
	if err != nil || now.Status != rapidmq.SendAppended || now.Offset != 0 {
		t.Fatalf("now %+v %v", now, err)
	}
	c := subscribe(t, client, earliest(topic, "delay"))
	if first := pollUntil(t, c, 1, 1); string(first[0].Value) != "now" {
		t.Fatalf("first %q", first[0].Value)
	}
	second := pollUntil(t, c, 1, 1)[0]
	if string(second.Value) != "later" || time.Since(sentAt) < 1500*time.Millisecond {
		t.Fatalf("second %q after %s", second.Value, time.Since(sentAt))
	}
	if second.Offset != 1 || second.DeliverAt.IsZero() {
		t.Fatalf("second %+v", second)
	}
}

// waitForMarker consumes until the delayed "marker" message appears: the broker's schedule says
// that much time has passed.
func waitForMarker(t *testing.T, client *rapidmq.Client, topic string) {
	t.Helper()
	clock := subscribe(t, client, earliest(topic, "clock"))
	var values []string
	for !slices.Contains(values, "marker") {
		for _, m := range pollUntil(t, clock, 1, 10) {
			values = append(values, string(m.Value))
		}
	}
}

// C16: TTL.
func TestAnExpiredMessageIsNeverDelivered(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	ctx := ctxT(t)
	for _, m := range []rapidmq.Message{
		{Value: []byte("expires"), TTL: 300 * time.Millisecond},
		{Value: []byte("lives"), TTL: 10 * time.Minute},
		{Value: []byte("marker"), Delay: time.Second},
	} {
		if _, err := p.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	waitForMarker(t, client, topic)
	got := pollUntil(t, subscribe(t, client, earliest(topic, "late")), 2, 10)
	if len(got) != 2 || string(got[0].Value) != "lives" || string(got[1].Value) != "marker" {
		t.Fatalf("got %+v", got)
	}
	if got[0].TTL != 10*time.Minute {
		t.Fatalf("ttl %s", got[0].TTL)
	}
}

func withMsgID(value, id string) rapidmq.Message {
	return rapidmq.Message{Value: []byte(value), Headers: []rapidmq.Header{{Key: rapidmq.MsgIDHeader, Value: []byte(id)}}}
}

// C18 (within the window).
func TestARepeatedMsgIDWithinTheWindowGetsADeduplicatedReceiptAndOneCopyIsKept(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, rapidmq.TopicConfig{Partitions: 1, DedupWindow: rapidmq.Ptr(time.Minute)})
	first := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	second := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	ctx := ctxT(t)
	if d, err := first.Send(ctx, withMsgID("a1", "order-1")); err != nil || d.Offset != 0 {
		t.Fatalf("first %+v %v", d, err)
	}
	// One batch from another producer: a repeat, a new id, a delayed one and a plain message.
	var futures []*rapidmq.SendFuture
	for _, m := range []rapidmq.Message{
		withMsgID("a2", "order-1"),
		withMsgID("b", "order-2"),
		{Value: []byte("c"), Delay: time.Hour},
		text("d"),
	} {
		f, err := second.SendAsync(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	if err := second.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	type outcome struct {
		status rapidmq.SendStatus
		offset uint64
	}
	want := []outcome{{rapidmq.SendDeduplicated, 0}, {rapidmq.SendAppended, 1}, {rapidmq.SendScheduled, 0}, {rapidmq.SendAppended, 2}}
	for i, f := range futures {
		d, err := f.Wait(ctx)
		got := outcome{d.Status, d.Offset}
		if d.Status != rapidmq.SendAppended {
			got.offset = 0
		}
		if err != nil || got != want[i] {
			t.Fatalf("receipt %d: %+v %v, want %+v", i, d, err, want[i])
		}
	}
	var values []string
	for _, m := range readLog(t, client, topic) {
		values = append(values, string(m.Value))
	}
	if !slices.Equal(values, []string{"a1", "b", "d"}) {
		t.Fatalf("log %v", values)
	}
}

// C18 (after the window).
func TestAfterTheDedupWindowARepeatedMsgIDIsKept(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, rapidmq.TopicConfig{Partitions: 1, DedupWindow: rapidmq.Ptr(500 * time.Millisecond)})
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	ctx := ctxT(t)
	if _, err := p.Send(ctx, withMsgID("x", "id")); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctx, rapidmq.Message{Value: []byte("marker"), Delay: time.Second}); err != nil {
		t.Fatal(err)
	}
	// The broker's schedule is the clock: the marker appears a second later, past the window.
	waitForMarker(t, client, topic)
	again, err := p.Send(ctx, withMsgID("x", "id"))
	if err != nil || again.Status != rapidmq.SendAppended {
		t.Fatalf("again %+v %v", again, err)
	}
	n := 0
	for _, m := range readLog(t, client, topic) {
		if string(m.Value) == "x" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d copies of x", n)
	}
}
