// Package rapidmq is the Go SDK of RapidMQ.
//
// It runs the same Rust client core as every other RapidMQ SDK (rapidmq-core) through its C ABI
// (the rapidmq-ffi crate, header include/rapidmq.h), so batching, retries, idempotence,
// reconnects, prefetch and acks behave exactly as in the Rust, Python and Java SDKs. This
// package only converts types and bridges the core's runtime to Go: context.Context for
// deadlines and cancellation, iterators, error values for errors.Is.
//
// The pieces:
//   - [Client] ([Connect]): the connection; [Client.Admin] for topics and subscriptions.
//   - [Producer] ([Client.NewProducer]): [Producer.Send] waits for the broker's receipt,
//     [Producer.SendAsync] returns a [SendFuture] at once; both batch by linger, count and size.
//   - [Consumer] ([Client.Subscribe]): stream-mode subscriptions; [Consumer.Poll],
//     [Consumer.Receive] and the iterator [Consumer.Messages]; [Consumer.Ack] and commits.
//   - [QueueConsumer] ([Client.SubscribeQueue]): queue mode with per-message ack, nack with a
//     delay, deadline extension, attempt counts and dead letters.
//   - [Error]: every error carries the stable code of the error-code table; compare with
//     errors.Is(err, rapidmq.ErrTopicNotFound) and friends.
//
// Every blocking call takes a context.Context: when it is cancelled or its deadline passes,
// the call returns at once with ctx.Err() (the core's work for it is aborted where that is
// safe; a message already handed to a producer may still be published).
//
// Defaults are the core's: [NewProducerConfig] and [NewConsumerConfig] return them, and
// nothing in this package restates them.
//
// The native library: cgo links lib/<GOOS>_<GOARCH>/librapidmq_ffi.a from this module. A
// release version (`go get github.com/rapidmq/rapidmq/sdk-go@vX.Y.Z`, tag sdk-go/vX.Y.Z) holds
// it prebuilt, so installing needs Go and a C compiler but no Rust toolchain; in a checkout,
// `make go-native` builds it. [Version] and [GitRevision] report the client core linked in.
// See docs/install.md and docs/go.md.
package rapidmq
