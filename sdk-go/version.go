package rapidmq

/*
#include "rapidmq.h"
*/
import "C"

// Version is the version of the native client core linked into this package (e.g. "0.1.0"):
// the release version every RapidMQ artifact of that release shares. A module fetched for the
// tag sdk-go/vX.Y.Z reports X.Y.Z.
func Version() string {
	return C.GoString(C.rapidmq_version())
}

// GitRevision is the git revision the native client core was built from (12 hex digits), or
// "unknown" when it was built outside a git checkout.
func GitRevision() string {
	return C.GoString(C.rapidmq_git_revision())
}
