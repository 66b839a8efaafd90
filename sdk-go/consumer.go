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

// receiveWait bounds one native wait of Receive and Messages; they loop until ctx ends.
const receiveWait = time.Minute

// Consumer is a member of a stream-mode subscription: ordered per partition, partitions shared
// among members, acknowledged positions committed. Safe for concurrent use.
type Consumer struct {
	h   *C.RapidmqConsumer
	cfg ConsumerConfig
}

// Subscribe joins (or creates) the stream subscription cfg.Subscription on cfg.Topic and
// returns once the broker confirmed it.
//
// Errors: [ErrTopicNotFound], [ErrSubscriptionModeMismatch], [ErrInvalidArgument].
func (c *Client) Subscribe(ctx context.Context, cfg ConsumerConfig) (*Consumer, error) {
	defer runtime.KeepAlive(c)
	var p pins
	defer p.Unpin()
	cc := cfg.c(&p)
	var h *C.RapidmqConsumer
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_consumer_new(c.h, &cc, cancel, &h, cerr)
	})
	if err != nil {
		return nil, err
	}
	consumer := &Consumer{h: h, cfg: cfg}
	runtime.AddCleanup(consumer, func(h *C.RapidmqConsumer) { C.rapidmq_consumer_free(h) }, h)
	return consumer, nil
}

// Config is the configuration the consumer was created with.
func (c *Consumer) Config() ConsumerConfig { return c.cfg }

// Poll returns up to max buffered messages, waiting up to timeout for the first one; an empty
// slice when none arrived in time. It grants the broker as many credits as it returns. A
// cancelled or expired ctx interrupts the wait (ctx.Err()) and takes no message.
//
// Errors: the fatal error that ended the subscription (e.g. [ErrTopicNotFound] after the
// topic was deleted), [ErrClosed] after Close.
func (c *Consumer) Poll(ctx context.Context, max int, timeout time.Duration) ([]ReceivedMessage, error) {
	batch, err := c.poll(ctx, max, timeout, false)
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_message_batch_free(batch)
	return convertBatch(nil, batch), nil
}

// ackList gathers acknowledgements for one native call.
type ackList struct {
	partitions []C.uint32_t
	offsets    []C.uint64_t
}

func (a *ackList) add(m *ReceivedMessage) {
	a.partitions = append(a.partitions, C.uint32_t(m.Partition))
	a.offsets = append(a.offsets, C.uint64_t(m.Offset))
}

// flush acknowledges what was gathered and empties the list.
func (a *ackList) flush(c *Consumer) error {
	if len(a.offsets) == 0 {
		return nil
	}
	defer runtime.KeepAlive(c)
	var cerr C.RapidmqError
	status := C.rapidmq_consumer_ack_many(c.h, &a.partitions[0], &a.offsets[0], C.size_t(len(a.offsets)), &cerr)
	a.partitions, a.offsets = a.partitions[:0], a.offsets[:0]
	return check(context.Background(), status, &cerr)
}

// poll takes up to max messages from the core's buffer as a native batch, which the caller
// frees. unacked: they do not count as acknowledged even with AutoCommit (Messages
// acknowledges what it hands out and puts back the rest).
func (c *Consumer) poll(ctx context.Context, max int, timeout time.Duration, unacked bool) (*C.RapidmqMessageBatch, error) {
	defer runtime.KeepAlive(c)
	var batch *C.RapidmqMessageBatch
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		if unacked {
			return C.rapidmq_consumer_poll_unacked(c.h, C.size_t(nonNegative(max)), ms(timeout), cancel, &batch, cerr)
		}
		return C.rapidmq_consumer_poll(c.h, C.size_t(nonNegative(max)), ms(timeout), cancel, &batch, cerr)
	})
	return batch, err
}

// convertBatch copies a native batch's messages into dst's array when it has room (Messages
// reuses one across polls: it yields copies, so no caller holds the array), else a new one.
func convertBatch(dst []ReceivedMessage, batch *C.RapidmqMessageBatch) []ReceivedMessage {
	list := items(batch.items, batch.len)
	if cap(dst) < len(list) {
		dst = make([]ReceivedMessage, len(list))
	}
	out := dst[:len(list)]
	var conv converter
	conv.reserve(list)
	for i := range list {
		out[i] = conv.received(&list[i])
	}
	return out
}

// Receive waits for the next message until ctx ends.
func (c *Consumer) Receive(ctx context.Context) (ReceivedMessage, error) {
	for {
		got, err := c.Poll(ctx, 1, receiveWait)
		if err != nil {
			return ReceivedMessage{}, err
		}
		if len(got) == 1 {
			return got[0], nil
		}
	}
}

// Messages iterates over messages as they arrive until ctx ends or the subscription fails;
// the last pair then carries the error (ctx.Err() for a cancelled context).
//
//	for m, err := range consumer.Messages(ctx) {
//		if err != nil { return err }
//		consumer.Ack(m)
//	}
//
// It takes up to 1,000 messages from the consumer's buffer at a time but hands them out one by
// one: with AutoCommit a message counts as acknowledged once it was yielded (the
// acknowledgements go to the core when the loop takes the next batch or ends), and what a loop
// left early did not reach stays unacknowledged for the next Poll, Receive or Messages.
func (c *Consumer) Messages(ctx context.Context) iter.Seq2[ReceivedMessage, error] {
	return func(yield func(ReceivedMessage, error) bool) {
		var buf []ReceivedMessage
		var acks ackList // with AutoCommit: what was handed out, acknowledged per batch
		for {
			native, err := c.poll(ctx, iteratorBatch, receiveWait, true)
			if err != nil {
				yield(ReceivedMessage{}, err)
				return
			}
			buf = convertBatch(buf, native)
			if !c.handOut(buf, native, &acks, yield) {
				return
			}
			if err := acks.flush(c); err != nil {
				yield(ReceivedMessage{}, err)
				return
			}
		}
	}
}

// handOut yields batch one message at a time and frees native, the core's batch it was
// converted from; false when the loop ended early, after the messages it did not reach went back
// to the core's buffer.
func (c *Consumer) handOut(batch []ReceivedMessage, native *C.RapidmqMessageBatch, acks *ackList, yield func(ReceivedMessage, error) bool) bool {
	defer runtime.KeepAlive(c)
	defer C.rapidmq_message_batch_free(native)
	for i := range batch {
		if c.cfg.AutoCommit {
			acks.add(&batch[i]) // handed out, so acknowledged, even if the loop ends here
		}
		if !yield(batch[i], nil) {
			var cerr C.RapidmqError
			_ = check(context.Background(), C.rapidmq_consumer_put_back(c.h, native, C.size_t(i+1), &cerr), &cerr)
			_ = acks.flush(c) // only fails once the consumer is closed
			clear(batch)
			return false
		}
		batch[i] = ReceivedMessage{} // the caller has its copy; drop the references
	}
	return true
}

// iteratorBatch is how many messages Messages takes from the core at a time.
const iteratorBatch = 1000

// Ack acknowledges a polled message. Its partition's commit position moves past it once every
// earlier polled message of the partition is acknowledged too; commits go out on the commit
// interval, on Commit and on Close.
func (c *Consumer) Ack(m ReceivedMessage) error {
	defer runtime.KeepAlive(c)
	var cerr C.RapidmqError
	return check(context.Background(), C.rapidmq_consumer_ack(c.h, C.uint32_t(m.Partition), C.uint64_t(m.Offset), &cerr), &cerr)
}

// AckOffset acknowledges the message at offset of partition, as [Consumer.Ack] does for a
// polled message.
func (c *Consumer) AckOffset(partition uint32, offset uint64) error {
	defer runtime.KeepAlive(c)
	var cerr C.RapidmqError
	return check(context.Background(), C.rapidmq_consumer_ack(c.h, C.uint32_t(partition), C.uint64_t(offset), &cerr), &cerr)
}

// Nack is a queue-mode feature: in stream mode it always fails with [ErrUnsupported]. Use a
// [QueueConsumer].
func (c *Consumer) Nack(m ReceivedMessage, delay time.Duration) error {
	defer runtime.KeepAlive(c)
	var cerr C.RapidmqError
	return check(context.Background(), C.rapidmq_consumer_nack(c.h, C.uint32_t(m.Partition), C.uint64_t(m.Offset), ms(delay), &cerr), &cerr)
}

// Commit sends the acknowledged positions now.
func (c *Consumer) Commit(ctx context.Context) error {
	defer runtime.KeepAlive(c)
	return blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_consumer_commit(c.h, cancel, cerr)
	})
}

// Close commits what was acknowledged and leaves the subscription. Idempotent.
func (c *Consumer) Close() error {
	defer runtime.KeepAlive(c)
	return blocking(context.Background(), func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_consumer_close(c.h, cancel, cerr)
	})
}

// Assignment is the partitions this member owns now.
func (c *Consumer) Assignment() []uint32 {
	defer runtime.KeepAlive(c)
	n := C.rapidmq_consumer_assignment(c.h, nil, 0)
	if n == 0 {
		return []uint32{}
	}
	out := make([]C.uint32_t, n)
	n = min(n, C.rapidmq_consumer_assignment(c.h, &out[0], C.size_t(len(out))))
	result := make([]uint32, n)
	for i := range result {
		result[i] = uint32(out[i])
	}
	return result
}

// ConsumerStats are a stream consumer's counters.
type ConsumerStats struct {
	Received        uint64
	Polled          uint64
	Buffered        uint64
	MaxBuffered     uint64
	Commits         uint64
	Reconnects      uint64
	DroppedOnRevoke uint64
	Generation      uint64
}

// Stats returns the counters so far.
func (c *Consumer) Stats() ConsumerStats {
	defer runtime.KeepAlive(c)
	var s C.RapidmqConsumerStats
	C.rapidmq_consumer_stats(c.h, &s)
	return ConsumerStats{
		Received:        uint64(s.received),
		Polled:          uint64(s.polled),
		Buffered:        uint64(s.buffered),
		MaxBuffered:     uint64(s.max_buffered),
		Commits:         uint64(s.commits),
		Reconnects:      uint64(s.reconnects),
		DroppedOnRevoke: uint64(s.dropped_on_revoke),
		Generation:      uint64(s.generation),
	}
}
