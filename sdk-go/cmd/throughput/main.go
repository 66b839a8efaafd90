// Command throughput measures the Go SDK: producer throughput with default batching, then
// consumer throughput reading the same messages back, for the comparison with the Rust SDK
// (sdk-rust/examples/throughput.rs, `rapidmq bench sub`). Build it against a release native
// library (`make go-native GO_NATIVE_PROFILE=release`).
//
//	go run ./cmd/throughput -messages 1000000 -size 100
//
// It creates a fresh 1-partition topic (fsync, the broker default, like `rapidmq bench`),
// sends -messages keyless messages of -size bytes as fast as SendAsync accepts them (or
// SendBatch, -batch at a time), reports
// messages/s once every future resolved, then consumes them all from the earliest offset with
// Poll(-poll, default 1000), or with the Messages iterator (-iter), and reports messages/s. The
// topic is deleted afterwards.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func main() {
	endpoint := os.Getenv("RAPIDMQ_ENDPOINT")
	if endpoint == "" {
		endpoint = "http://127.0.0.1:7420"
	}
	flag.StringVar(&endpoint, "endpoint", endpoint, "broker gRPC endpoint (env RAPIDMQ_ENDPOINT)")
	messages := flag.Int("messages", 1_000_000, "messages to send and consume")
	pollMax := flag.Int("poll", 1000, "messages per Poll (the consumer's prefetch is the core default)")
	iterate := flag.Bool("iter", false, "consume with the Messages iterator instead of Poll")
	size := flag.Int("size", 100, "message size in bytes")
	batch := flag.Int("batch", 1, "messages per SendBatch call (1: one SendAsync per message)")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the Go side to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "throughput:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "throughput:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(endpoint, *messages, *size, *pollMax, *batch, *iterate); err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "throughput:", err)
		os.Exit(1)
	}
}

func run(endpoint string, messages, size, pollMax, batch int, iterate bool) error {
	ctx := context.Background()
	client, err := rapidmq.Connect(ctx, rapidmq.NewClientConfig(endpoint))
	if err != nil {
		return err
	}
	defer client.Close()
	topic := fmt.Sprintf("go-bench-%d", os.Getpid())
	if _, err := client.Admin().CreateTopic(ctx, topic, rapidmq.TopicConfig{Partitions: 1}); err != nil {
		return err
	}
	defer client.Admin().DeleteTopic(ctx, topic)

	producer, err := client.NewProducer(ctx, rapidmq.NewProducerConfig(topic))
	if err != nil {
		return err
	}
	value := make([]byte, size)
	for i := range value {
		value[i] = 'x'
	}
	futures := make(chan *rapidmq.SendFuture, 100_000)
	acked := make(chan error, 1)
	go func() {
		for f := range futures {
			if _, err := f.Wait(ctx); err != nil {
				acked <- err
				return
			}
		}
		acked <- nil
	}()
	started := time.Now()
	if batch > 1 {
		chunk := make([]rapidmq.Message, batch)
		for i := range chunk {
			chunk[i] = rapidmq.Message{Value: value}
		}
		for sent := 0; sent < messages; sent += batch {
			fs, err := producer.SendBatch(ctx, chunk[:min(batch, messages-sent)])
			if err != nil {
				return err
			}
			for _, f := range fs {
				futures <- f
			}
		}
	} else {
		for range messages {
			f, err := producer.SendAsync(ctx, rapidmq.Message{Value: value})
			if err != nil {
				return err
			}
			futures <- f
		}
	}
	close(futures)
	if err := <-acked; err != nil {
		return err
	}
	seconds := time.Since(started).Seconds()
	fmt.Printf("go publish: %d x %d B in %.2f s = %.0f msgs/s, %.1f MB/s\n",
		messages, size, seconds, float64(messages)/seconds, float64(messages*size)/seconds/1e6)
	fmt.Printf("producer stats: %+v\n", producer.Stats())
	if err := producer.Close(); err != nil {
		return err
	}

	cfg := rapidmq.NewConsumerConfig(topic, "bench")
	cfg.Start = rapidmq.Earliest
	cfg.AutoCommit = true
	consumer, err := client.Subscribe(ctx, cfg)
	if err != nil {
		return err
	}
	defer consumer.Close()
	started = time.Now()
	received, polls := 0, 0
	var slowest time.Duration
	if iterate {
		// The range-over-func form: no stall check of its own, so the run is bounded.
		bounded, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for _, err := range consumer.Messages(bounded) {
			if err != nil {
				return fmt.Errorf("consumer stopped at %d: %w", received, err)
			}
			received++
			if received == messages {
				break
			}
		}
	}
	for received < messages {
		polls++
		t0 := time.Now()
		got, err := consumer.Poll(ctx, pollMax, 10*time.Second)
		slowest = max(slowest, time.Since(t0))
		if err != nil {
			return err
		}
		if len(got) == 0 {
			return fmt.Errorf("consumer stalled at %d", received)
		}
		received += len(got)
	}
	seconds = time.Since(started).Seconds()
	fmt.Printf("go consume: %d x %d B in %.2f s = %.0f msgs/s, %.1f MB/s\n",
		received, size, seconds, float64(received)/seconds, float64(received*size)/seconds/1e6)
	fmt.Printf("consumer: %d polls (slowest %s), stats %+v\n", polls, slowest, consumer.Stats())
	return nil
}
