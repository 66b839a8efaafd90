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

// Admin manages topics and subscriptions through a client. Get it with [Client.Admin].
type Admin struct {
	c *Client
}

// Storage says where a topic's partitions live.
type Storage uint32

const (
	// StorageDefault is the broker's default.
	StorageDefault Storage = C.RAPIDMQ_STORAGE_DEFAULT
	// StorageDisk is durable, in the broker's store.
	StorageDisk Storage = C.RAPIDMQ_STORAGE_DISK
	// StorageMemory is in memory only, lost on restart.
	StorageMemory Storage = C.RAPIDMQ_STORAGE_MEMORY
)

// TopicConfig holds topic settings; nil and zero values take the broker defaults (create) or
// keep the current value (alter). For retention, a set 0 means unlimited.
type TopicConfig struct {
	// Partitions (0: the broker default).
	Partitions uint32
	// Retention is time retention per partition.
	Retention *time.Duration
	// RetentionBytes is size retention per partition.
	RetentionBytes *uint64
	// RetentionMessages is message-count retention per partition.
	RetentionMessages *uint64
	// MaxMessageBytes is the largest message accepted.
	MaxMessageBytes *uint32
	// Storage is disk or memory.
	Storage Storage
	// Durability of acknowledgements.
	Durability Durability
	// DedupWindow: repeated msg-id headers within this window are dropped (0: off).
	DedupWindow *time.Duration
	// ReplicationFactor is the copies of each partition in cluster mode (nil on create:
	// min(3, voting nodes)); a single-node broker accepts 1 only, and describes nil.
	ReplicationFactor *uint32
}

func (t *TopicConfig) c() C.RapidmqTopicConfig {
	out := C.RapidmqTopicConfig{
		partitions: C.uint32_t(t.Partitions),
		storage:    C.uint32_t(t.Storage),
		durability: C.uint32_t(t.Durability),
	}
	if t.Retention != nil {
		out.has_retention_ms, out.retention_ms = true, ms(*t.Retention)
	}
	if t.RetentionBytes != nil {
		out.has_retention_bytes, out.retention_bytes = true, C.uint64_t(*t.RetentionBytes)
	}
	if t.RetentionMessages != nil {
		out.has_retention_messages, out.retention_messages = true, C.uint64_t(*t.RetentionMessages)
	}
	if t.MaxMessageBytes != nil {
		out.has_max_message_bytes, out.max_message_bytes = true, C.uint32_t(*t.MaxMessageBytes)
	}
	if t.DedupWindow != nil {
		out.has_dedup_window_ms, out.dedup_window_ms = true, ms(*t.DedupWindow)
	}
	if t.ReplicationFactor != nil {
		out.has_replication_factor, out.replication_factor = true, C.uint32_t(*t.ReplicationFactor)
	}
	return out
}

func topicConfigFromC(c *C.RapidmqTopicConfig) TopicConfig {
	out := TopicConfig{Partitions: uint32(c.partitions), Storage: Storage(c.storage), Durability: Durability(c.durability)}
	if c.has_retention_ms {
		out.Retention = Ptr(fromMs(c.retention_ms))
	}
	if c.has_retention_bytes {
		out.RetentionBytes = Ptr(uint64(c.retention_bytes))
	}
	if c.has_retention_messages {
		out.RetentionMessages = Ptr(uint64(c.retention_messages))
	}
	if c.has_max_message_bytes {
		out.MaxMessageBytes = Ptr(uint32(c.max_message_bytes))
	}
	if c.has_dedup_window_ms {
		out.DedupWindow = Ptr(fromMs(c.dedup_window_ms))
	}
	if c.has_replication_factor {
		out.ReplicationFactor = Ptr(uint32(c.replication_factor))
	}
	return out
}

// PartitionInfo describes one partition.
type PartitionInfo struct {
	Partition      uint32
	LogStartOffset uint64
	HighWatermark  uint64
	Bytes          uint64
	// Replicas are the nodes holding the partition in cluster mode, preferred leader first;
	// empty on a single-node broker.
	Replicas []uint64
	// Leader is the partition group's leader as the answering node knows it; nil on a
	// single-node broker, or while the group elects one.
	Leader *uint64
}

func partitionFromC(p *C.RapidmqPartitionInfo) PartitionInfo {
	out := PartitionInfo{
		Partition:      uint32(p.partition),
		LogStartOffset: uint64(p.log_start_offset),
		HighWatermark:  uint64(p.high_watermark),
		Bytes:          uint64(p.bytes),
		Replicas:       []uint64{},
	}
	for _, id := range items(p.replicas, p.replicas_len) {
		out.Replicas = append(out.Replicas, uint64(id))
	}
	if p.has_leader {
		out.Leader = Ptr(uint64(p.leader))
	}
	return out
}

// TopicInfo describes a topic.
type TopicInfo struct {
	Name       string
	Config     TopicConfig
	Partitions []PartitionInfo
	CreatedAt  time.Time
}

func topicFromC(t *C.RapidmqTopicInfo) TopicInfo {
	out := TopicInfo{Name: goString(t.name), Config: topicConfigFromC(&t.config), CreatedAt: timeFromMs(t.created_at_ms)}
	for _, p := range items(t.partitions, t.partitions_len) {
		out.Partitions = append(out.Partitions, partitionFromC(&p))
	}
	return out
}

// SubscriptionMode is stream or queue.
type SubscriptionMode uint32

const (
	// ModeStream: ordered per partition, offsets committed.
	ModeStream SubscriptionMode = C.RAPIDMQ_MODE_STREAM
	// ModeQueue: per-message acks, redelivery, dead letters.
	ModeQueue SubscriptionMode = C.RAPIDMQ_MODE_QUEUE
)

// String is "stream" or "queue".
func (m SubscriptionMode) String() string {
	if m == ModeQueue {
		return "queue"
	}
	return "stream"
}

// PartitionCursor is a subscription's position on one partition.
type PartitionCursor struct {
	Partition       uint32
	CommittedOffset uint64
	HighWatermark   uint64
	Lag             uint64
}

// MemberInfo is a live member of a subscription.
type MemberInfo struct {
	MemberID     string
	ConsumerName string
	Partitions   []uint32
}

// QueueStats are the counters of a queue subscription.
type QueueStats struct {
	InFlight     uint64
	Redeliveries uint64
	DeadLettered uint64
	Expired      uint64
}

// QueueInfo is the effective settings of a queue subscription.
type QueueInfo struct {
	AckDeadline     time.Duration
	MaxDeliveries   uint32
	DeadLetterTopic string
}

// SubscriptionInfo describes a subscription with its lag.
type SubscriptionInfo struct {
	Topic     string
	Name      string
	Mode      SubscriptionMode
	Cursors   []PartitionCursor
	Members   []MemberInfo
	TotalLag  uint64
	CreatedAt time.Time
	// Queue is set for queue subscriptions.
	Queue *QueueInfo
	// QueueStats is set for queue subscriptions.
	QueueStats *QueueStats
}

func subscriptionFromC(s *C.RapidmqSubscriptionInfo) SubscriptionInfo {
	out := SubscriptionInfo{
		Topic:     goString(s.topic),
		Name:      goString(s.name),
		Mode:      SubscriptionMode(s.mode),
		TotalLag:  uint64(s.total_lag),
		CreatedAt: timeFromMs(s.created_at_ms),
	}
	for _, c := range items(s.cursors, s.cursors_len) {
		out.Cursors = append(out.Cursors, PartitionCursor{uint32(c.partition), uint64(c.committed_offset), uint64(c.high_watermark), uint64(c.lag)})
	}
	for _, m := range items(s.members, s.members_len) {
		member := MemberInfo{MemberID: goString(m.member_id), ConsumerName: goString(m.consumer_name)}
		for _, p := range items(m.partitions, m.partitions_len) {
			member.Partitions = append(member.Partitions, uint32(p))
		}
		out.Members = append(out.Members, member)
	}
	if s.has_queue {
		out.Queue = &QueueInfo{
			AckDeadline:     fromMs(s.queue.ack_deadline_ms),
			MaxDeliveries:   uint32(s.queue.max_deliveries),
			DeadLetterTopic: goString(s.queue.dead_letter_topic),
		}
	}
	if s.has_queue_stats {
		q := s.queue_stats
		out.QueueStats = &QueueStats{uint64(q.in_flight), uint64(q.redeliveries), uint64(q.dead_lettered), uint64(q.expired)}
	}
	return out
}

// DeadLetter is a message that exhausted its deliveries, with where it came from.
type DeadLetter struct {
	// Partition in the dead-letter topic.
	Partition uint32
	// Offset in that partition.
	Offset            uint64
	OriginalTopic     string
	OriginalPartition uint32
	OriginalOffset    uint64
	Reason            string
	Attempts          uint32
	// Message carries the rapidmq-dlq-* headers the broker added.
	Message ReceivedMessage
}

// DeadLetterPage is one page of the dead letters not yet replayed.
type DeadLetterPage struct {
	// DeadLetters are oldest first within each partition of the dead-letter topic, partitions
	// in order.
	DeadLetters []DeadLetter
	// NextPageToken is the pageToken of the next page; "" when there is nothing more.
	NextPageToken string
}

// DeadLetterReplay is what one ReplayDeadLetters call did.
type DeadLetterReplay struct {
	// Replayed is how many dead letters this call published back to their topics.
	Replayed uint32
	// Remaining is how many messages are still pending in the dead-letter topic, over all
	// partitions.
	Remaining uint64
}

// BrokerStatus is the broker's version, uptime and counts.
type BrokerStatus struct {
	Version       string
	Uptime        time.Duration
	Topics        uint32
	Subscriptions uint32
	NodeID        string
}

func (a *Admin) call(ctx context.Context, f func(c *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32) error {
	defer runtime.KeepAlive(a.c)
	return blocking(ctx, func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return f(a.c.h, cancel, cerr)
	})
}

func (a *Admin) topicCall(ctx context.Context, f func(c *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqTopicInfo, cerr *C.RapidmqError) uint32) (TopicInfo, error) {
	var info *C.RapidmqTopicInfo
	err := a.call(ctx, func(c *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return f(c, cancel, &info, cerr)
	})
	if err != nil {
		return TopicInfo{}, err
	}
	defer C.rapidmq_topic_info_free(info)
	return topicFromC(info), nil
}

func (a *Admin) subscriptionCall(ctx context.Context, f func(c *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqSubscriptionInfo, cerr *C.RapidmqError) uint32) (SubscriptionInfo, error) {
	var info *C.RapidmqSubscriptionInfo
	err := a.call(ctx, func(c *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return f(c, cancel, &info, cerr)
	})
	if err != nil {
		return SubscriptionInfo{}, err
	}
	defer C.rapidmq_subscription_info_free(info)
	return subscriptionFromC(info), nil
}

// CreateTopic creates a topic. Errors: [ErrTopicAlreadyExists], [ErrInvalidName],
// [ErrInvalidPartitionCount], [ErrInvalidTopicConfig].
func (a *Admin) CreateTopic(ctx context.Context, name string, cfg TopicConfig) (TopicInfo, error) {
	var p pins
	defer p.Unpin()
	n, c := p.str(name), cfg.c()
	return a.topicCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqTopicInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_create_topic(h, n, &c, cancel, out, cerr)
	})
}

// AlterTopic changes a topic's retention, max message size, durability or dedup window.
// Errors: [ErrTopicNotFound], [ErrInvalidPartitionCount], [ErrInvalidTopicConfig].
func (a *Admin) AlterTopic(ctx context.Context, name string, cfg TopicConfig) (TopicInfo, error) {
	var p pins
	defer p.Unpin()
	n, c := p.str(name), cfg.c()
	return a.topicCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqTopicInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_alter_topic(h, n, &c, cancel, out, cerr)
	})
}

// DescribeTopic describes one topic with its partitions. Errors: [ErrTopicNotFound].
func (a *Admin) DescribeTopic(ctx context.Context, name string) (TopicInfo, error) {
	var p pins
	defer p.Unpin()
	n := p.str(name)
	return a.topicCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqTopicInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_describe_topic(h, n, cancel, out, cerr)
	})
}

// ListTopics lists every topic.
func (a *Admin) ListTopics(ctx context.Context) ([]TopicInfo, error) {
	var list *C.RapidmqTopicList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_topics(h, cancel, &list, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_topic_list_free(list)
	out := []TopicInfo{}
	for i := range items(list.items, list.len) {
		out = append(out, topicFromC(&items(list.items, list.len)[i]))
	}
	return out, nil
}

// DeleteTopic deletes a topic and its subscriptions. Errors: [ErrTopicNotFound].
func (a *Admin) DeleteTopic(ctx context.Context, name string) error {
	var p pins
	defer p.Unpin()
	n := p.str(name)
	return a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_delete_topic(h, n, cancel, cerr)
	})
}

// CreateSubscription creates a stream subscription starting at start. Errors:
// [ErrTopicNotFound], [ErrSubscriptionAlreadyExists], [ErrInvalidName].
func (a *Admin) CreateSubscription(ctx context.Context, topic, name string, start StartPosition) (SubscriptionInfo, error) {
	var p pins
	defer p.Unpin()
	t, n, s := p.str(topic), p.str(name), start.c()
	return a.subscriptionCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqSubscriptionInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_create_subscription(h, t, n, s, cancel, out, cerr)
	})
}

// CreateQueueSubscription creates a queue subscription with settings. Errors:
// [ErrTopicNotFound], [ErrSubscriptionAlreadyExists], [ErrInvalidName], [ErrInvalidArgument].
func (a *Admin) CreateQueueSubscription(ctx context.Context, topic, name string, start StartPosition, settings QueueSettings) (SubscriptionInfo, error) {
	var p pins
	defer p.Unpin()
	t, n, s, q := p.str(topic), p.str(name), start.c(), settings.c(&p)
	return a.subscriptionCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqSubscriptionInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_create_queue_subscription(h, t, n, s, &q, cancel, out, cerr)
	})
}

// DescribeSubscription describes a subscription with its cursors, members and lag. Errors:
// [ErrSubscriptionNotFound].
func (a *Admin) DescribeSubscription(ctx context.Context, topic, name string) (SubscriptionInfo, error) {
	var p pins
	defer p.Unpin()
	t, n := p.str(topic), p.str(name)
	return a.subscriptionCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqSubscriptionInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_describe_subscription(h, t, n, cancel, out, cerr)
	})
}

// ListSubscriptions lists the subscriptions of topic, or of every topic when topic is "".
func (a *Admin) ListSubscriptions(ctx context.Context, topic string) ([]SubscriptionInfo, error) {
	var p pins
	defer p.Unpin()
	t := p.str(topic)
	var list *C.RapidmqSubscriptionList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_subscriptions(h, t, cancel, &list, cerr)
	})
	if err != nil {
		return nil, err
	}
	defer C.rapidmq_subscription_list_free(list)
	out := []SubscriptionInfo{}
	for i := range items(list.items, list.len) {
		out = append(out, subscriptionFromC(&items(list.items, list.len)[i]))
	}
	return out, nil
}

// Lag is a subscription's total lag: messages not yet committed, over all partitions.
func (a *Admin) Lag(ctx context.Context, topic, name string) (uint64, error) {
	var p pins
	defer p.Unpin()
	t, n := p.str(topic), p.str(name)
	var lag C.uint64_t
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_lag(h, t, n, cancel, &lag, cerr)
	})
	return uint64(lag), err
}

// SeekSubscription moves a subscription's cursor on every partition. Errors:
// [ErrSubscriptionNotFound].
func (a *Admin) SeekSubscription(ctx context.Context, topic, name string, position StartPosition) (SubscriptionInfo, error) {
	return a.seek(ctx, topic, name, position, false, 0)
}

// SeekPartition moves a subscription's cursor on one partition. Errors:
// [ErrSubscriptionNotFound], [ErrPartitionNotFound], [ErrOffsetOutOfRange].
func (a *Admin) SeekPartition(ctx context.Context, topic, name string, partition uint32, position StartPosition) (SubscriptionInfo, error) {
	return a.seek(ctx, topic, name, position, true, partition)
}

func (a *Admin) seek(ctx context.Context, topic, name string, position StartPosition, one bool, partition uint32) (SubscriptionInfo, error) {
	var p pins
	defer p.Unpin()
	t, n, s := p.str(topic), p.str(name), position.c()
	return a.subscriptionCall(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, out **C.RapidmqSubscriptionInfo, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_seek_subscription(h, t, n, s, C.bool(one), C.uint32_t(partition), cancel, out, cerr)
	})
}

// DeleteSubscription deletes a subscription. Errors: [ErrSubscriptionNotFound].
func (a *Admin) DeleteSubscription(ctx context.Context, topic, name string) error {
	var p pins
	defer p.Unpin()
	t, n := p.str(topic), p.str(name)
	return a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_delete_subscription(h, t, n, cancel, cerr)
	})
}

// ListDeadLetters lists one page of the dead letters of deadLetterTopic (e.g. "orders.dlq")
// not yet replayed: at most max (0: the broker default, 100; at most 1000), from pageToken (the
// NextPageToken of the previous page) or, when it is "", from the start. Follow NextPageToken
// until it is ""; a page can be shorter than max. Errors: [ErrTopicNotFound],
// [ErrInvalidArgument] (max above 1000, or a token not issued for this topic).
//
//	var token string
//	for {
//		page, err := admin.ListDeadLetters(ctx, "orders.dlq", 1000, token)
//		if err != nil {
//			return err
//		}
//		handle(page.DeadLetters)
//		if token = page.NextPageToken; token == "" {
//			break
//		}
//	}
func (a *Admin) ListDeadLetters(ctx context.Context, deadLetterTopic string, max uint32, pageToken string) (DeadLetterPage, error) {
	var p pins
	defer p.Unpin()
	t, token := p.str(deadLetterTopic), p.str(pageToken)
	var list *C.RapidmqDeadLetterList
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_list_dead_letters(h, t, C.uint32_t(max), token, cancel, &list, cerr)
	})
	if err != nil {
		return DeadLetterPage{}, err
	}
	defer C.rapidmq_dead_letter_list_free(list)
	out := DeadLetterPage{DeadLetters: []DeadLetter{}, NextPageToken: goString(list.next_page_token)}
	for i := range items(list.items, list.len) {
		d := &items(list.items, list.len)[i]
		out.DeadLetters = append(out.DeadLetters, DeadLetter{
			Partition:         uint32(d.partition),
			Offset:            uint64(d.offset),
			OriginalTopic:     goString(d.original_topic),
			OriginalPartition: uint32(d.original_partition),
			OriginalOffset:    uint64(d.original_offset),
			Reason:            goString(d.reason),
			Attempts:          uint32(d.attempts),
			Message:           receivedFromC(&d.message),
		})
	}
	return out, nil
}

// ReplayDeadLetters publishes up to max (0: the broker default, 1000; at most 10000) pending
// dead letters back to the topics they came from, without the rapidmq-dlq-* headers, and says
// how many it published and how many remain: call it again until Remaining is 0. Sent once,
// never retried. Errors: [ErrTopicNotFound], [ErrInvalidArgument] (max above 10000).
func (a *Admin) ReplayDeadLetters(ctx context.Context, deadLetterTopic string, max uint32) (DeadLetterReplay, error) {
	var p pins
	defer p.Unpin()
	t := p.str(deadLetterTopic)
	var out C.RapidmqDeadLetterReplay
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_replay_dead_letters(h, t, C.uint32_t(max), cancel, &out, cerr)
	})
	if err != nil {
		return DeadLetterReplay{}, err
	}
	return DeadLetterReplay{Replayed: uint32(out.replayed), Remaining: uint64(out.remaining)}, nil
}

// Status is the broker's version, uptime and counts.
func (a *Admin) Status(ctx context.Context) (BrokerStatus, error) {
	var s *C.RapidmqBrokerStatus
	err := a.call(ctx, func(h *C.RapidmqClient, cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32 {
		return C.rapidmq_admin_status(h, cancel, &s, cerr)
	})
	if err != nil {
		return BrokerStatus{}, err
	}
	defer C.rapidmq_broker_status_free(s)
	return BrokerStatus{goString(s.version), fromMs(s.uptime_ms), uint32(s.topics), uint32(s.subscriptions), goString(s.node_id)}, nil
}
