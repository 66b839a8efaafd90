package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

// codeInfo is one row of the core's error-code table.
type codeInfo struct {
	code      Code
	name      string
	retriable bool
}

// coreErrorCodes is the error-code table as the native library knows it, in table order.
func coreErrorCodes() []codeInfo {
	n := int(C.rapidmq_error_code_count())
	out := make([]codeInfo, 0, n)
	for i := 0; i < n; i++ {
		var info C.RapidmqErrorCodeInfo
		if !C.rapidmq_error_code_info(C.size_t(i), &info) {
			break
		}
		out = append(out, codeInfo{Code(info.code), goString(info.name), bool(info.retriable)})
	}
	return out
}
