// Command example shows the Go SDK end to end: create a topic, publish keyed messages, consume
// them with the iterator and acknowledge them, then process a queue with ack and nack.
//
//	RAPIDMQ_ENDPOINT=http://127.0.0.1:7420 go run .
//
// It exits non-zero on any error, so `make test` runs it against a test broker.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func main() {
	endpoint := os.Getenv("RAPIDMQ_ENDPOINT")
	if endpoint == "" {
		endpoint = "http://127.0.0.1:7420"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, endpoint); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, endpoint string) error {
	client, err := rapidmq.Connect(ctx, rapidmq.NewClientConfig(endpoint))
	if err != nil {
		return err
	}
	defer client.Close()
	admin := client.Admin()

	// A topic; creating it twice is fine for this example.
	_, err = admin.CreateTopic(ctx, "orders", rapidmq.TopicConfig{Partitions: 2})
	if err != nil && !errors.Is(err, rapidmq.ErrTopicAlreadyExists) {
		return err
	}

	// Publish: Send waits for the receipt; SendAsync returns a future at once.
	producer, err := client.NewProducer(ctx, rapidmq.NewProducerConfig("orders"))
	if err != nil {
		return err
	}
	for i := range 5 {
		d, err := producer.Send(ctx, rapidmq.Message{
			Key:   []byte(fmt.Sprintf("customer-%d", i%2)),
			Value: []byte(fmt.Sprintf("order %d", i)),
		})
		if err != nil {
			return err
		}
		fmt.Printf("order %d stored at partition %d offset %d\n", i, d.Partition, d.Offset)
	}
	if err := producer.Close(); err != nil {
		return err
	}

	// Consume with the iterator; stop after five messages.
	cfg := rapidmq.NewConsumerConfig("orders", "billing")
	cfg.Start = rapidmq.Earliest
	consumer, err := client.Subscribe(ctx, cfg)
	if err != nil {
		return err
	}
	seen := 0
	for m, err := range consumer.Messages(ctx) {
		if err != nil {
			return err
		}
		fmt.Printf("billing got %q (partition %d, offset %d)\n", m.Value, m.Partition, m.Offset)
		if err := consumer.Ack(m); err != nil {
			return err
		}
		if seen++; seen == 5 {
			break
		}
	}
	if err := consumer.Close(); err != nil {
		return err
	}

	// Queue mode: every delivery is acked, or nacked to come back later.
	qcfg := rapidmq.NewConsumerConfig("orders", "shipping")
	qcfg.Start = rapidmq.Earliest
	qcfg.Queue = rapidmq.QueueSettings{AckDeadline: 30 * time.Second, MaxDeliveries: rapidmq.Ptr(uint32(3))}
	queue, err := client.SubscribeQueue(ctx, qcfg)
	if err != nil {
		return err
	}
	defer queue.Close()
	nacked := false
	for shipped := 0; shipped < 5; {
		d, err := queue.Receive(ctx)
		if err != nil {
			return err
		}
		if !nacked {
			nacked = true
			fmt.Printf("shipping %q later (attempt %d)\n", d.Value, d.Attempt)
			if err := queue.Nack(d, 100*time.Millisecond); err != nil {
				return err
			}
			continue
		}
		fmt.Printf("shipped %q (attempt %d)\n", d.Value, d.Attempt)
		if err := queue.Ack(d); err != nil {
			return err
		}
		shipped++
	}
	lag, err := admin.Lag(ctx, "orders", "billing")
	if err != nil {
		return err
	}
	fmt.Printf("billing lag: %d\n", lag)
	return nil
}
