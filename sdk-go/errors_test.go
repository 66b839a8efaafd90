package rapidmq_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

func TestSentinelsMatchByCodeAndKinds(t *testing.T) {
	closed := &rapidmq.Error{Code: rapidmq.CodeInvalidArgument, Kind: rapidmq.KindClosed, Message: "x"}
	wrapped := fmt.Errorf("sending: %w", closed)
	if !errors.Is(wrapped, rapidmq.ErrClosed) || !errors.Is(wrapped, rapidmq.ErrInvalidArgument) {
		t.Fatal("a wrapped closed error matches ErrClosed and ErrInvalidArgument")
	}
	if errors.Is(wrapped, rapidmq.ErrUnsupported) || errors.Is(wrapped, rapidmq.ErrTopicNotFound) {
		t.Fatal("it matches nothing else")
	}
	notFound := &rapidmq.Error{Code: rapidmq.CodeTopicNotFound, Kind: rapidmq.KindBroker, Message: "gone"}
	if !errors.Is(notFound, rapidmq.ErrTopicNotFound) || !strings.Contains(notFound.Error(), "TOPIC_NOT_FOUND (2001)") {
		t.Fatalf("%v", notFound)
	}
	if rapidmq.CodeStorageError.String() != "STORAGE_ERROR" || !rapidmq.CodeStorageError.Retriable() || rapidmq.CodeTopicNotFound.Retriable() {
		t.Fatal("code names and retriability come from the table")
	}
	if rapidmq.Code(2999).String() != "CODE_2999" {
		t.Fatal("unknown codes still print")
	}
}

func TestBrokerErrorsArriveWithTheirCodeAndMessage(t *testing.T) {
	_, client := setup(t)
	err := client.Admin().DeleteTopic(ctxT(t), "never-created")
	var e *rapidmq.Error
	if !errors.As(err, &e) || e.Code != rapidmq.CodeTopicNotFound || e.Kind != rapidmq.KindBroker || e.Message == "" {
		t.Fatalf("got %#v", err)
	}
}
