package rapidmq_test

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// compressionMessages are C29's messages: 200 JSON-like records, an empty value, non-UTF-8 bytes.
func compressionMessages() []rapidmq.Message {
	var out []rapidmq.Message
	for n := range 200 {
		out = append(out, rapidmq.Message{
			Key:     []byte(fmt.Sprintf("k-%d", n%5)),
			Value:   []byte(fmt.Sprintf(`{"order_id":%d,"status":"shipped","customer":"c-%d"}`, 1000+n, n%7)),
			Headers: []rapidmq.Header{{Key: "n", Value: []byte(strconv.Itoa(n))}},
		})
	}
	return append(out, rapidmq.Message{Value: []byte{}}, rapidmq.Message{Value: []byte{0, 0xff, 0xfe, 0x80}})
}

// C29 batch-compression: with LZ4 and Zstandard a batch reads back exactly as sent, and the topic
// stores far fewer bytes than the same batch sent plain.
func TestCompressedBatchesReadBackExactlyAndStoreFewerBytes(t *testing.T) {
	_, client := setup(t)
	ctx := ctxT(t)
	if rapidmq.NewProducerConfig("t").Compression != rapidmq.CompressionNone {
		t.Fatal("the default compression is not none")
	}
	stored := map[rapidmq.Compression]uint64{}
	for _, codec := range []rapidmq.Compression{rapidmq.CompressionNone, rapidmq.CompressionLZ4, rapidmq.CompressionZstd} {
		topic := makeTopic(t, client, partitions(1))
		cfg := rapidmq.NewProducerConfig(topic)
		cfg.Compression = codec
		cfg.Linger = time.Minute
		p := newProducer(t, client, cfg)
		sent := compressionMessages()
		var futures []*rapidmq.SendFuture
		for _, m := range sent {
			f, err := p.SendAsync(ctx, m)
			if err != nil {
				t.Fatal(err)
			}
			futures = append(futures, f)
		}
		if err := p.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		for i, f := range futures {
			d, err := f.Wait(ctx)
			if err != nil || d.Offset != uint64(i) {
				t.Fatalf("codec %d, message %d: %+v, %v", codec, i, d, err)
			}
		}
		log := readLog(t, client, topic)
		if len(log) != len(sent) {
			t.Fatalf("codec %d: read %d of %d", codec, len(log), len(sent))
		}
		for i, got := range log {
			want := sent[i]
			if got.Offset != uint64(i) || !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) ||
				len(got.Headers) != len(want.Headers) ||
				(len(want.Headers) == 1 && !bytes.Equal(got.Headers[0].Value, want.Headers[0].Value)) {
				t.Fatalf("codec %d, message %d: read %+v, sent %+v", codec, i, got, want)
			}
		}
		info, err := client.Admin().DescribeTopic(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		stored[codec] = info.Partitions[0].Bytes
	}
	plain := stored[rapidmq.CompressionNone]
	for _, codec := range []rapidmq.Compression{rapidmq.CompressionLZ4, rapidmq.CompressionZstd} {
		if stored[codec]*10 >= plain*7 {
			t.Fatalf("codec %d stored %d bytes, the plain topic %d", codec, stored[codec], plain)
		}
	}
}

// C29 batch-compression: a compression the core does not know is INVALID_ARGUMENT at creation.
func TestAnUnknownCompressionIsInvalidArgument(t *testing.T) {
	_, client := setup(t)
	cfg := rapidmq.NewProducerConfig(makeTopic(t, client, partitions(1)))
	cfg.Compression = 9
	if _, err := client.NewProducer(ctxT(t), cfg); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("compression 9: %v", err)
	}
}
