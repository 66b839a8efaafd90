// Command cross is the Go side of the cross-language fidelity check (tests/cross/run.sh): it
// publishes the messages of a fixture, or reads a topic back and checks it holds exactly those
// messages, byte for byte (key presence, value, headers in order) and at offsets 0, 1, 2, ...
//
// Request/reply: request sends each fixture message as a request and checks that the reply
// echoes it byte for byte; respond answers requesters times the fixture's requests on a queue
// subscription, echoing each (its key, value and headers but reply-to and correlation-id).
//
//	go run ./cmd/cross publish|verify|request <endpoint> <topic> <fixture>
//	go run ./cmd/cross respond <endpoint> <topic> <fixture> <requesters>
//
// The fixture format is described at the top of tests/cross/messages.txt.
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func main() {
	requesters := 0
	usage := len(os.Args) != 5
	if len(os.Args) == 6 && os.Args[1] == "respond" {
		n, err := strconv.Atoi(os.Args[5])
		requesters, usage = n, err != nil
	}
	if usage {
		fmt.Fprintln(os.Stderr, "usage: cross publish|verify|request <endpoint> <topic> <fixture>\n       cross respond <endpoint> <topic> <fixture> <requesters>")
		os.Exit(2)
	}
	command, endpoint, topic, path := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	if err := run(command, endpoint, topic, path, requesters); err != nil {
		fmt.Fprintf(os.Stderr, "go %s %s: %v\n", command, topic, err)
		os.Exit(1)
	}
}

func run(command, endpoint, topic, path string, requesters int) error {
	messages, err := fixture(path)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	client, err := rapidmq.Connect(ctx, rapidmq.NewClientConfig(endpoint))
	if err != nil {
		return err
	}
	defer client.Close()
	switch command {
	case "publish":
		return publish(ctx, client, topic, messages)
	case "verify":
		return verify(ctx, client, topic, messages)
	case "request":
		return request(ctx, client, topic, messages)
	case "respond":
		return respond(ctx, client, topic, requesters*len(messages))
	}
	return fmt.Errorf("unknown command %q", command)
}

// echoed is m as a message to send, without the headers request/reply adds.
func echoed(m rapidmq.ReceivedMessage) rapidmq.Message {
	out := rapidmq.Message{Key: m.Key, Value: m.Value}
	for _, h := range m.Headers {
		if h.Key != rapidmq.ReplyToHeader && h.Key != rapidmq.CorrelationIDHeader {
			out.Headers = append(out.Headers, h)
		}
	}
	return out
}

func request(ctx context.Context, client *rapidmq.Client, topic string, messages []rapidmq.Message) error {
	for i, m := range messages {
		reply, err := client.Request(ctx, topic, m, 30*time.Second)
		if err != nil {
			return fmt.Errorf("request %d: %w", i, err)
		}
		echo := echoed(reply)
		reply.Headers = echo.Headers
		if !same(reply, m) {
			return fmt.Errorf("request %d: the reply was key %#v value %q headers %q, the request key %#v value %q headers %q",
				i, reply.Key, reply.Value, reply.Headers, m.Key, m.Value, m.Headers)
		}
	}
	return nil
}

func respond(ctx context.Context, client *rapidmq.Client, topic string, count int) error {
	cfg := rapidmq.NewConsumerConfig(topic, "responders")
	cfg.Start = rapidmq.Earliest
	q, err := client.SubscribeQueue(ctx, cfg)
	if err != nil {
		return err
	}
	defer q.Close()
	for answered := 0; answered < count; {
		deliveries, err := q.Poll(ctx, count-answered, time.Minute)
		if err != nil {
			return err
		}
		if len(deliveries) == 0 {
			return fmt.Errorf("answered %d of %d requests", answered, count)
		}
		for _, d := range deliveries {
			if _, err := client.Reply(ctx, d.ReceivedMessage, echoed(d.ReceivedMessage)); err != nil {
				return err
			}
			if err := q.Ack(d); err != nil {
				return err
			}
			answered++
		}
	}
	return q.Close()
}

func decode(text string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return nil, fmt.Errorf("bad base64 %q: %w", text, err)
	}
	return b, nil
}

// parse reads one fixture line; the key is nil for no key and empty (non-nil) for an empty key.
func parse(line string) (rapidmq.Message, error) {
	tokens := strings.Split(line, " ")
	var m rapidmq.Message
	if len(tokens) < 2 || !strings.HasPrefix(tokens[1], "v:") {
		return m, fmt.Errorf("bad line %q", line)
	}
	if tokens[0] != "-" {
		key, err := decode(strings.TrimPrefix(tokens[0], "k:"))
		if err != nil {
			return m, err
		}
		m.Key = append([]byte{}, key...)
	}
	value, err := decode(tokens[1][2:])
	if err != nil {
		return m, err
	}
	m.Value = value
	for _, token := range tokens[2:] {
		parts := strings.Split(token, ":")
		if len(parts) != 3 || parts[0] != "h" {
			return m, fmt.Errorf("bad header token %q", token)
		}
		name, err := decode(parts[1])
		if err != nil {
			return m, err
		}
		value, err := decode(parts[2])
		if err != nil {
			return m, err
		}
		m.Headers = append(m.Headers, rapidmq.Header{Key: string(name), Value: value})
	}
	return m, nil
}

func fixture(path string) ([]rapidmq.Message, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []rapidmq.Message
	for _, line := range strings.Split(string(text), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m, err := parse(line)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

func publish(ctx context.Context, client *rapidmq.Client, topic string, messages []rapidmq.Message) error {
	config := rapidmq.NewProducerConfig(topic)
	switch codec := os.Getenv("CROSS_COMPRESSION"); codec {
	case "", "none":
	case "lz4":
		config.Compression = rapidmq.CompressionLZ4
	case "zstd":
		config.Compression = rapidmq.CompressionZstd
	default:
		return fmt.Errorf("unknown CROSS_COMPRESSION %q", codec)
	}
	producer, err := client.NewProducer(ctx, config)
	if err != nil {
		return err
	}
	defer producer.Close()
	for i, m := range messages {
		d, err := producer.Send(ctx, m)
		if err != nil {
			return err
		}
		if d.Offset != uint64(i) {
			return fmt.Errorf("message %d went to offset %d", i, d.Offset)
		}
	}
	return producer.Close()
}

// same says whether a read message is the sent one: key presence and bytes, value, headers.
func same(got rapidmq.ReceivedMessage, want rapidmq.Message) bool {
	if (got.Key == nil) != (want.Key == nil) || !bytes.Equal(got.Key, want.Key) ||
		!bytes.Equal(got.Value, want.Value) || len(got.Headers) != len(want.Headers) {
		return false
	}
	for i, h := range got.Headers {
		if h.Key != want.Headers[i].Key || !bytes.Equal(h.Value, want.Headers[i].Value) {
			return false
		}
	}
	return true
}

func verify(ctx context.Context, client *rapidmq.Client, topic string, messages []rapidmq.Message) error {
	var read []rapidmq.ReceivedMessage
	for len(read) < len(messages) {
		fetched, err := client.Fetch(ctx, topic, 0, uint64(len(read)), 1000, 0)
		if err != nil {
			return err
		}
		if len(fetched.Messages) == 0 {
			return fmt.Errorf("%d of %d messages", len(read), len(messages))
		}
		read = append(read, fetched.Messages...)
	}
	var problems []error
	for i, want := range messages {
		got := read[i]
		if got.Partition != 0 || got.Offset != uint64(i) {
			problems = append(problems, fmt.Errorf("message %d at %d/%d", i, got.Partition, got.Offset))
		} else if !same(got, want) {
			problems = append(problems, fmt.Errorf("message %d: read key %#v value %q headers %q, sent key %#v value %q headers %q",
				i, got.Key, got.Value, got.Headers, want.Key, want.Value, want.Headers))
		}
	}
	return errors.Join(problems...)
}
