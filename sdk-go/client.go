package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import (
	"context"
	"runtime"
	"time"
)

// Client is a connection to a RapidMQ broker, shared by the producers and consumers made from
// it. It is safe for concurrent use. Close it when done.
type Client struct {
	h *C.RapidmqClient
}

// Connect validates cfg and connects to the first reachable endpoint.
//
// With credentials it authenticates at connect: a token is checked with WhoAmI, a user and
// password log in (and log in again before the session expires).
//
// Errors: [ErrInvalidArgument] for a bad setting, [ErrUnavailable] (retriable) when no
// endpoint answers, [ErrTlsHandshakeFailed] (not retriable) when the TLS handshake fails,
// [ErrUnauthenticated] (not retriable) for credentials the broker refuses, ctx.Err() when ctx
// ends first.
func Connect(ctx context.Context, cfg ClientConfig) (*Client, error) {
	rt, err := sharedRuntime()
	if err != nil {
		return nil, err
	}
	var p pins
	defer p.Unpin()
	endpoints := make([]C.RapidmqStr, len(cfg.Endpoints))
	for i, e := range cfg.Endpoints {
		endpoints[i] = p.str(e)
	}
	c := C.RapidmqClientConfig{
		endpoints_len:      C.size_t(len(endpoints)),
		connect_timeout_ms: ms(cfg.ConnectTimeout),
		request_timeout_ms: ms(cfg.RequestTimeout),
		token:              p.str(cfg.Token),
		user:               p.str(cfg.User),
		password:           p.str(cfg.Password),
		tenant:             p.str(cfg.Tenant),
	}
	if len(endpoints) > 0 {
		p.Pin(&endpoints[0])
		c.endpoints = &endpoints[0]
	}
	var tls C.RapidmqTlsConfig
	if cfg.TLS != nil {
		tls = C.RapidmqTlsConfig{
			ca_cert_path:     p.str(cfg.TLS.CACertPath),
			ca_cert_pem:      p.str(cfg.TLS.CACertPEM),
			client_cert_path: p.str(cfg.TLS.ClientCertPath),
			client_cert_pem:  p.str(cfg.TLS.ClientCertPEM),
			client_key_path:  p.str(cfg.TLS.ClientKeyPath),
			client_key_pem:   p.str(cfg.TLS.ClientKeyPEM),
			server_name:      p.str(cfg.TLS.ServerName),
		}
		p.Pin(&tls)
		c.tls = &tls
	}
	var h *C.RapidmqClient
	err = blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_client_connect(rt, &c, cancel, &h, cerr)
	})
	if err != nil {
		return nil, err
	}
	client := &Client{h: h}
	runtime.AddCleanup(client, func(h *C.RapidmqClient) { C.rapidmq_client_free(h) }, h)
	return client, nil
}

// Endpoints returns the endpoints the client connects to: the configured ones, or those of the
// last [Client.SetEndpoints].
func (c *Client) Endpoints() []string {
	defer runtime.KeepAlive(c)
	var list *C.RapidmqEndpointList
	var cerr C.RapidmqError
	if check(context.Background(), C.rapidmq_client_endpoints(c.h, &list, &cerr), &cerr) != nil {
		return nil
	}
	defer C.rapidmq_endpoint_list_free(list)
	out := make([]string, 0, int(list.len))
	for _, e := range items(list.items, list.len) {
		out = append(out, goString(e))
	}
	return out
}

// IsClosed reports whether [Client.Close] was called.
func (c *Client) IsClosed() bool {
	defer runtime.KeepAlive(c)
	return bool(C.rapidmq_client_is_closed(c.h))
}

// SetEndpoints replaces the endpoints (e.g. after the broker moved); the producers and
// consumers of this client follow.
func (c *Client) SetEndpoints(endpoints ...string) error {
	defer runtime.KeepAlive(c)
	var p pins
	defer p.Unpin()
	list := make([]C.RapidmqStr, len(endpoints))
	for i, e := range endpoints {
		list[i] = p.str(e)
	}
	var first *C.RapidmqStr
	if len(list) > 0 {
		first = &list[0]
	}
	var cerr C.RapidmqError
	return check(context.Background(), C.rapidmq_client_set_endpoints(c.h, first, C.size_t(len(list)), &cerr), &cerr)
}

// Close closes every producer (flushing) and consumer (final commits and acks) of this client,
// then the connection. Idempotent. Afterwards every operation fails with [ErrClosed].
func (c *Client) Close() error {
	return c.CloseContext(context.Background())
}

// CloseContext is Close bounded by ctx.
func (c *Client) CloseContext(ctx context.Context) error {
	defer runtime.KeepAlive(c)
	return blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_client_close(c.h, cancel, cerr)
	})
}

// Admin returns the admin API of this client.
func (c *Client) Admin() *Admin {
	return &Admin{c: c}
}

// PublishAck is a raw publish acknowledgement ([Client.PublishBatch]).
type PublishAck struct {
	Partition  uint32
	BaseOffset uint64
	Count      uint32
	// Duplicate reports that the broker already had this batch (the offsets are the original
	// ones).
	Duplicate  bool
	Scheduled  uint32
	Durability Durability
}

// messagesC converts messages for one call; the pins keep their memory in place.
func messagesC(p *pins, messages []Message) []C.RapidmqMessage {
	out := make([]C.RapidmqMessage, len(messages))
	for i := range messages {
		out[i] = messageC(p, &messages[i])
	}
	return out
}

func messageC(p *pins, m *Message) C.RapidmqMessage {
	c := messageScalarsC(m)
	c.value = p.bytes(m.Value)
	c.key = p.bytes(m.Key)
	c.headers, c.headers_len = headersC(p, m.Headers)
	return c
}

// messageScalarsC converts everything of m but its value, key and headers.
func messageScalarsC(m *Message) C.RapidmqMessage {
	c := C.RapidmqMessage{
		has_key:  C.bool(m.Key != nil),
		priority: C.uint8_t(m.Priority),
		delay_ms: ms(m.Delay),
	}
	if !m.Timestamp.IsZero() {
		c.timestamp_ms = C.int64_t(m.Timestamp.UnixMilli())
	}
	if !m.DeliverAt.IsZero() {
		c.deliver_at_ms = C.int64_t(max(m.DeliverAt.UnixMilli(), 1))
	}
	if m.TTL > 0 {
		c.has_ttl = true
		c.ttl_ms = ms(m.TTL)
	}
	return c
}

// headersC pins the headers and returns the array of views (nil when empty) and its length.
func headersC(p *pins, headers []Header) (*C.RapidmqHeaderIn, C.size_t) {
	if len(headers) == 0 {
		return nil, 0
	}
	list := make([]C.RapidmqHeaderIn, len(headers))
	for i, h := range headers {
		list[i] = C.RapidmqHeaderIn{key: p.str(h.Key), value: p.bytes(h.Value)}
	}
	p.Pin(&list[0])
	return &list[0], C.size_t(len(list))
}

// PublishBatch publishes messages to one partition in a single attempt, without batching or
// retries; producerID 0 disables idempotence. The raw path for tools and tests: applications
// use a [Producer].
func (c *Client) PublishBatch(ctx context.Context, topic string, partition uint32, producerID, baseSequence uint64, messages []Message) (PublishAck, error) {
	defer runtime.KeepAlive(c)
	var p pins
	defer p.Unpin()
	list := messagesC(&p, messages)
	var first *C.RapidmqMessage
	if len(list) > 0 {
		p.Pin(&list[0])
		first = &list[0]
	}
	t := p.str(topic)
	var ack C.RapidmqPublishAck
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_client_publish_batch(c.h, t, C.uint32_t(partition), C.uint64_t(producerID),
			C.uint64_t(baseSequence), first, C.size_t(len(list)), cancel, &ack, cerr)
	})
	if err != nil {
		return PublishAck{}, err
	}
	return PublishAck{
		Partition:  uint32(ack.partition),
		BaseOffset: uint64(ack.base_offset),
		Count:      uint32(ack.count),
		Duplicate:  bool(ack.duplicate),
		Scheduled:  uint32(ack.scheduled),
		Durability: Durability(ack.durability),
	}, nil
}

// Request sends msg to topic as a request and returns the first reply, waiting at most
// timeout (above 0) for the send and the reply together. The request goes out with a reply-to
// header (this client's inbox topic, made on the first request) and a unique correlation-id;
// a responder answers with [Client.Reply]. No reply in time is an error matching [ErrTimeout];
// ctx cancels the wait.
func (c *Client) Request(ctx context.Context, topic string, msg Message, timeout time.Duration) (ReceivedMessage, error) {
	defer runtime.KeepAlive(c)
	var p pins
	defer p.Unpin()
	t := p.str(topic)
	m := messageC(&p, &msg)
	var res *C.RapidmqReply
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_client_request(c.h, t, &m, ms(timeout), cancel, &res, cerr)
	})
	if err != nil {
		return ReceivedMessage{}, err
	}
	defer C.rapidmq_reply_free(res)
	return receivedFromC(&res.message), nil
}

// Reply answers request (a message sent with [Client.Request], as any consumer received it)
// with reply: it goes to the request's reply-to topic with its correlation-id, and Reply
// returns once the broker stored it. A message that was not sent as a request is an error
// matching [ErrInvalidArgument]; a requester that has closed since, [ErrTopicNotFound].
func (c *Client) Reply(ctx context.Context, request ReceivedMessage, reply Message) (Delivery, error) {
	defer runtime.KeepAlive(c)
	var p pins
	defer p.Unpin()
	headers, n := headersC(&p, request.Headers)
	m := messageC(&p, &reply)
	var d C.RapidmqDelivery
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_client_reply(c.h, headers, n, &m, cancel, &d, cerr)
	})
	if err != nil {
		return Delivery{}, err
	}
	return deliveryFromC(d), nil
}

// FetchResult holds messages read by [Client.Fetch].
type FetchResult struct {
	Messages       []ReceivedMessage
	HighWatermark  uint64
	LogStartOffset uint64
}

// Fetch reads up to maxMessages of partition from offset, waiting up to maxWait for data.
func (c *Client) Fetch(ctx context.Context, topic string, partition uint32, offset uint64, maxMessages uint32, maxWait time.Duration) (FetchResult, error) {
	defer runtime.KeepAlive(c)
	var p pins
	defer p.Unpin()
	t := p.str(topic)
	var res *C.RapidmqFetchResult
	err := blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_client_fetch(c.h, t, C.uint32_t(partition), C.uint64_t(offset),
			C.uint32_t(maxMessages), ms(maxWait), cancel, &res, cerr)
	})
	if err != nil {
		return FetchResult{}, err
	}
	defer C.rapidmq_fetch_result_free(res)
	out := FetchResult{HighWatermark: uint64(res.high_watermark), LogStartOffset: uint64(res.log_start_offset)}
	for i := range items(res.items, res.len) {
		out.Messages = append(out.Messages, receivedFromC(&items(res.items, res.len)[i]))
	}
	return out, nil
}
