package rapidmq

/*
#include <stdlib.h>
#include "rapidmq.h"
*/
import "C"

import (
	"context"
	"os"
	"sync"
	"unsafe"
)

// completionBatch is how many send outcomes one native call hands over at most.
const completionBatch = 512

// sendQueue tracks a producer's send futures by token and completes them from the native
// completion queue: one goroutine takes outcomes many at a time (rapidmq_completions_take),
// instead of the native library calling into Go once per message from a foreign thread. It
// waits for them in Go's poller, on the queue's ready descriptor, not in a blocking native
// call: a goroutine blocked in C holds a thread, and the scheduler's monitor then wakes every
// 20 µs to take its P back, which cost a tenth of a producer's CPU.
//
// Tokens are consecutive, so the futures sit in a ring indexed by token: registering and
// completing a send is a slot write, not a map operation. A nil slot is a send nothing waits
// for any more (completed, or never queued); head, the lowest token not settled, moves over nil
// slots once their futures are complete. Flush and Close wait until head passes the last token
// issued before them, so every future of an earlier send is complete when they return.
type sendQueue struct {
	q  *C.RapidmqCompletions
	mu sync.Mutex
	// settled is broadcast when head moves while a flush waits.
	settled *sync.Cond
	waiters int
	// ring's length is a power of two; token t lives at t&(len-1) while head <= t <= next.
	ring []*SendFuture
	head uint64 // lowest token not settled; next+1 when every send is settled
	next uint64 // the last token issued
	// stopping is set by stop, under mu and with the queue closed in the same hold, so the
	// goroutine that sees it set knows the queue's last wake-up was sent.
	stopping bool
	// exited is closed when the goroutine has freed the queue and returned.
	exited chan struct{}
}

func newSendQueue() (*sendQueue, error) {
	q := C.rapidmq_completions_new()
	var fd C.int
	var cerr C.RapidmqError
	if err := check(context.Background(), uint32(C.rapidmq_completions_ready_fd(q, &fd, &cerr)), &cerr); err != nil {
		C.rapidmq_completions_free(q)
		return nil, err
	}
	s := &sendQueue{q: q, ring: make([]*SendFuture, 1024), head: 1, exited: make(chan struct{})}
	s.settled = sync.NewCond(&s.mu)
	go s.drain(os.NewFile(uintptr(fd), "rapidmq-completions"))
	return s, nil
}

// add registers f and returns the token its send carries.
func (s *sendQueue) add(f *SendFuture) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserve(1)
	s.next++
	s.ring[s.next&uint64(len(s.ring)-1)] = f
	return s.next
}

// addAll registers futures under consecutive tokens and returns the first.
func (s *sendQueue) addAll(futures []*SendFuture) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserve(len(futures))
	first := s.next + 1
	mask := uint64(len(s.ring) - 1)
	for _, f := range futures {
		s.next++
		s.ring[s.next&mask] = f
	}
	return first
}

// reserve grows the ring (under mu) until n more tokens fit beside the unsettled ones.
func (s *sendQueue) reserve(n int) {
	need := s.next + uint64(n) + 1 - s.head
	if need <= uint64(len(s.ring)) {
		return
	}
	size := len(s.ring)
	for uint64(size) < need {
		size *= 2
	}
	ring := make([]*SendFuture, size)
	for t := s.head; t <= s.next; t++ {
		ring[t&uint64(size-1)] = s.ring[t&uint64(len(s.ring)-1)]
	}
	s.ring = ring
}

// forget drops the future of a send that was not queued (no outcome will come for it).
func (s *sendQueue) forget(token uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring[token&uint64(len(s.ring)-1)] = nil
	s.advance()
}

// advance moves head (under mu) over settled tokens and wakes waiting flushes.
func (s *sendQueue) advance() {
	mask := uint64(len(s.ring) - 1)
	from := s.head
	for s.head <= s.next && s.ring[s.head&mask] == nil {
		s.head++
	}
	if s.head != from && s.waiters > 0 {
		s.settled.Broadcast()
	}
}

// cut returns the last token issued so far: a flush covers every send up to it.
func (s *sendQueue) cut() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.next
}

// wait blocks until every send up to token last is settled.
func (s *sendQueue) wait(last uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waiters++
	for s.head <= last {
		s.settled.Wait()
	}
	s.waiters--
}

// stop lets the goroutine end once every registered future is complete; it then frees the
// native queue. Closing the queue wakes the goroutine. Both happen under mu: had the goroutine
// checked stopping between them, it would wait for a wake-up already spent, and had it seen
// stopping before the close, it could free the queue under it.
func (s *sendQueue) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopping = true
	C.rapidmq_completions_close(s.q)
}

// drain completes futures as their outcomes arrive, until stop and every future is complete.
// ready is the queue's ready descriptor: readable when outcomes arrived since the last take.
func (s *sendQueue) drain(ready *os.File) {
	defer close(s.exited)
	defer ready.Close()
	signals := make([]byte, 64)
	// In C memory: a Go array passed to C would be scanned for Go pointers on every call.
	items := unsafe.Slice((*C.RapidmqCompletion)(C.malloc(C.size_t(completionBatch)*C.sizeof_RapidmqCompletion)), completionBatch)
	defer C.free(unsafe.Pointer(&items[0]))
	futures := make([]*SendFuture, completionBatch)
	for {
		var n C.size_t
		var cerr C.RapidmqError
		if C.rapidmq_completions_take(s.q, &items[0], C.size_t(len(items)), &n, &cerr) != C.RAPIDMQ_STATUS_OK {
			C.rapidmq_error_clear(&cerr) // only for invalid arguments, which these are not
		}
		if n > 0 {
			s.mu.Lock()
			mask := uint64(len(s.ring) - 1)
			for i := range int(n) {
				futures[i] = s.ring[uint64(items[i].token)&mask]
			}
			s.mu.Unlock()
			for i := range int(n) {
				complete(futures[i], &items[i].result)
				futures[i] = nil
			}
		}
		s.mu.Lock()
		if n > 0 {
			// Settled only now that the futures are complete: a flush returns after them.
			mask := uint64(len(s.ring) - 1)
			for i := range int(n) {
				s.ring[uint64(items[i].token)&mask] = nil
			}
			s.advance()
		}
		idle := s.head > s.next
		stopping := s.stopping
		s.mu.Unlock()
		if n == 0 && idle && stopping {
			C.rapidmq_completions_free(s.q)
			return
		}
		if n == 0 {
			// Nothing left: wait in the poller until an outcome arrives or the queue closes.
			if _, err := ready.Read(signals); err != nil {
				// Not expected from a pipe the queue keeps open; wait natively, not in a spin.
				var n C.size_t
				if C.rapidmq_completions_wait(s.q, nil, 0, 200, &n, &cerr) != C.RAPIDMQ_STATUS_OK {
					C.rapidmq_error_clear(&cerr)
				}
			}
		}
	}
}

// complete resolves f with a native outcome, freeing its error message.
func complete(f *SendFuture, result *C.RapidmqSendResult) {
	if result.status == C.RAPIDMQ_STATUS_OK {
		f.complete(deliveryFromC(result.delivery), nil)
		return
	}
	message := C.GoStringN((*C.char)(unsafe.Pointer(result.error.message.ptr)), C.int(result.error.message.len))
	err := &Error{
		Code:      Code(result.error.code),
		Kind:      Kind(result.error.kind),
		Retriable: bool(result.error.retriable),
		Message:   message,
	}
	C.rapidmq_error_clear(&result.error)
	f.complete(Delivery{}, err)
}
