package rapidmq_test

// Producer conformance (C02–C07) against a real broker, and context cancellation of sends.

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

// C02 batching-by-linger.
func TestTenThousandSendsWith5msLingerMakeFarFewerRequestsThanMessages(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	cfg := rapidmq.NewProducerConfig(topic)
	cfg.Linger = 5 * time.Millisecond
	p := newProducer(t, client, cfg)
	for i, d := range publishValues(t, p, 10_000) {
		if d.Status != rapidmq.SendAppended || d.Offset != uint64(i) {
			t.Fatalf("delivery %d: %+v", i, d)
		}
	}
	s := p.Stats()
	if s.MessagesAcked != 10_000 || s.Retries != 0 || s.Requests*10 > 10_000 {
		t.Fatalf("stats %+v", s)
	}
}

// C03 batching-by-size.
func TestAFullBatchIsSentWithoutWaitingForLinger(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	cfg := rapidmq.NewProducerConfig(topic)
	cfg.Linger = time.Hour
	cfg.MaxBatchMessages = 100
	p := newProducer(t, client, cfg)
	ctx := ctxT(t)
	var futures []*rapidmq.SendFuture
	for i := range 150 {
		f, err := p.SendAsync(ctx, text(strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures[:100] {
		if d, err := f.Wait(ctx); err != nil || d.Status != rapidmq.SendAppended {
			t.Fatalf("full batch: %+v %v", d, err)
		}
	}
	if b := p.Stats().Batches; b != 1 {
		t.Fatalf("batches %d", b)
	}
	if _, _, done := futures[100].Result(); done {
		t.Fatal("the partial batch waits for the hour-long linger")
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for i, f := range futures {
		d, err, done := f.Result()
		if !done || err != nil || d.Offset != uint64(i) {
			t.Fatalf("after flush %d: %+v %v %v", i, d, err, done)
		}
	}
	if b := p.Stats().Batches; b != 2 {
		t.Fatalf("batches %d", b)
	}
}

// C04 partition-function: xxh3_64(key) % partitions, checked against an independent xxh3
// implementation (github.com/zeebo/xxh3).
func TestKeyedMessagesLandOnThePartitionOfTheSharedFunction(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(8))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	for _, key := range []string{"order-42", "user:7", "a", "", "ключ"} {
		d, err := p.Send(ctxT(t), rapidmq.Message{Key: []byte(key), Value: []byte("v")})
		if err != nil {
			t.Fatal(err)
		}
		if want := uint32(xxh3.Hash([]byte(key)) % 8); d.Partition != want {
			t.Fatalf("key %q on %d, want %d", key, d.Partition, want)
		}
	}
}

func TestTrySendReportsAFullBufferAndQueuesNothing(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	cfg := rapidmq.NewProducerConfig(topic)
	cfg.Linger = time.Hour
	cfg.MaxBufferedMessages = 10
	p := newProducer(t, client, cfg)
	var futures []*rapidmq.SendFuture
	for i := range 10 {
		f, queued, err := p.TrySend(text(strconv.Itoa(i)))
		if err != nil || !queued {
			t.Fatalf("send %d: queued %v, %v", i, queued, err)
		}
		futures = append(futures, f)
	}
	if f, queued, err := p.TrySend(text("no room")); err != nil || queued || f != nil {
		t.Fatalf("a full buffer: %v %v %v", f, queued, err)
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	for i, f := range futures {
		if d, err := f.Wait(ctxT(t)); err != nil || d.Offset != uint64(i) {
			t.Fatalf("send %d: %+v %v", i, d, err)
		}
	}
	late, queued, err := p.TrySend(text("room again"))
	if err != nil || !queued {
		t.Fatalf("room again: %v %v", queued, err)
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if d, err := late.Wait(ctxT(t)); err != nil || d.Offset != 10 {
		t.Fatalf("late: %+v %v", d, err)
	}
	if n := len(readLog(t, client, topic)); n != 11 {
		t.Fatalf("log holds %d", n)
	}
}

func TestIsClosedFollowsClose(t *testing.T) {
	broker, _ := setup(t)
	client := connect(t, broker)
	if client.IsClosed() {
		t.Fatal("closed before Close")
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	if !client.IsClosed() {
		t.Fatal("open after Close")
	}
}

// C30 batch-send: SendBatch queues many messages in one native call, in order, or none of
// them when one is invalid.
func TestSendBatchQueuesManyMessagesInOrderAndNoneAfterClose(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	outOfRange := text("bad")
	outOfRange.Timestamp = time.UnixMilli(1 << 62)
	fs, err := p.SendBatch(ctxT(t), []rapidmq.Message{text("x0"), outOfRange, text("x2")})
	if !errors.Is(err, rapidmq.ErrInvalidArgument) || len(fs) != 0 ||
		!strings.Contains(err.Error(), "message 1 of the batch") {
		t.Fatalf("a batch with an invalid message: %d futures, %v", len(fs), err)
	}
	var futures []*rapidmq.SendFuture
	for chunk := range 5 {
		messages := make([]rapidmq.Message, 1000)
		for i := range messages {
			messages[i] = text(strconv.Itoa(chunk*1000 + i))
		}
		fs, err := p.SendBatch(ctxT(t), messages)
		if err != nil || len(fs) != len(messages) {
			t.Fatalf("chunk %d: %d futures, %v", chunk, len(fs), err)
		}
		futures = append(futures, fs...)
	}
	for i, f := range futures {
		if d, err := f.Wait(ctxT(t)); err != nil || d.Offset != uint64(i) {
			t.Fatalf("message %d: %+v, %v", i, d, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	fs, err = p.SendBatch(ctxT(t), []rapidmq.Message{text("late")})
	if !errors.Is(err, rapidmq.ErrClosed) || len(fs) != 0 {
		t.Fatalf("after close: %d futures, %v", len(fs), err)
	}
	if got := readLog(t, client, topic); len(got) != 5000 || string(got[0].Value) != "0" ||
		string(got[4999].Value) != "4999" {
		t.Fatalf("the log holds %d messages", len(got))
	}
}

// C25 empty-key-round-trip.
func TestAnEmptyKeyIsAKeyAndStaysApartFromNoKey(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(8))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	d, err := p.Send(ctxT(t), rapidmq.Message{Key: []byte{}, Value: []byte("empty")})
	if err != nil {
		t.Fatal(err)
	}
	if want := uint32(xxh3.Hash(nil) % 8); d.Partition != want {
		t.Fatalf("empty key on %d, want %d", d.Partition, want)
	}
	if _, err := p.Send(ctxT(t), rapidmq.Message{Value: []byte("none")}); err != nil {
		t.Fatal(err)
	}
	keys := map[string][]byte{}
	for _, m := range readLog(t, client, topic) {
		keys[string(m.Value)] = m.Key
	}
	if k, ok := keys["empty"]; !ok || k == nil || len(k) != 0 {
		t.Fatalf("empty key read back as %#v (present %v)", k, ok)
	}
	if k, ok := keys["none"]; !ok || k != nil {
		t.Fatalf("no key read back as %#v (present %v)", k, ok)
	}
}

// C05 non-retriable-errors-at-once (size).
func TestMessageTooLargeFailsAtOnceWithItsCodeAndNoRetries(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, rapidmq.TopicConfig{Partitions: 1, MaxMessageBytes: rapidmq.Ptr(uint32(1024))})
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	_, err := p.Send(ctxT(t), rapidmq.Message{Value: make([]byte, 4096)})
	if !errors.Is(err, rapidmq.ErrMessageTooLarge) || code(err) != 3001 {
		t.Fatalf("got %v", err)
	}
	var e *rapidmq.Error
	if !errors.As(err, &e) || e.Retriable {
		t.Fatalf("retriable: %v", err)
	}
	if s := p.Stats(); s.Requests != 1 || s.Retries != 0 {
		t.Fatalf("stats %+v", s)
	}
	// The rejected batch did not consume sequence numbers.
	if d, err := p.Send(ctxT(t), text("small")); err != nil || d.Offset != 0 {
		t.Fatalf("next send: %+v %v", d, err)
	}
}

// C05 non-retriable-errors-at-once (unknown and deleted topic).
func TestUnknownTopicFailsAtOnceWithTopicNotFound(t *testing.T) {
	_, client := setup(t)
	_, err := client.NewProducer(ctxT(t), rapidmq.NewProducerConfig("no-such-topic"))
	if !errors.Is(err, rapidmq.ErrTopicNotFound) || code(err) != 2001 {
		t.Fatalf("got %v", err)
	}
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	if err := client.Admin().DeleteTopic(ctxT(t), topic); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Send(ctxT(t), text("x")); !errors.Is(err, rapidmq.ErrTopicNotFound) {
		t.Fatalf("got %v", err)
	}
	if r := p.Stats().Retries; r != 0 {
		t.Fatalf("retries %d", r)
	}
}

// C06 idempotent-resend-after-lost-ack.
func TestALostAckIsRetriedAndTheBrokerReturnsTheOriginalOffsets(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	rapidmq.LoseAcks(p, 1)
	for i, d := range publishValues(t, p, 10) {
		if d.Offset != uint64(i) {
			t.Fatalf("delivery %d: %+v", i, d)
		}
	}
	if s := p.Stats(); s.Retries < 1 || s.Duplicates < 1 {
		t.Fatalf("stats %+v", s)
	}
	if n := len(readLog(t, client, topic)); n != 10 {
		t.Fatalf("the log holds %d messages, want one copy of 10", n)
	}
}

// C07 idempotent-resend-across-restart.
func TestAResentBatchIsDeduplicatedAcrossABrokerRestart(t *testing.T) {
	broker, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	batch := make([]rapidmq.Message, 5)
	for i := range batch {
		batch[i] = text("m" + strconv.Itoa(i))
	}
	const producerID = 0x5EED
	first, err := client.PublishBatch(ctxT(t), topic, 0, producerID, 0, batch)
	if err != nil || first.BaseOffset != 0 || first.Duplicate {
		t.Fatalf("first: %+v %v", first, err)
	}
	broker.CrashAndRestart()
	if err := client.SetEndpoints(broker.URL()); err != nil {
		t.Fatal(err)
	}
	if got := client.Endpoints(); len(got) != 1 || got[0] != broker.URL() {
		t.Fatalf("endpoints %q, want %q", got, broker.URL())
	}
	again, err := client.PublishBatch(ctxT(t), topic, 0, producerID, 0, batch)
	if err != nil || !again.Duplicate || again.BaseOffset != 0 || again.Count != 5 {
		t.Fatalf("again: %+v %v", again, err)
	}
	if n := len(readLog(t, client, topic)); n != 5 {
		t.Fatalf("log holds %d", n)
	}
	following, err := client.PublishBatch(ctxT(t), topic, 0, producerID, 5, batch)
	if err != nil || following.BaseOffset != 5 || following.Duplicate {
		t.Fatalf("following: %+v %v", following, err)
	}
	_, err = client.PublishBatch(ctxT(t), topic, 0, producerID, 20, batch)
	if !errors.Is(err, rapidmq.ErrOutOfOrderSequence) || code(err) != 3003 {
		t.Fatalf("gap: %v", err)
	}
}

func TestMessagesKeepKeysHeadersAndTimestamps(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	ctx := ctxT(t)
	msgs := []rapidmq.Message{
		{Value: []byte("text"), Headers: []rapidmq.Header{{Key: "h", Value: []byte("v")}}},
		{Value: []byte("bytes"), Key: []byte("k"), Headers: []rapidmq.Header{{Key: "a", Value: []byte("1")}, {Key: "a", Value: []byte("2")}}},
		{Value: []byte("stamped"), Key: []byte{}, Timestamp: time.UnixMilli(1234)},
	}
	for _, m := range msgs {
		if _, err := p.Send(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	log := readLog(t, client, topic)
	if len(log) != 3 || string(log[0].Value) != "text" || log[0].Key != nil {
		t.Fatalf("log %+v", log)
	}
	if v, ok := log[0].Header("h"); !ok || string(v) != "v" {
		t.Fatalf("header %q", v)
	}
	if len(log[1].Headers) != 2 || string(log[1].Headers[1].Value) != "2" || string(log[1].Key) != "k" {
		t.Fatalf("message 1 %+v", log[1])
	}
	if log[2].Timestamp.UnixMilli() != 1234 {
		t.Fatalf("the producer timestamp is kept: %+v", log[2])
	}
}

func TestAClosedProducerRefusesSendsWithErrClosed(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	p := newProducer(t, client, rapidmq.NewProducerConfig(topic))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := p.Send(ctxT(t), text("late"))
	if !errors.Is(err, rapidmq.ErrClosed) || !errors.Is(err, rapidmq.ErrInvalidArgument) || code(err) != 1001 {
		t.Fatalf("got %v", err)
	}
	if errors.Is(err, rapidmq.ErrUnsupported) {
		t.Fatal("closed is not unsupported")
	}
}

// A send blocked on a full producer buffer, and the wait for its receipt, both end when the
// context does.
func TestContextDeadlineInterruptsASendBlockedOnAFullBuffer(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	cfg := rapidmq.NewProducerConfig(topic)
	cfg.Linger = time.Hour
	cfg.MaxBufferedMessages = 1
	p := newProducer(t, client, cfg)
	first, err := p.SendAsync(ctxT(t), text("fills the buffer"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	started := time.Now()
	_, err = p.Send(ctx, text("waits for room"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if elapsed := time.Since(started); elapsed > 10*time.Second {
		t.Fatalf("returned after %s", elapsed)
	}
	waitCtx, cancelWait := context.WithCancel(context.Background())
	cancelWait()
	if _, err := first.Wait(waitCtx); !errors.Is(err, context.Canceled) {
		t.Fatalf("wait: %v", err)
	}
	if err := p.Flush(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if d, err := first.Wait(ctxT(t)); err != nil || d.Offset != 0 {
		t.Fatalf("first: %+v %v", d, err)
	}
}
