package rapidmq

/*
#include <stdint.h>
#include "rapidmq.h"
*/
import "C"

import (
	"runtime/cgo"
	"unsafe"
)

// rapidmqGoSendDone is called by the native library (from a core runtime thread) when a send's
// receipt resolves; handle is the cgo.Handle of its SendFuture.
//
//export rapidmqGoSendDone
func rapidmqGoSendDone(handle C.uintptr_t, result *C.RapidmqSendResult) {
	h := cgo.Handle(handle)
	future := h.Value().(*SendFuture)
	h.Delete()
	if result.status == C.RAPIDMQ_STATUS_OK {
		future.complete(deliveryFromC(result.delivery), nil)
		return
	}
	message := C.GoStringN((*C.char)(unsafe.Pointer(result.error.message.ptr)), C.int(result.error.message.len))
	future.complete(Delivery{}, &Error{
		Code:      Code(result.error.code),
		Kind:      Kind(result.error.kind),
		Retriable: bool(result.error.retriable),
		Message:   message,
	})
}
