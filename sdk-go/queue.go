package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import (
	"context"
	"iter"
	"runtime"
	"time"
)

// QueueConsumer consumes a queue-mode subscription: messages go one by one to any live
// consumer and are acked individually; unacked ones come back after the ack deadline and are
// dead-lettered after MaxDeliveries attempts. Safe for concurrent use.
type QueueConsumer struct {
	h *C.RapidmqQueueConsumer
}

// receipt owns one native delivery receipt.
type receipt struct {
	h *C.RapidmqReceipt
}

// QueueMessage is one delivery of a queue message.
type QueueMessage struct {
	ReceivedMessage
	// Attempt is 1 on the first delivery; counts survive broker restarts.
	Attempt uint32
	receipt *receipt
}

// SubscribeQueue joins the queue subscription cfg.Subscription (creating it with cfg.Queue
// when it does not exist) and returns once the broker confirmed it.
//
// Errors: [ErrTopicNotFound], [ErrSubscriptionModeMismatch] (a stream subscription of that name
// exists), [ErrInvalidArgument] (e.g. MaxDeliveries 0, or no subscription name).
func (c *Client) SubscribeQueue(ctx context.Context, cfg ConsumerConfig) (*QueueConsumer, error) {
	defer runtime.KeepAlive(c)
	var p pins
	defer p.Unpin()
	cc := cfg.c(&p)
	var h *C.RapidmqQueueConsumer
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_queue_consumer_new(c.h, &cc, cancel, &h, cerr)
	})
	if err != nil {
		return nil, err
	}
	q := &QueueConsumer{h: h}
	runtime.AddCleanup(q, func(h *C.RapidmqQueueConsumer) { C.rapidmq_queue_consumer_free(h) }, h)
	return q, nil
}

// Poll returns up to max deliveries, waiting up to timeout for the first one. A cancelled or
// expired ctx interrupts the wait (ctx.Err()) and takes no delivery.
func (q *QueueConsumer) Poll(ctx context.Context, max int, timeout time.Duration) ([]QueueMessage, error) {
	defer runtime.KeepAlive(q)
	var batch *C.RapidmqQueueMessageBatch
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_queue_consumer_poll(q.h, C.size_t(nonNegative(max)), ms(timeout), cancel, &batch, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_queue_message_batch_free(batch)
	list := items(batch.items, batch.len)
	out := make([]QueueMessage, len(list))
	for i := range list {
		r := &receipt{h: list[i].receipt}
		runtime.AddCleanup(r, func(h *C.RapidmqReceipt) { C.rapidmq_receipt_free(h) }, r.h)
		out[i] = QueueMessage{ReceivedMessage: receivedFromC(&list[i].message), Attempt: uint32(list[i].attempt), receipt: r}
	}
	return out, nil
}

// Receive waits for the next delivery until ctx ends.
func (q *QueueConsumer) Receive(ctx context.Context) (QueueMessage, error) {
	for {
		got, err := q.Poll(ctx, 1, receiveWait)
		if err != nil {
			return QueueMessage{}, err
		}
		if len(got) == 1 {
			return got[0], nil
		}
	}
}

// Messages iterates over deliveries until ctx ends or the subscription fails; the last pair
// then carries the error.
func (q *QueueConsumer) Messages(ctx context.Context) iter.Seq2[QueueMessage, error] {
	return func(yield func(QueueMessage, error) bool) {
		for {
			batch, err := q.Poll(ctx, 100, receiveWait)
			if err != nil {
				yield(QueueMessage{}, err)
				return
			}
			for _, m := range batch {
				if !yield(m, nil) {
					return
				}
			}
		}
	}
}

func (q *QueueConsumer) settle(m QueueMessage, call func(r *C.RapidmqReceipt, cerr *C.RapidmqError) uint32) error {
	defer runtime.KeepAlive(q)
	if m.receipt == nil {
		return &Error{Code: CodeInvalidArgument, Kind: KindInvalidArgument, Message: "this QueueMessage did not come from Poll"}
	}
	defer runtime.KeepAlive(m.receipt)
	var cerr C.RapidmqError
	return check(context.Background(), call(m.receipt.h, &cerr), &cerr)
}

// Ack acknowledges a delivery: the broker will not deliver it again. Sent with the next ack
// batch (interval, Flush or Close). A receipt from before a reconnect is dropped and counted
// (StaleReceipts); the broker redelivers that message.
func (q *QueueConsumer) Ack(m QueueMessage) error {
	return q.settle(m, func(r *C.RapidmqReceipt, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_queue_consumer_ack(q.h, r, cerr)
	})
}

// Nack gives a delivery back: the broker redelivers it (as the next attempt) no sooner than
// delay, or dead-letters it after MaxDeliveries attempts. Sent at once.
func (q *QueueConsumer) Nack(m QueueMessage, delay time.Duration) error {
	return q.settle(m, func(r *C.RapidmqReceipt, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_queue_consumer_nack(q.h, r, ms(delay), cerr)
	})
}

// ExtendDeadline pushes a delivery's ack deadline out to now + extension. Sent at once.
func (q *QueueConsumer) ExtendDeadline(m QueueMessage, extension time.Duration) error {
	return q.settle(m, func(r *C.RapidmqReceipt, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_queue_consumer_extend_deadline(q.h, r, ms(extension), cerr)
	})
}

// Flush sends the pending acks now.
func (q *QueueConsumer) Flush(ctx context.Context) error {
	defer runtime.KeepAlive(q)
	return blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_queue_consumer_flush(q.h, cancel, cerr)
	})
}

// Close sends the pending acks and leaves the subscription; unacked deliveries come back
// (to other consumers) after their deadline. Idempotent.
func (q *QueueConsumer) Close() error {
	defer runtime.KeepAlive(q)
	return blocking(context.Background(), func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_queue_consumer_close(q.h, cancel, cerr)
	})
}

// TakeStreamErrors returns the errors the broker reported on the stream since the last call
// (e.g. [ErrReceiptUnknown] for an ack of an expired delivery), oldest first. They do not end
// the subscription.
func (q *QueueConsumer) TakeStreamErrors() []error {
	defer runtime.KeepAlive(q)
	var list *C.RapidmqErrorList
	var cerr C.RapidmqError
	if err := check(context.Background(), C.rapidmq_queue_consumer_take_stream_errors(q.h, &list, &cerr), &cerr); err != nil {
		return []error{err}
	}
	defer C.rapidmq_error_list_free(list)
	out := []error{}
	for _, e := range items(list.items, list.len) {
		out = append(out, &Error{Code: Code(e.code), Kind: Kind(e.kind), Retriable: bool(e.retriable), Message: goString(e.message)})
	}
	return out
}

// QueueConsumerStats are a queue consumer's counters.
type QueueConsumerStats struct {
	Received      uint64
	Polled        uint64
	Buffered      uint64
	MaxBuffered   uint64
	Acked         uint64
	Nacked        uint64
	Extended      uint64
	AckRequests   uint64
	StaleReceipts uint64
	StreamErrors  uint64
	Reconnects    uint64
}

// Stats returns the counters so far.
func (q *QueueConsumer) Stats() QueueConsumerStats {
	defer runtime.KeepAlive(q)
	var s C.RapidmqQueueConsumerStats
	C.rapidmq_queue_consumer_stats(q.h, &s)
	return QueueConsumerStats{
		Received:      uint64(s.received),
		Polled:        uint64(s.polled),
		Buffered:      uint64(s.buffered),
		MaxBuffered:   uint64(s.max_buffered),
		Acked:         uint64(s.acked),
		Nacked:        uint64(s.nacked),
		Extended:      uint64(s.extended),
		AckRequests:   uint64(s.ack_requests),
		StaleReceipts: uint64(s.stale_receipts),
		StreamErrors:  uint64(s.stream_errors),
		Reconnects:    uint64(s.reconnects),
	}
}
