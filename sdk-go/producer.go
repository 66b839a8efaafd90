package rapidmq

/*
#include <stdbool.h>
#include "rapidmq.h"

// What go_try_send_to returns: by value, so the Go caller passes no pointer to its own
// variables (cgo would move each to the heap, an allocation per send).
typedef struct GoSendResult {
	enum RapidmqStatus status;
	bool queued;
	RapidmqError err;
} GoSendResult;

// rapidmq_producer_try_send_to for a message without headers: its value and key come as
// arguments, which cgo lets point into Go memory without pinning it (a pinned view inside the
// message costs two runtime locks per send), and m, by value, carries every other field.
static inline GoSendResult go_try_send_to(const RapidmqProducer *producer, RapidmqMessage m,
		const char *value, size_t value_len, const char *key, size_t key_len,
		const RapidmqCompletions *completions, uint64_t token) {
	GoSendResult r = {0};
	m.value.ptr = value;
	m.value.len = value_len;
	m.key.ptr = key;
	m.key.len = key_len;
	r.status = rapidmq_producer_try_send_to(producer, &m, completions, token, &r.queued, &r.err);
	return r;
}
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
)

// Producer publishes to one topic through the core producer: per-partition batching on linger,
// count and size, idempotence, retries, pipelining. Safe for concurrent use.
type Producer struct {
	h     *C.RapidmqProducer
	topic string
	sends *sendQueue
}

// NewProducer creates a producer for cfg.Topic (looked up first).
//
// Errors: [ErrTopicNotFound], [ErrInvalidArgument] for a bad setting.
func (c *Client) NewProducer(ctx context.Context, cfg ProducerConfig) (*Producer, error) {
	defer runtime.KeepAlive(c)
	sends, err := newSendQueue()
	if err != nil {
		return nil, err
	}
	var p pins
	defer p.Unpin()
	cc := cfg.c(&p)
	var h *C.RapidmqProducer
	err = blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_producer_new(c.h, &cc, cancel, &h, cerr)
	})
	if err != nil {
		sends.stop()
		return nil, err
	}
	producer := &Producer{h: h, topic: cfg.Topic, sends: sends}
	runtime.AddCleanup(producer, func(h *C.RapidmqProducer) {
		// Freeing the producer fails its pending sends; the queue hands those over, then ends.
		C.rapidmq_producer_free(h)
		sends.stop()
	}, h)
	return producer, nil
}

// Topic is the topic this producer writes to.
func (p *Producer) Topic() string { return p.topic }

// Partitions is the topic's partition count.
func (p *Producer) Partitions() uint32 {
	defer runtime.KeepAlive(p)
	return uint32(C.rapidmq_producer_partitions(p.h))
}

// SendFuture is the eventual result of [Producer.SendAsync].
//
// Most futures are complete before anyone waits on them, so a future has no channel until
// [SendFuture.Done] or a [SendFuture.Wait] that has to block asks for one: a send costs no
// channel allocation and no close.
type SendFuture struct {
	completed atomic.Bool // set once delivery and err hold the result
	mu        sync.Mutex  // guards done, and the completion against its creation
	done      chan struct{}
	delivery  Delivery
	err       error
}

// closed is the Done channel of every future that was complete when Done was first asked.
var closed = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// complete resolves the future; the send queue calls it once, with the send's outcome.
func (f *SendFuture) complete(d Delivery, err error) {
	f.mu.Lock()
	f.delivery, f.err = d, err
	f.completed.Store(true)
	if f.done != nil {
		close(f.done)
	}
	f.mu.Unlock()
}

// Done is closed once the result is known.
func (f *SendFuture) Done() <-chan struct{} {
	if f.completed.Load() {
		return closed
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done == nil {
		if f.completed.Load() {
			return closed
		}
		f.done = make(chan struct{})
	}
	return f.done
}

// Wait waits for the result, or for ctx to end (then it returns ctx.Err(); the message may
// still be published).
func (f *SendFuture) Wait(ctx context.Context) (Delivery, error) {
	if f.completed.Load() {
		return f.delivery, f.err
	}
	select {
	case <-f.Done():
		return f.delivery, f.err
	case <-ctx.Done():
		return Delivery{}, ctx.Err()
	}
}

// Result returns the result if it is known (ok true), without waiting.
func (f *SendFuture) Result() (d Delivery, err error, ok bool) {
	if f.completed.Load() {
		return f.delivery, f.err, true
	}
	return Delivery{}, nil, false
}

// SendAsync queues m for its partition's next batch and returns at once with a future that
// resolves when the batch is acknowledged (with the partition and the offset, or
// SendScheduled / SendDeduplicated) or has failed for good (e.g. [ErrMessageTooLarge],
// [ErrInvalidPriority] for the whole batch). It waits only while the producer already buffers
// MaxBufferedMessages, and ctx bounds that wait.
//
// Errors here: [ErrClosed] after Close, ctx.Err().
func (p *Producer) SendAsync(ctx context.Context, m Message) (*SendFuture, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	future, _, err := p.send(ctx, m, true)
	return future, err
}

// send queues m with a new future: first without waiting (room in the buffer: one native call,
// no cancel handle); when the buffer is full and wait is set, through the cancellable, blocking
// call. Without wait, a full buffer returns (nil, false, nil).
func (p *Producer) send(ctx context.Context, m Message, wait bool) (*SendFuture, bool, error) {
	defer runtime.KeepAlive(p)
	future := new(SendFuture)
	token := p.sends.add(future)
	var queued bool
	var err error
	if len(m.Headers) == 0 {
		r := C.go_try_send_to(p.h, messageScalarsC(&m), view(m.Value), C.size_t(len(m.Value)),
			view(m.Key), C.size_t(len(m.Key)), p.sends.q, C.uint64_t(token))
		queued = bool(r.queued)
		if r.status != C.RAPIDMQ_STATUS_OK {
			err = takeErrorValue(ctx, r.err)
		}
	} else {
		var pn pins
		cm := messageC(&pn, &m)
		var cqueued C.bool
		var cerr C.RapidmqError
		status := uint32(C.rapidmq_producer_try_send_to(p.h, &cm, p.sends.q, C.uint64_t(token), &cqueued, &cerr))
		pn.Unpin()
		queued, err = bool(cqueued), check(ctx, status, &cerr)
	}
	if err == nil && !queued && wait {
		var pn pins
		defer pn.Unpin()
		cm := messageC(&pn, &m)
		err = blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
			return uint32(C.rapidmq_producer_send_to(p.h, &cm, cancel, p.sends.q, C.uint64_t(token), cerr))
		})
		queued = err == nil
	}
	if err != nil || !queued {
		p.sends.forget(token)
		return nil, false, err
	}
	return future, true, nil
}

// SendBatch queues messages, in order, in one native call, and returns a future per message
// (see [Producer.SendAsync]): the cheaper way to send many messages at once. It waits only
// while the producer's buffer is full, and ctx bounds that wait. Every message is checked
// before any is queued: an invalid one (a Timestamp 2^62 ms or more from 1970) fails the call
// with [ErrInvalidArgument] naming its index, and none is queued. On a later error (Close, the
// end of ctx) it returns the futures of the messages queued before it (they complete as usual)
// with the error.
//
// Errors here: [ErrClosed] after Close, [ErrInvalidArgument] for an invalid message, ctx.Err().
func (p *Producer) SendBatch(ctx context.Context, messages []Message) ([]*SendFuture, error) {
	if len(messages) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	defer runtime.KeepAlive(p)
	futures := make([]*SendFuture, len(messages))
	slab := make([]SendFuture, len(messages)) // one allocation for the batch's futures
	for i := range futures {
		futures[i] = &slab[i]
	}
	var pn pins
	defer pn.Unpin()
	list := messagesC(&pn, messages)
	pn.Pin(&list[0])
	first := p.sends.addAll(futures)
	var sent C.size_t
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return uint32(C.rapidmq_producer_send_batch_to(p.h, &list[0], C.size_t(len(list)), cancel,
			p.sends.q, C.uint64_t(first), &sent, cerr))
	})
	for i := int(sent); i < len(futures); i++ {
		p.sends.forget(first + uint64(i))
	}
	if err != nil {
		return futures[:sent], err
	}
	return futures, nil
}

// TrySend is [Producer.SendAsync] without the wait: when the producer already buffers
// MaxBufferedMessages it returns (nil, false, nil) and queues nothing. [Producer.Flush] waits
// for its future too.
//
// Errors here: [ErrClosed] after Close.
func (p *Producer) TrySend(m Message) (*SendFuture, bool, error) {
	return p.send(context.Background(), m, false)
}

// Send queues m and waits for its receipt (see [Producer.SendAsync]). When ctx ends first it
// returns ctx.Err(); the message may still be published.
func (p *Producer) Send(ctx context.Context, m Message) (Delivery, error) {
	future, err := p.SendAsync(ctx, m)
	if err != nil {
		return Delivery{}, err
	}
	return future.Wait(ctx)
}

// Flush sends every batch now and waits until every message sent before the call completed
// (acknowledged or failed: see each future, which is complete when Flush returns).
func (p *Producer) Flush(ctx context.Context) error {
	defer runtime.KeepAlive(p)
	last := p.sends.cut()
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_producer_flush(p.h, cancel, cerr)
	})
	if err == nil {
		p.sends.wait(last)
	}
	return err
}

// Close flushes, then stops the producer; later sends fail with [ErrClosed]. Idempotent. Every
// future of an earlier send is complete when it returns.
func (p *Producer) Close() error {
	defer runtime.KeepAlive(p)
	last := p.sends.cut()
	err := blocking(context.Background(), func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_producer_close(p.h, cancel, cerr)
	})
	if err == nil {
		p.sends.wait(last)
	}
	return err
}

// ProducerStats are a producer's counters since it was created.
type ProducerStats struct {
	MessagesSent         uint64
	MessagesAcked        uint64
	MessagesFailed       uint64
	Batches              uint64
	Requests             uint64
	Retries              uint64
	Duplicates           uint64
	MaxPartitionInFlight uint64
}

// Stats returns the counters so far.
func (p *Producer) Stats() ProducerStats {
	defer runtime.KeepAlive(p)
	var s C.RapidmqProducerStats
	C.rapidmq_producer_stats(p.h, &s)
	return ProducerStats{
		MessagesSent:         uint64(s.messages_sent),
		MessagesAcked:        uint64(s.messages_acked),
		MessagesFailed:       uint64(s.messages_failed),
		Batches:              uint64(s.batches),
		Requests:             uint64(s.requests),
		Retries:              uint64(s.retries),
		Duplicates:           uint64(s.duplicates),
		MaxPartitionInFlight: uint64(s.max_partition_in_flight),
	}
}

// testingLoseAcks discards the next n publish answers (fault injection for the retry tests;
// exposed to tests only, in export_test.go).
func (p *Producer) testingLoseAcks(n uint32) {
	defer runtime.KeepAlive(p)
	C.rapidmq_producer_testing_lose_acks(p.h, C.uint32_t(n))
}
