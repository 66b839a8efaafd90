package rapidmq

/*
#include <stdint.h>
#include "rapidmq.h"
*/
import "C"

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Handler handles one delivery of a [QueueConsumer.Run]: nil acks it, an error (or a panic)
// nacks it with a backoff.
type Handler func(ctx context.Context, m QueueMessage) error

// RunConfig is how [QueueConsumer.Run] handles deliveries. [NewRunConfig] gives the core's
// defaults.
type RunConfig struct {
	// Concurrency is how many deliveries are handled at once (at least 1).
	Concurrency int
	// RetryBackoff is the delay before a failed delivery comes back, at its first failure;
	// it doubles at each later one, up to MaxRetryBackoff.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
}

// NewRunConfig returns the core's handler defaults (one at a time, retries after 1 s doubling
// up to 60 s).
func NewRunConfig() RunConfig {
	var c C.RapidmqRunConfig
	C.rapidmq_run_config_default(&c)
	return RunConfig{
		Concurrency:     int(c.concurrency),
		RetryBackoff:    time.Duration(c.retry_backoff_ms) * time.Millisecond,
		MaxRetryBackoff: time.Duration(c.max_retry_backoff_ms) * time.Millisecond,
	}
}

// RetryDelay is the delay before a delivery whose handler failed at attempt comes back under
// cfg (the core's, so every SDK backs off the same way).
func (cfg RunConfig) RetryDelay(attempt uint32) time.Duration {
	ms := C.rapidmq_handler_retry_delay_ms(C.uint32_t(attempt),
		C.uint64_t(cfg.RetryBackoff.Milliseconds()), C.uint64_t(cfg.MaxRetryBackoff.Milliseconds()))
	return time.Duration(ms) * time.Millisecond
}

// Run calls handler on each delivery, at most cfg.Concurrency at once, each in its own
// goroutine: a nil error acks the delivery, an error or a panic nacks it with
// [RunConfig.RetryDelay] of its attempt, so it comes back later and, after the subscription's
// MaxDeliveries attempts, goes to the dead-letter topic. The semantics are every SDK's
// (docs/sdk-conformance.md, C26).
//
// Run returns when ctx is done or the consumer ends, after the deliveries being handled
// finished and pending acks were flushed: nil when ctx ended or the consumer was closed, else
// the error that ended the subscription. Handlers get ctx.
func (q *QueueConsumer) Run(ctx context.Context, cfg RunConfig, handler Handler) error {
	if cfg.Concurrency < 1 {
		return fmt.Errorf("%w: Run needs Concurrency >= 1", ErrInvalidArgument)
	}
	slots := make(chan struct{}, cfg.Concurrency)
	var handling sync.WaitGroup
	var mu sync.Mutex
	var failed error // the first error that ends the run
	settle := func(err error) {
		if err != nil && !errors.Is(err, ErrClosed) {
			mu.Lock()
			failed = cmp.Or(failed, err)
			mu.Unlock()
		}
	}
	ended := func() error {
		mu.Lock()
		defer mu.Unlock()
		return failed
	}
	for ctx.Err() == nil && ended() == nil {
		select { // wait for a free slot
		case slots <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		free := 1
	more:
		for free < cfg.Concurrency {
			select {
			case slots <- struct{}{}:
				free++
			default:
				break more
			}
		}
		deliveries, err := q.Poll(ctx, free, time.Second)
		for range free - len(deliveries) {
			<-slots
		}
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				settle(err)
			}
			break
		}
		for _, m := range deliveries {
			handling.Add(1)
			go func() {
				defer handling.Done()
				defer func() { <-slots }()
				if err := call(ctx, handler, m); err != nil {
					settle(q.Nack(m, cfg.RetryDelay(m.Attempt)))
					return
				}
				settle(q.Ack(m))
			}()
		}
	}
	handling.Wait()
	settle(q.Flush(context.Background()))
	return ended()
}

// call runs handler, turning a panic into an error.
func call(ctx context.Context, handler Handler, m QueueMessage) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v", p)
		}
	}()
	return handler(ctx, m)
}
