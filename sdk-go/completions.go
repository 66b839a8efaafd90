package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

import (
	"sync"
	"sync/atomic"
	"unsafe"
)

// completionBatch is how many send outcomes one native call hands over at most.
const completionBatch = 512

// sendQueue completes a producer's send futures from the native completion queue
// (rapidmq_completions_wait): one goroutine takes outcomes many at a time, instead of the
// native library calling into Go once per message from a foreign thread.
type sendQueue struct {
	q        *C.RapidmqCompletions
	mu       sync.Mutex
	next     uint64
	futures  map[uint64]*SendFuture
	stopping atomic.Bool
}

func newSendQueue() *sendQueue {
	s := &sendQueue{q: C.rapidmq_completions_new(), futures: map[uint64]*SendFuture{}}
	go s.drain()
	return s
}

// add registers f and returns the token its send carries.
func (s *sendQueue) add(f *SendFuture) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	s.futures[s.next] = f
	return s.next
}

// addAll registers futures under consecutive tokens and returns the first.
func (s *sendQueue) addAll(futures []*SendFuture) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.next + 1
	for _, f := range futures {
		s.next++
		s.futures[s.next] = f
	}
	return first
}

// forget drops the future of a send that was not queued (no outcome will come for it).
func (s *sendQueue) forget(token uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.futures, token)
}

// stop lets the goroutine end once every registered future is complete; it then frees the
// native queue.
func (s *sendQueue) stop() { s.stopping.Store(true) }

func (s *sendQueue) drain() {
	items := make([]C.RapidmqCompletion, completionBatch)
	futures := make([]*SendFuture, completionBatch)
	for {
		var n C.size_t
		var cerr C.RapidmqError
		if C.rapidmq_completions_wait(s.q, &items[0], C.size_t(len(items)), 200, &n, &cerr) != C.RAPIDMQ_STATUS_OK {
			C.rapidmq_error_clear(&cerr) // only for invalid arguments, which these are not
		}
		s.mu.Lock()
		for i := range int(n) {
			token := uint64(items[i].token)
			futures[i] = s.futures[token]
			delete(s.futures, token)
		}
		idle := len(s.futures) == 0
		s.mu.Unlock()
		for i := range int(n) {
			complete(futures[i], &items[i].result)
			futures[i] = nil
		}
		if n == 0 && idle && s.stopping.Load() {
			C.rapidmq_completions_free(s.q)
			return
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
