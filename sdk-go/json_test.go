package rapidmq_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

type order struct {
	ID    int      `json:"id"`
	Name  string   `json:"name"`
	Tags  []string `json:"tags"`
	Price float64  `json:"price"`
	Note  *string  `json:"note"`
}

// C28 json-helpers: a value sent as JSON reads back as the same value.
func TestAValueSentAsJSONIsReadBackAsTheSameObject(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	want := order{ID: 7, Name: "café ☕", Tags: []string{"a", "b"}, Price: 12.5}
	m, err := rapidmq.JSONMessage(want)
	if err != nil {
		t.Fatal(err)
	}
	m.Key = []byte("k")
	m.Headers = append(m.Headers, rapidmq.Header{Key: "source", Value: []byte("test")})
	plain := text(`{"id":8,"name":"plain","tags":[],"price":1,"note":"n"}`)
	sendAll(t, client, topic, m, plain)

	log := readLog(t, client, topic)
	var got order
	if err := log[0].DecodeJSON(&got); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v (%v), sent %+v", got, err, want)
	}
	headers := log[0].Headers
	if len(headers) != 2 || headers[0].Key != rapidmq.ContentTypeHeader ||
		string(headers[0].Value) != rapidmq.JSONContentType || headers[1].Key != "source" {
		t.Fatalf("headers %q", headers)
	}
	var raw, expected any
	_ = json.Unmarshal(log[0].Value, &raw)
	_ = json.Unmarshal([]byte(`{"id":7,"name":"café ☕","tags":["a","b"],"price":12.5,"note":null}`), &expected)
	if !reflect.DeepEqual(raw, expected) {
		t.Fatalf("raw value %s", log[0].Value)
	}
	var p order
	if err := log[1].DecodeJSON(&p); err != nil || p.ID != 8 || p.Note == nil || *p.Note != "n" {
		t.Fatalf("JSON without the header: %+v (%v)", p, err)
	}
}

// C28 json-helpers: a value that is not JSON is INVALID_ARGUMENT.
func TestAValueThatIsNotJSONFailsWithInvalidArgument(t *testing.T) {
	_, client := setup(t)
	topic := makeTopic(t, client, partitions(1))
	sendAll(t, client, topic, text("not json"))
	var o order
	err := readLog(t, client, topic)[0].DecodeJSON(&o)
	var syntax *json.SyntaxError
	if !errors.Is(err, rapidmq.ErrInvalidArgument) || !errors.As(err, &syntax) {
		t.Fatalf("decoding `not json`: %v", err)
	}
	if _, err := rapidmq.JSONMessage(make(chan int)); !errors.Is(err, rapidmq.ErrInvalidArgument) {
		t.Fatalf("encoding a channel: %v", err)
	}
}
