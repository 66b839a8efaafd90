package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import (
	"fmt"
	"strings"
)

// Code is a stable RapidMQ error code. Codes are API; the messages that go with them are not.
// The constants (codes.go) are generated from the core's error-code table (docs/errors.md).
type Code uint32

// String is the code's upper-snake-case name, e.g. TOPIC_NOT_FOUND.
func (c Code) String() string {
	if name, ok := codeNames[c]; ok {
		return name
	}
	return fmt.Sprintf("CODE_%d", uint32(c))
}

// Retriable reports whether the core retries this code (it already did, within its budget,
// before returning it to you).
func (c Code) Retriable() bool {
	return codeRetriable[c]
}

// Kind refines an error beyond its code: INVALID_ARGUMENT covers invalid arguments,
// unsupported options and closed objects, told apart by their kind.
type Kind uint32

// The kinds of errors.
const (
	// KindAny matches every kind in a sentinel ([ErrTopicNotFound] matches any error with that
	// code).
	KindAny Kind = C.RAPIDMQ_ERROR_KIND_NONE
	// KindBroker: the broker refused the request with a stable code.
	KindBroker Kind = C.RAPIDMQ_ERROR_KIND_BROKER
	// KindUnavailable: no broker could be reached (code UNAVAILABLE, retriable).
	KindUnavailable Kind = C.RAPIDMQ_ERROR_KIND_UNAVAILABLE
	// KindTimeout: a request did not finish in time (code TIMEOUT, retriable).
	KindTimeout Kind = C.RAPIDMQ_ERROR_KIND_TIMEOUT
	// KindInvalidArgument: an argument or setting is invalid (code INVALID_ARGUMENT).
	KindInvalidArgument Kind = C.RAPIDMQ_ERROR_KIND_INVALID_ARGUMENT
	// KindUnsupported: the option or operation is not supported (yet) (code INVALID_ARGUMENT).
	KindUnsupported Kind = C.RAPIDMQ_ERROR_KIND_UNSUPPORTED
	// KindClosed: the client, producer or consumer was closed (code INVALID_ARGUMENT).
	KindClosed Kind = C.RAPIDMQ_ERROR_KIND_CLOSED
	// KindProtocol: the broker sent something the core cannot decode (MALFORMED_REQUEST).
	KindProtocol Kind = C.RAPIDMQ_ERROR_KIND_PROTOCOL
	// KindCancelled: interrupted by a context; the SDK returns ctx.Err() instead.
	KindCancelled Kind = C.RAPIDMQ_ERROR_KIND_CANCELLED
	// KindPanic: a bug in the native library, caught at the boundary (code INTERNAL).
	KindPanic Kind = C.RAPIDMQ_ERROR_KIND_PANIC
	// KindTLSHandshake: the TLS handshake with the broker failed (code TLS_HANDSHAKE_FAILED,
	// not retriable).
	KindTLSHandshake Kind = C.RAPIDMQ_ERROR_KIND_TLS_HANDSHAKE
)

// Error is every error the SDK returns besides ctx.Err(): a stable code, its kind, whether
// retrying may succeed, and a message for people (not API).
//
// Compare with errors.Is against the sentinels: errors.Is(err, rapidmq.ErrTopicNotFound).
// A sentinel with a kind (ErrClosed, ErrUnsupported) matches only that kind; the code
// sentinels match any kind, so errors.Is(err, ErrInvalidArgument) also holds for closed and
// unsupported errors.
type Error struct {
	// Code is the stable code.
	Code Code
	// Kind refines the code.
	Kind Kind
	// Retriable reports whether the same request may succeed later.
	Retriable bool
	// Message is the detail text (not API: do not match on it).
	Message string
	// cause is the Go error behind one raised by the SDK itself (a JSON decoding error).
	cause error
}

// Unwrap returns the Go error behind an error the SDK raised itself (e.g. the encoding/json
// error of [ReceivedMessage.DecodeJSON]); nil for errors from the core or the broker.
func (e *Error) Unwrap() error { return e.cause }

// Error renders "rapidmq: TOPIC_NOT_FOUND (2001): detail".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("rapidmq: ")
	if e.Kind == KindClosed {
		b.WriteString("closed: ")
	} else if e.Kind == KindUnsupported {
		b.WriteString("unsupported: ")
	}
	fmt.Fprintf(&b, "%s (%d)", e.Code, uint32(e.Code))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Is matches sentinels: same code, and same kind unless the sentinel's kind is KindAny.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Code == e.Code && (t.Kind == KindAny || t.Kind == e.Kind)
}

var (
	// ErrClosed matches operations on a closed client, producer or consumer.
	ErrClosed error = &Error{Code: CodeInvalidArgument, Kind: KindClosed, Message: "closed"}
	// ErrUnsupported matches options and operations not supported (yet): nack in stream
	// mode.
	ErrUnsupported error = &Error{Code: CodeInvalidArgument, Kind: KindUnsupported, Message: "unsupported"}
)
