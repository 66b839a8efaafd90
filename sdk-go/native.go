package rapidmq

/*
#cgo CFLAGS: -I${SRCDIR}/include
#cgo linux,amd64 LDFLAGS: ${SRCDIR}/lib/linux_amd64/librapidmq_ffi.a -lpthread -ldl -lm -lrt
#cgo linux,arm64 LDFLAGS: ${SRCDIR}/lib/linux_arm64/librapidmq_ffi.a -lpthread -ldl -lm -lrt
#cgo darwin,amd64 LDFLAGS: ${SRCDIR}/lib/darwin_amd64/librapidmq_ffi.a -framework CoreFoundation -framework Security -lresolv
#cgo darwin,arm64 LDFLAGS: ${SRCDIR}/lib/darwin_arm64/librapidmq_ffi.a -framework CoreFoundation -framework Security -lresolv
#include <stdint.h>
#include "rapidmq.h"
*/
import "C"

import (
	"context"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// The core runtime every client of this process runs on, started on first use.
var (
	coreRuntimeOnce sync.Once
	coreRuntime     *C.RapidmqRuntime
	coreRuntimeErr  error
)

func sharedRuntime() (*C.RapidmqRuntime, error) {
	coreRuntimeOnce.Do(func() {
		var cerr C.RapidmqError
		if C.rapidmq_runtime_new(0, &coreRuntime, &cerr) != C.RAPIDMQ_STATUS_OK {
			coreRuntimeErr = takeError(context.Background(), &cerr)
		}
	})
	return coreRuntime, coreRuntimeErr
}

// takeError converts a filled RapidmqError and releases its message. A call interrupted
// through its cancel handle reports ctx.Err().
func takeError(ctx context.Context, cerr *C.RapidmqError) error {
	message := C.GoStringN((*C.char)(unsafe.Pointer(cerr.message.ptr)), C.int(cerr.message.len))
	kind := Kind(cerr.kind)
	e := &Error{Code: Code(cerr.code), Kind: kind, Retriable: bool(cerr.retriable), Message: message}
	C.rapidmq_error_clear(cerr)
	if kind == KindCancelled && ctx.Err() != nil {
		return ctx.Err()
	}
	return e
}

// takeErrorValue is takeError for an error returned by value (its copy escapes only on this
// error path).
func takeErrorValue(ctx context.Context, cerr C.RapidmqError) error {
	return takeError(ctx, &cerr)
}

// check turns a status into an error.
func check(ctx context.Context, status uint32, cerr *C.RapidmqError) error {
	if status == C.RAPIDMQ_STATUS_OK {
		return nil
	}
	return takeError(ctx, cerr)
}

// canceller triggers a RapidmqCancel when a context is done, for the duration of one call.
type canceller struct {
	handle *C.RapidmqCancel
	stop   func() bool
	fired  chan struct{}
}

// newCanceller returns nil (no cancel handle) for a context that can never be done.
func newCanceller(ctx context.Context) *canceller {
	if ctx.Done() == nil {
		return nil
	}
	k := &canceller{handle: C.rapidmq_cancel_new(), fired: make(chan struct{})}
	h := k.handle
	k.stop = context.AfterFunc(ctx, func() {
		C.rapidmq_cancel_trigger(h)
		close(k.fired)
	})
	return k
}

func (k *canceller) ptr() *C.RapidmqCancel {
	if k == nil {
		return nil
	}
	return k.handle
}

// release waits for a trigger that already started, then frees the handle.
func (k *canceller) release() {
	if k == nil {
		return
	}
	if !k.stop() {
		<-k.fired
	}
	C.rapidmq_cancel_free(k.handle)
}

// blocking runs one blocking C call with a cancel handle bound to ctx.
func blocking(ctx context.Context, call func(cancel *C.RapidmqCancel, cerr *C.RapidmqError) uint32) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k := newCanceller(ctx)
	defer k.release()
	var cerr C.RapidmqError
	return check(ctx, call(k.ptr(), &cerr), &cerr)
}

// pins keeps Go memory referenced from C structs in place for one call.
type pins struct {
	runtime.Pinner
}

func (p *pins) str(s string) C.RapidmqStr {
	if len(s) == 0 {
		return C.RapidmqStr{}
	}
	data := unsafe.StringData(s)
	p.Pin(data)
	return C.RapidmqStr{ptr: (*C.char)(unsafe.Pointer(data)), len: C.size_t(len(s))}
}

func (p *pins) bytes(b []byte) C.RapidmqStr {
	if len(b) == 0 {
		return C.RapidmqStr{}
	}
	p.Pin(&b[0])
	return C.RapidmqStr{ptr: (*C.char)(unsafe.Pointer(&b[0])), len: C.size_t(len(b))}
}

// view points at b's bytes for a call that takes them as an argument, which needs no pin (nil
// for an empty b).
func view(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// strs pins each string and returns the array of views (nil when empty) and its length; the
// array is Go memory holding pinned pointers, which cgo allows.
func (p *pins) strs(ss []string) (*C.RapidmqStr, C.size_t) {
	if len(ss) == 0 {
		return nil, 0
	}
	list := make([]C.RapidmqStr, len(ss))
	for i, s := range ss {
		list[i] = p.str(s)
	}
	return &list[0], C.size_t(len(list))
}

// u64s pins ids and returns a pointer to the first (nil when empty) and the count.
func (p *pins) u64s(ids []uint64) (*C.uint64_t, C.size_t) {
	if len(ids) == 0 {
		return nil, 0
	}
	p.Pin(&ids[0])
	return (*C.uint64_t)(unsafe.Pointer(&ids[0])), C.size_t(len(ids))
}

// goString copies a library-owned view.
func goString(s C.RapidmqSlice) string {
	if s.len == 0 {
		return ""
	}
	return C.GoStringN((*C.char)(unsafe.Pointer(s.ptr)), C.int(s.len))
}

// goBytes copies a library-owned view; nil for an empty one.
func goBytes(s C.RapidmqSlice) []byte {
	if s.len == 0 {
		return nil
	}
	return C.GoBytes(unsafe.Pointer(s.ptr), C.int(s.len))
}

func ms(d time.Duration) C.uint64_t {
	if d <= 0 {
		return 0
	}
	return C.uint64_t(d / time.Millisecond)
}

func fromMs(v C.uint64_t) time.Duration {
	return time.Duration(v) * time.Millisecond
}

func timeFromMs(v C.int64_t) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(int64(v))
}

// items views a C array of n elements as a Go slice (no copy; valid while its owner lives).
func items[T any](ptr *T, n C.size_t) []T {
	if ptr == nil || n == 0 {
		return nil
	}
	return unsafe.Slice(ptr, int(n))
}
