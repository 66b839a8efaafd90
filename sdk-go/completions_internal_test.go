package rapidmq

import (
	"runtime"
	"testing"
	"time"
)

// The send queue's ring keeps every unsettled future reachable by its token while it grows
// around the wrap point, and a flush waits for exactly the sends issued before it.
func TestTheSendRingGrowsAroundUnsettledTokensAndAFlushWaitsForThemOnly(t *testing.T) {
	s, err := newSendQueue()
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	fresh := func() *SendFuture { return new(SendFuture) }

	// Move head near the end of the first ring, so that the next tokens wrap around.
	for range 1000 {
		s.forget(s.add(fresh()))
	}
	held := fresh()
	heldToken := s.add(held)
	batch := make([]*SendFuture, 3000) // forces two doublings with heldToken unsettled
	for i := range batch {
		batch[i] = fresh()
	}
	first := s.addAll(batch)
	if first != heldToken+1 || len(s.ring) != 4096 {
		t.Fatalf("first %d after %d, ring %d", first, heldToken, len(s.ring))
	}
	s.mu.Lock()
	mask := uint64(len(s.ring) - 1)
	if s.ring[heldToken&mask] != held || s.ring[(first+2999)&mask] != batch[2999] {
		s.mu.Unlock()
		t.Fatal("a future moved to the wrong slot when the ring grew")
	}
	s.mu.Unlock()

	last := s.cut()
	for i := range batch {
		s.forget(first + uint64(i))
	}
	if s.head != heldToken {
		t.Fatalf("head %d passed the unsettled token %d", s.head, heldToken)
	}
	later := s.add(fresh()) // issued after the cut: the flush does not wait for it
	flushed := make(chan struct{})
	go func() {
		s.wait(last)
		close(flushed)
	}()
	for waiting := false; !waiting; runtime.Gosched() { // until the flush waits on the ring
		s.mu.Lock()
		waiting = s.waiters == 1
		s.mu.Unlock()
	}
	select {
	case <-flushed:
		t.Fatal("the flush returned before an earlier send settled")
	default:
	}
	s.forget(heldToken)
	select {
	case <-flushed:
	case <-time.After(10 * time.Second):
		t.Fatal("the flush did not return once every earlier send settled")
	}
	if s.head != later {
		t.Fatalf("head %d, want the unsettled later token %d", s.head, later)
	}
	s.forget(later)
}

// stop ends the send queue's goroutine (which frees the native queue) however it races with
// the goroutine's own check: a queue stopped with nothing in flight, many times over.
func TestAStoppedSendQueueEndsItsGoroutine(t *testing.T) {
	for i := range 300 {
		s, err := newSendQueue()
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 1 {
			runtime.Gosched() // let the goroutine reach its wait first, half of the time
		}
		s.stop()
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the goroutine still runs 10 s after stop", i)
		}
	}
}
