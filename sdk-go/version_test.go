package rapidmq_test

import (
	"bufio"
	"errors"
	"io/fs"
	"os"
	"regexp"
	"strings"
	"testing"

	rapidmq "github.com/rapidmq/rapidmq/sdk-go"
)

// workspaceVersion reads `[workspace.package] version` from the repository's Cargo.toml, the one
// place the release version is kept; ok is false outside a checkout (in the module cache).
func workspaceVersion(t *testing.T) (version string, ok bool) {
	t.Helper()
	f, err := os.Open("../Cargo.toml")
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "[") {
			section = line
			continue
		}
		key, value, found := strings.Cut(line, "=")
		if section == "[workspace.package]" && found && strings.TrimSpace(key) == "version" {
			return strings.Trim(strings.TrimSpace(value), `"`), true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Fatal("../Cargo.toml has no [workspace.package] version")
	return "", false
}

func TestVersionIsTheWorkspaceVersion(t *testing.T) {
	got := rapidmq.Version()
	if !regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(got) {
		t.Fatalf("Version() = %q, not a semantic version", got)
	}
	want, ok := workspaceVersion(t)
	if !ok {
		t.Skip("no ../Cargo.toml (not in a checkout): only the version's form is checked")
	}
	if got != want {
		t.Errorf("Version() = %q, want the workspace version %q from ../Cargo.toml (rebuild the library: make go-native)", got, want)
	}
}

func TestGitRevisionIsSet(t *testing.T) {
	got := rapidmq.GitRevision()
	if got == "" {
		t.Fatal("GitRevision() is empty")
	}
	if got != "unknown" && !regexp.MustCompile(`^[0-9a-f]{7,40}$`).MatchString(got) {
		t.Errorf("GitRevision() = %q, want hex digits of a commit or \"unknown\"", got)
	}
}
