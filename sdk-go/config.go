package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import (
	"fmt"
	"time"
)

// TLSConfig holds the TLS settings for https:// endpoints (TLS is on exactly for them). Each PEM
// is given as a file (the *Path fields, read again at every reconnect, so rotated files are
// picked up) or inline (the *PEM fields), not both; empty means unset. A failed handshake is
// [ErrTlsHandshakeFailed], not retriable.
type TLSConfig struct {
	// CACertPath is a PEM file with the CA certificates to trust; the system roots when
	// neither it nor CACertPEM is set.
	CACertPath string
	// CACertPEM is the CA certificates to trust, as PEM text.
	CACertPEM string
	// ClientCertPath is a PEM file with the client certificate (chain), for mutual TLS; it
	// needs a key too.
	ClientCertPath string
	// ClientCertPEM is the client certificate (chain) as PEM text.
	ClientCertPEM string
	// ClientKeyPath is a PEM file with the private key of the client certificate.
	ClientKeyPath string
	// ClientKeyPEM is the private key of the client certificate as PEM text.
	ClientKeyPEM string
	// ServerName is the name to verify the broker's certificate against; the endpoint's host
	// when empty.
	ServerName string
}

// String prints the settings without the private key (ClientKeyPEM shows as ***); certificates
// and paths are not secret.
func (c TLSConfig) String() string {
	return fmt.Sprintf("TLSConfig{CACertPath:%q CACertPEM:%s ClientCertPath:%q ClientCertPEM:%s ClientKeyPath:%q ClientKeyPEM:%s ServerName:%q}",
		c.CACertPath, present(c.CACertPEM), c.ClientCertPath, present(c.ClientCertPEM), c.ClientKeyPath, masked(c.ClientKeyPEM), c.ServerName)
}

// GoString is [TLSConfig.String], so %#v does not print the key either.
func (c TLSConfig) GoString() string { return c.String() }

// present says whether a long, non-secret PEM is set, without printing it.
func present(pem string) string {
	if pem == "" {
		return ""
	}
	return fmt.Sprintf("<%d bytes>", len(pem))
}

// ClientConfig says how to reach the broker. Start from [NewClientConfig].
type ClientConfig struct {
	// Endpoints are gRPC URLs (http://host:port, or https://host:port for TLS), tried in
	// order.
	Endpoints []string
	// ConnectTimeout bounds connecting to one endpoint.
	ConnectTimeout time.Duration
	// RequestTimeout bounds one request attempt.
	RequestTimeout time.Duration
	// TLS holds the settings for https:// endpoints (nil: the system roots). Set with an
	// http:// endpoint it is [ErrInvalidArgument], so TLS is never silently off.
	TLS *TLSConfig
	// Token is an API token (rmq_<id>_<secret>), sent on every call; never printed.
	Token string
	// User and Password log in at connect; the session is renewed before it expires.
	// Password is never printed.
	User, Password string
	// Tenant is the tenant to act in, sent as rapidmq-tenant with every request (empty: the
	// credentials' tenant). Only a cluster admin may name a tenant other than its own; for
	// anyone else, and for a tenant that does not exist, requests fail with
	// [ErrTenantNotFound]. [Connect] fails with [ErrInvalidArgument] for a name that is not a
	// tenant name ([A-Za-z0-9._-]{1,64}).
	Tenant string
}

// String prints the configuration without its secrets (Token and Password show as ***).
func (c ClientConfig) String() string {
	return fmt.Sprintf("ClientConfig{Endpoints:%v ConnectTimeout:%v RequestTimeout:%v TLS:%t Token:%s User:%q Password:%s Tenant:%q}",
		c.Endpoints, c.ConnectTimeout, c.RequestTimeout, c.TLS != nil, masked(c.Token), c.User, masked(c.Password), c.Tenant)
}

// GoString is [ClientConfig.String], so %#v does not print the secrets either.
func (c ClientConfig) GoString() string { return c.String() }

// masked is *** for a secret that is set, empty otherwise.
func masked(secret string) string {
	if secret == "" {
		return ""
	}
	return "***"
}

// NewClientConfig returns the core's client defaults for endpoints (none: the default endpoint,
// http://127.0.0.1:7420).
func NewClientConfig(endpoints ...string) ClientConfig {
	var d C.RapidmqClientConfig
	C.rapidmq_client_config_default(&d)
	return ClientConfig{
		Endpoints:      endpoints,
		ConnectTimeout: fromMs(d.connect_timeout_ms),
		RequestTimeout: fromMs(d.request_timeout_ms),
	}
}

// RetryPolicy is exponential backoff with full jitter, within a budget.
type RetryPolicy struct {
	InitialBackoff  time.Duration
	MaxBackoff      time.Duration
	MaxRetries      uint32
	DeliveryTimeout time.Duration
}

func retryFromC(r C.RapidmqRetryPolicy) RetryPolicy {
	return RetryPolicy{fromMs(r.initial_backoff_ms), fromMs(r.max_backoff_ms), uint32(r.max_retries), fromMs(r.delivery_timeout_ms)}
}

func (r RetryPolicy) c() C.RapidmqRetryPolicy {
	return C.RapidmqRetryPolicy{
		initial_backoff_ms:  ms(r.InitialBackoff),
		max_backoff_ms:      ms(r.MaxBackoff),
		max_retries:         C.uint32_t(r.MaxRetries),
		delivery_timeout_ms: ms(r.DeliveryTimeout),
	}
}

// ProducerConfig holds producer settings. Start from [NewProducerConfig].
type ProducerConfig struct {
	// Topic to publish to.
	Topic string
	// Linger is how long a partition's batch waits for more messages.
	Linger time.Duration
	// MaxBatchMessages: a batch is sent once it holds this many messages.
	MaxBatchMessages int
	// MaxBatchBytes: a batch is sent before it grows past this many encoded bytes.
	MaxBatchBytes int
	// MaxInFlightRequests bounds publish requests in flight across partitions.
	MaxInFlightRequests int
	// MaxInFlightPerPartition bounds pipelined batches per partition (1 to 8).
	MaxInFlightPerPartition int
	// MaxBufferedMessages: sends wait while this many messages are buffered or in flight.
	MaxBufferedMessages int
	// Idempotence (producer id + sequence) makes retries safe from duplicates.
	Idempotence bool
	// Retry is the retry policy of failed publishes.
	Retry RetryPolicy
	// Compression packs each batch's messages (CompressionNone, CompressionLZ4,
	// CompressionZstd); the broker stores them as sent and consumers unpack them.
	Compression Compression
}

// Compression is how a producer packs each batch's messages. A batch that would not shrink is
// sent plain.
type Compression uint32

const (
	// CompressionNone: messages travel and are stored as they are (the default).
	CompressionNone Compression = C.RAPIDMQ_COMPRESSION_NONE
	// CompressionLZ4: LZ4 frames, cheap on CPU, a moderate ratio.
	CompressionLZ4 Compression = C.RAPIDMQ_COMPRESSION_LZ4
	// CompressionZstd: Zstandard frames (level 3), a better ratio for more CPU.
	CompressionZstd Compression = C.RAPIDMQ_COMPRESSION_ZSTD
)

// NewProducerConfig returns the core's producer defaults for topic.
func NewProducerConfig(topic string) ProducerConfig {
	var d C.RapidmqProducerConfig
	C.rapidmq_producer_config_default(&d)
	return ProducerConfig{
		Topic:                   topic,
		Linger:                  time.Duration(d.linger_us) * time.Microsecond,
		MaxBatchMessages:        int(d.max_batch_messages),
		MaxBatchBytes:           int(d.max_batch_bytes),
		MaxInFlightRequests:     int(d.max_in_flight_requests),
		MaxInFlightPerPartition: int(d.max_in_flight_per_partition),
		MaxBufferedMessages:     int(d.max_buffered_messages),
		Idempotence:             bool(d.idempotence),
		Retry:                   retryFromC(d.retry),
		Compression:             Compression(d.compression),
	}
}

func nonNegative(n int) C.uint64_t {
	if n < 0 {
		return 0
	}
	return C.uint64_t(n)
}

func (c *ProducerConfig) c(p *pins) C.RapidmqProducerConfig {
	return C.RapidmqProducerConfig{
		topic:                       p.str(c.Topic),
		linger_us:                   C.uint64_t(max(c.Linger, 0) / time.Microsecond),
		max_batch_messages:          nonNegative(c.MaxBatchMessages),
		max_batch_bytes:             nonNegative(c.MaxBatchBytes),
		max_in_flight_requests:      nonNegative(c.MaxInFlightRequests),
		max_in_flight_per_partition: nonNegative(c.MaxInFlightPerPartition),
		max_buffered_messages:       nonNegative(c.MaxBufferedMessages),
		idempotence:                 C.bool(c.Idempotence),
		retry:                       c.Retry.c(),
		compression:                 C.uint32_t(c.Compression),
	}
}

// QueueSettings are the settings of a queue subscription; nil and zero fields take the broker
// defaults.
type QueueSettings struct {
	// AckDeadline: an unacked delivery is redelivered after this long (0: broker default, 30 s).
	AckDeadline time.Duration
	// MaxDeliveries: deliveries before a message is dead-lettered (nil: broker default, 5; 0 is
	// refused with INVALID_ARGUMENT).
	MaxDeliveries *uint32
	// DeadLetterTopic (empty: the broker default, <topic>.dlq).
	DeadLetterTopic string
}

func (q *QueueSettings) c(p *pins) C.RapidmqQueueSettings {
	out := C.RapidmqQueueSettings{dead_letter_topic: p.str(q.DeadLetterTopic)}
	if q.AckDeadline > 0 {
		out.has_ack_deadline = true
		out.ack_deadline_ms = ms(q.AckDeadline)
	}
	if q.MaxDeliveries != nil {
		out.has_max_deliveries = true
		out.max_deliveries = C.uint32_t(*q.MaxDeliveries)
	}
	return out
}

// ConsumerConfig holds consumer settings, for stream mode ([Client.Subscribe]) and queue mode
// ([Client.SubscribeQueue]). Start from [NewConsumerConfig].
type ConsumerConfig struct {
	// Topic to consume.
	Topic string
	// Subscription name; empty for an ephemeral live tail (stream mode, no commits).
	Subscription string
	// Start is where a new subscription starts.
	Start StartPosition
	// Prefetch bounds the messages buffered ahead of Poll (credits granted to the broker); 0,
	// the default, means 10,000 in stream mode and 1,000 in queue mode (where each buffered
	// delivery holds a lease).
	Prefetch uint32
	// PrefetchBytes bounds a stream consumer's buffer in bytes of delivered batches (passed by
	// one batch at most); 0, the default, means 1 MiB. Queue mode ignores it.
	PrefetchBytes uint64
	// CommitInterval: how often acks are committed (stream) or sent (queue).
	CommitInterval time.Duration
	// AutoCommit acknowledges what Poll returns.
	AutoCommit bool
	// Queue holds the settings used when SubscribeQueue creates the subscription.
	Queue QueueSettings
	// ConsumerName is shown by DescribeSubscription.
	ConsumerName string
	// Reconnect is the reconnect backoff.
	Reconnect RetryPolicy
}

// NewConsumerConfig returns the core's consumer defaults for subscription on topic.
func NewConsumerConfig(topic, subscription string) ConsumerConfig {
	var d C.RapidmqConsumerConfig
	C.rapidmq_consumer_config_default(&d)
	return ConsumerConfig{
		Topic:          topic,
		Subscription:   subscription,
		Start:          StartPosition{kind: d.start.kind, value: int64(d.start.value)},
		Prefetch:       uint32(d.prefetch),
		PrefetchBytes:  uint64(d.prefetch_bytes),
		CommitInterval: fromMs(d.commit_interval_ms),
		AutoCommit:     bool(d.auto_commit),
		Reconnect:      retryFromC(d.reconnect),
	}
}

func (c *ConsumerConfig) c(p *pins) C.RapidmqConsumerConfig {
	return C.RapidmqConsumerConfig{
		topic:              p.str(c.Topic),
		subscription:       p.str(c.Subscription),
		start:              c.Start.c(),
		prefetch:           C.uint32_t(c.Prefetch),
		prefetch_bytes:     C.uint64_t(c.PrefetchBytes),
		commit_interval_ms: ms(c.CommitInterval),
		auto_commit:        C.bool(c.AutoCommit),
		queue:              c.Queue.c(p),
		consumer_name:      p.str(c.ConsumerName),
		reconnect:          c.Reconnect.c(),
	}
}
