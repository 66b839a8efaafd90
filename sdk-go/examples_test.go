package rapidmq_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The example program in examples/go runs against a real broker.
func TestTheExampleProgramMovesMessagesThroughStreamAndQueue(t *testing.T) {
	broker := startBroker(t)
	cmd := exec.Command("go", "run", ".")
	cmd.Dir = "../examples/go"
	cmd.Env = append(os.Environ(), "RAPIDMQ_ENDPOINT="+broker.URL())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go run examples/go: %v\n%s", err, out)
	}
	text := string(out)
	if strings.Count(text, "stored at partition") != 5 || strings.Count(text, "shipped \"") != 5 ||
		!strings.Contains(text, "billing lag: 0") || !strings.Contains(text, "(attempt 2)") {
		t.Fatalf("unexpected output:\n%s", text)
	}
}
