package rapidmq_test

import (
	"bytes"
	"os"
	"testing"
)

// Drift: the header cgo compiles against is the one cbindgen generates in the repository
// (ffi/include/rapidmq.h); `make go-header` copies it.
func TestTheBundledHeaderIsTheGeneratedOne(t *testing.T) {
	generated, err := os.ReadFile("../ffi/include/rapidmq.h")
	if err != nil {
		t.Fatalf("read the generated header: %v", err)
	}
	bundled, err := os.ReadFile("include/rapidmq.h")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(generated, bundled) {
		t.Fatal("sdk-go/include/rapidmq.h differs from ffi/include/rapidmq.h: run `make go-header`")
	}
}
