package rapidmq_test

// Admin conformance (C12, C13) against a real broker.

import (
	"errors"
	"strings"
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// C13 admin-topics-subscriptions-lag (topics).
func TestTopicsCanBeCreatedListedDescribedAndDeleted(t *testing.T) {
	_, client := setup(t)
	admin, ctx := client.Admin(), ctxT(t)
	info, err := admin.CreateTopic(ctx, "admin-topic", partitions(3))
	if err != nil || len(info.Partitions) != 3 {
		t.Fatalf("create: %+v %v", info, err)
	}
	_, err = admin.CreateTopic(ctx, "admin-topic", rapidmq.TopicConfig{})
	if !errors.Is(err, rapidmq.ErrTopicAlreadyExists) || code(err) != 2002 {
		t.Fatalf("duplicate: %v", err)
	}
	topics, err := admin.ListTopics(ctx)
	if err != nil || len(topics) != 1 || topics[0].Name != "admin-topic" {
		t.Fatalf("list: %+v %v", topics, err)
	}
	described, err := admin.DescribeTopic(ctx, "admin-topic")
	if err != nil || described.Config.Partitions != 3 {
		t.Fatalf("describe: %+v %v", described, err)
	}
	if err := admin.DeleteTopic(ctx, "admin-topic"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DescribeTopic(ctx, "admin-topic"); !errors.Is(err, rapidmq.ErrTopicNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	status, err := admin.Status(ctx)
	if err != nil || status.Topics != 0 || status.Version == "" {
		t.Fatalf("status: %+v %v", status, err)
	}
}

// C12 bad-input-errors.
func TestBadNamesAndCountsAreRejectedWithStableCodes(t *testing.T) {
	_, client := setup(t)
	admin, ctx := client.Admin(), ctxT(t)
	for _, name := range []string{"bad name", strings.Repeat("x", 201)} {
		_, err := admin.CreateTopic(ctx, name, rapidmq.TopicConfig{})
		var e *rapidmq.Error
		if !errors.Is(err, rapidmq.ErrInvalidName) || !errors.As(err, &e) || e.Code != 1003 || e.Retriable {
			t.Fatalf("%q: %v", name, err)
		}
	}
	if _, err := admin.CreateTopic(ctx, "exists", partitions(1)); err != nil {
		t.Fatal(err)
	}
	_, err := admin.DescribeSubscription(ctx, "exists", "nobody")
	if !errors.Is(err, rapidmq.ErrSubscriptionNotFound) || code(err) != 4001 {
		t.Fatalf("unknown subscription: %v", err)
	}
	if _, err := admin.CreateTopic(ctx, "too-many", partitions(1_000_000)); !errors.Is(err, rapidmq.ErrInvalidPartitionCount) {
		t.Fatalf("partitions: %v", err)
	}
}

// C13 admin-topics-subscriptions-lag (subscriptions).
func TestSubscriptionsReportLagAndCanBeSeekedAndDeleted(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(2))
	admin, ctx := client.Admin(), ctxT(t)
	sub, err := admin.CreateSubscription(ctx, topic, "audit", rapidmq.Earliest)
	if err != nil || sub.TotalLag != 0 || sub.Mode != rapidmq.ModeStream {
		t.Fatalf("create: %+v %v", sub, err)
	}
	publishValues(t, newProducer(t, client, rapidmq.NewProducerConfig(topic)), 50)
	if lag, err := admin.Lag(ctx, topic, "audit"); err != nil || lag != 50 {
		t.Fatalf("lag %d %v", lag, err)
	}
	if s, err := admin.SeekSubscription(ctx, topic, "audit", rapidmq.Latest); err != nil || s.TotalLag != 0 {
		t.Fatalf("seek latest: %+v %v", s, err)
	}
	if s, err := admin.SeekSubscription(ctx, topic, "audit", rapidmq.Earliest); err != nil || s.TotalLag != 50 {
		t.Fatalf("seek earliest: %+v %v", s, err)
	}
	info, err := admin.DescribeTopic(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	busy := info.Partitions[0]
	for _, p := range info.Partitions {
		if p.HighWatermark > busy.HighWatermark {
			busy = p
		}
	}
	if s, err := admin.SeekPartition(ctx, topic, "audit", busy.Partition, rapidmq.AtOffset(10)); err != nil || s.TotalLag != 40 {
		t.Fatalf("seek offset: %+v %v", s, err)
	}
	if subs, err := admin.ListSubscriptions(ctx, topic); err != nil || len(subs) != 1 {
		t.Fatalf("list: %+v %v", subs, err)
	}
	if err := admin.DeleteSubscription(ctx, topic, "audit"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.DescribeSubscription(ctx, topic, "audit"); !errors.Is(err, rapidmq.ErrSubscriptionNotFound) {
		t.Fatalf("after delete: %v", err)
	}
}
