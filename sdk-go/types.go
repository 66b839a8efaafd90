package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import (
	"time"
	"unsafe"
)

// MsgIDHeader is the header carrying an application message id: topics with a dedup window
// drop a repeated id (the receipt says [SendDeduplicated]).
const MsgIDHeader = "msg-id"

// ReplyToHeader names the topic a request's reply goes to (the requester's inbox); set by
// [Client.Request], read by [Client.Reply].
const ReplyToHeader = "reply-to"

// CorrelationIDHeader ties a reply to its request: set on a request, copied onto its reply.
const CorrelationIDHeader = "correlation-id"

// Header is one application header; keys may repeat.
type Header struct {
	Key   string
	Value []byte
}

// Message is a message to send. Only Value is required.
type Message struct {
	// Key routes the message: the same key always goes to the same partition
	// (xxh3_64(key) % partitions). nil means no key (an empty non-nil key is a key).
	Key []byte
	// Value is the payload.
	Value []byte
	// Headers, in order.
	Headers []Header
	// Timestamp is the producer timestamp; the zero value means the time of the send.
	Timestamp time.Time
	// Delay delivers the message this long after the broker receives it (its receipt says
	// [SendScheduled]).
	Delay time.Duration
	// DeliverAt delivers the message at this time (the zero value: not set).
	DeliverAt time.Time
	// TTL is the time to live from the broker's append time (0: none); an expired message is
	// never delivered.
	TTL time.Duration
	// Priority is 0 (lowest, the default) to 9 (highest); queue subscriptions deliver higher
	// first. Above 9 the broker refuses the batch with INVALID_PRIORITY.
	Priority uint8
}

// SendStatus says what the broker did with a sent message.
type SendStatus uint32

const (
	// SendAppended: appended to the log; Delivery.Offset is set.
	SendAppended SendStatus = C.RAPIDMQ_SEND_APPENDED
	// SendScheduled: held in the broker's delay schedule; it gets an offset when due, which
	// the producer does not learn.
	SendScheduled SendStatus = C.RAPIDMQ_SEND_SCHEDULED
	// SendDeduplicated: dropped as a repeated msg-id within the topic's dedup window.
	SendDeduplicated SendStatus = C.RAPIDMQ_SEND_DEDUPLICATED
)

// String is "appended", "scheduled" or "deduplicated".
func (s SendStatus) String() string {
	switch s {
	case SendAppended:
		return "appended"
	case SendScheduled:
		return "scheduled"
	case SendDeduplicated:
		return "deduplicated"
	}
	return "unknown"
}

// Durability says what the broker guaranteed (or, in a topic config, is asked to).
type Durability uint32

const (
	// DurabilityUnspecified: not reported, or the broker's default.
	DurabilityUnspecified Durability = C.RAPIDMQ_DURABILITY_UNSPECIFIED
	// DurabilityFsync: fsynced before the acknowledgement.
	DurabilityFsync Durability = C.RAPIDMQ_DURABILITY_FSYNC
	// DurabilityBuffered: reached the OS; fsynced on an interval.
	DurabilityBuffered Durability = C.RAPIDMQ_DURABILITY_BUFFERED
	// DurabilityMemory: held in memory only.
	DurabilityMemory Durability = C.RAPIDMQ_DURABILITY_MEMORY
)

// Delivery is where a sent message went.
type Delivery struct {
	// Partition is the partition.
	Partition uint32
	// Offset is the offset; meaningful only when Status is SendAppended.
	Offset uint64
	// Status is appended, scheduled or deduplicated.
	Status SendStatus
	// Durability is what the acknowledgement guarantees.
	Durability Durability
}

func deliveryFromC(d C.RapidmqDelivery) Delivery {
	return Delivery{
		Partition:  uint32(d.partition),
		Offset:     uint64(d.offset),
		Status:     SendStatus(d.status),
		Durability: Durability(d.durability),
	}
}

// ReceivedMessage is a consumed message.
type ReceivedMessage struct {
	Topic     string
	Partition uint32
	Offset    uint64
	// Key is nil when the producer set none; an empty key set by any SDK arrives empty (non-nil).
	Key     []byte
	Value   []byte
	Headers []Header
	// Timestamp is the producer timestamp.
	Timestamp time.Time
	// AppendTime is the broker's append time.
	AppendTime time.Time
	// DeliverAt is the delivery time of a delayed message (zero when it was not delayed).
	DeliverAt time.Time
	// TTL is its time to live (0: none).
	TTL time.Duration
	// Priority is 0–9.
	Priority uint8
}

// Header returns the value of the first header named key.
func (m *ReceivedMessage) Header(key string) ([]byte, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return h.Value, true
		}
	}
	return nil, false
}

func receivedFromC(m *C.RapidmqReceivedMessage) ReceivedMessage {
	var c converter
	return c.received(m)
}

// converter copies received messages out of a native batch with few allocations: the values
// and keys of a batch share one buffer, and a batch's topic name is allocated once.
type converter struct {
	buf   []byte
	topic string
}

// reserve sizes the shared buffer for a batch.
func (c *converter) reserve(list []C.RapidmqReceivedMessage) {
	total := 0
	for i := range list {
		total += int(list[i].value.len) + int(list[i].key.len)
	}
	c.buf = make([]byte, 0, total)
}

// bytes copies a view into the shared buffer (capacity-limited, so appends by the caller never
// overwrite the next message); nil for an empty view.
func (c *converter) bytes(s C.RapidmqSlice) []byte {
	if s.len == 0 {
		return nil
	}
	src := unsafe.Slice((*byte)(unsafe.Pointer(s.ptr)), int(s.len))
	if cap(c.buf)-len(c.buf) < len(src) {
		return append([]byte(nil), src...)
	}
	start := len(c.buf)
	c.buf = append(c.buf, src...)
	return c.buf[start:len(c.buf):len(c.buf)]
}

func (c *converter) topicOf(s C.RapidmqSlice) string {
	src := unsafe.Slice((*byte)(unsafe.Pointer(s.ptr)), int(s.len))
	if string(src) != c.topic {
		c.topic = string(src)
	}
	return c.topic
}

func (c *converter) received(m *C.RapidmqReceivedMessage) ReceivedMessage {
	out := ReceivedMessage{
		Topic:      c.topicOf(m.topic),
		Partition:  uint32(m.partition),
		Offset:     uint64(m.offset),
		Value:      c.bytes(m.value),
		Timestamp:  timeFromMs(m.timestamp_ms),
		AppendTime: timeFromMs(m.append_time_ms),
		DeliverAt:  timeFromMs(m.deliver_at_ms),
		Priority:   uint8(m.priority),
	}
	if out.Value == nil {
		out.Value = []byte{}
	}
	if m.has_key {
		out.Key = c.bytes(m.key)
		if out.Key == nil {
			out.Key = []byte{}
		}
	}
	if m.has_ttl {
		out.TTL = fromMs(m.ttl_ms)
	}
	if m.headers_len > 0 {
		out.Headers = make([]Header, 0, int(m.headers_len))
		for _, h := range items(m.headers, m.headers_len) {
			out.Headers = append(out.Headers, Header{Key: goString(h.key), Value: goBytes(h.value)})
		}
	}
	return out
}

// StartPosition is where a new subscription starts, or where a seek goes.
type StartPosition struct {
	kind  C.uint32_t
	value int64
}

var (
	// Latest: only messages appended from now on (the default).
	Latest = StartPosition{kind: C.RAPIDMQ_START_LATEST}
	// Earliest: the oldest retained message.
	Earliest = StartPosition{kind: C.RAPIDMQ_START_EARLIEST}
)

// AtOffset starts at offset, clamped to the retained range.
func AtOffset(offset uint64) StartPosition {
	return StartPosition{kind: C.RAPIDMQ_START_OFFSET, value: int64(offset)}
}

// AtTime starts at the first message appended at or after t.
func AtTime(t time.Time) StartPosition {
	return StartPosition{kind: C.RAPIDMQ_START_TIMESTAMP, value: t.UnixMilli()}
}

func (s StartPosition) c() C.RapidmqStart {
	return C.RapidmqStart{kind: s.kind, value: C.int64_t(s.value)}
}

// Ptr returns a pointer to v, for the optional fields of TopicConfig and QueueSettings.
func Ptr[T any](v T) *T {
	return &v
}
