// Command quickstart is the Go install test's program (tests/dist/go.sh): the first program a
// user writes after `go get github.com/rapidmq/rapidmq/sdk-go`. It creates a topic, publishes
// keyed messages with headers, consumes them back and checks each one, then prints the version
// of the client core it links.
//
//	go run . http://127.0.0.1:7420 [expected-version]
//
// It exits non-zero on any error or mismatch, and when the core's version is not
// expected-version (when given).
package main

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"slices"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: quickstart ENDPOINT [expected-version]")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Args[1]); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("rapidmq %s (git %s)\n", rapidmq.Version(), rapidmq.GitRevision())
	if len(os.Args) > 2 && rapidmq.Version() != os.Args[2] {
		log.Fatalf("the client core reports version %q, want %q", rapidmq.Version(), os.Args[2])
	}
	if rapidmq.GitRevision() == "" {
		log.Fatal("the client core reports an empty git revision")
	}
}

func run(ctx context.Context, endpoint string) error {
	client, err := rapidmq.Connect(ctx, rapidmq.NewClientConfig(endpoint))
	if err != nil {
		return err
	}
	defer client.Close()

	topic := fmt.Sprintf("quickstart-%d", time.Now().UnixNano())
	if _, err := client.Admin().CreateTopic(ctx, topic, rapidmq.TopicConfig{Partitions: 1}); err != nil {
		return err
	}

	var sent []rapidmq.Message
	for i := range 3 {
		sent = append(sent, rapidmq.Message{
			Key:   fmt.Appendf(nil, "customer-%d", i),
			Value: fmt.Appendf(nil, "order %d", i),
			Headers: []rapidmq.Header{
				{Key: "source", Value: []byte("quickstart")},
				{Key: "order", Value: fmt.Appendf(nil, "%d", i)},
			},
		})
	}
	producer, err := client.NewProducer(ctx, rapidmq.NewProducerConfig(topic))
	if err != nil {
		return err
	}
	for _, m := range sent {
		d, err := producer.Send(ctx, m)
		if err != nil {
			return err
		}
		fmt.Printf("sent %q at partition %d offset %d\n", m.Value, d.Partition, d.Offset)
	}
	if err := producer.Close(); err != nil {
		return err
	}

	cfg := rapidmq.NewConsumerConfig(topic, "quickstart")
	cfg.Start = rapidmq.Earliest
	consumer, err := client.Subscribe(ctx, cfg)
	if err != nil {
		return err
	}
	defer consumer.Close()
	for i, want := range sent {
		got, err := consumer.Receive(ctx)
		if err != nil {
			return err
		}
		if got.Offset != uint64(i) || !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) ||
			!slices.EqualFunc(got.Headers, want.Headers, sameHeader) {
			return fmt.Errorf("message %d: got offset %d key %q value %q headers %v, want key %q value %q headers %v",
				i, got.Offset, got.Key, got.Value, got.Headers, want.Key, want.Value, want.Headers)
		}
		if err := consumer.Ack(got); err != nil {
			return err
		}
		fmt.Printf("received %q key %q headers %d\n", got.Value, got.Key, len(got.Headers))
	}
	return consumer.Commit(ctx)
}

func sameHeader(a, b rapidmq.Header) bool {
	return a.Key == b.Key && bytes.Equal(a.Value, b.Value)
}
