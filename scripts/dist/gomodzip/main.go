// Command gomodzip writes one version of a Go module into a file-system module proxy, the
// layout GOPROXY=file://DIR reads and the Go module proxy serves:
//
//	DIR/<module>/@v/list          the versions, one a line
//	DIR/<module>/@v/<version>.info {"Version": …, "Time": …}
//	DIR/<module>/@v/<version>.mod  the module's go.mod
//	DIR/<module>/@v/<version>.zip  the module zip
//
// The zip is made by golang.org/x/mod/zip, so it follows the rules the go command applies to a
// module zip (no vendor directory, no nested module, no symbolic link, size limits), with every
// path under <module>@<version>/.
//
//	git ls-files … | gomodzip -dir sdk-go -module M -version v1.2.3 -time T -proxy DIR \
//	    [-add lib/linux_amd64/libx.a=/path/to/libx.a]…
//
// Standard input lists the module's files, one path a line relative to -dir: those the tagged
// commit holds. Each -add puts one more file at a path of the module (a generated file, a
// prebuilt library), replacing a listed one of that path. It prints the zip's path, its size and
// its go.sum hash (h1:…).
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/module"
	"golang.org/x/mod/semver"
	"golang.org/x/mod/sumdb/dirhash"
	modzip "golang.org/x/mod/zip"
)

// adds collects the repeated -add ZIPPATH=FILE flags.
type adds map[string]string

func (a adds) String() string { return fmt.Sprint(map[string]string(a)) }

func (a adds) Set(v string) error {
	dst, src, ok := strings.Cut(v, "=")
	if !ok || dst == "" || src == "" {
		return fmt.Errorf("want ZIPPATH=FILE, got %q", v)
	}
	if path.Clean(dst) != dst || path.IsAbs(dst) || strings.HasPrefix(dst, "../") {
		return fmt.Errorf("%q is not a clean relative path", dst)
	}
	a[dst] = src
	return nil
}

// file is one file of the zip: its path in the module and where its content is on disk.
type file struct {
	path, src string
}

func (f file) Path() string                 { return f.path }
func (f file) Lstat() (os.FileInfo, error)  { return os.Lstat(f.src) }
func (f file) Open() (io.ReadCloser, error) { return os.Open(f.src) }

func main() {
	extra := adds{}
	dir := flag.String("dir", ".", "the module's root directory (holding go.mod)")
	modPath := flag.String("module", "", "the module path")
	version := flag.String("version", "", "the version, a canonical semantic version (v1.2.3)")
	stamp := flag.String("time", "", "the version's time, RFC 3339 (the tagged commit's); default now")
	proxy := flag.String("proxy", "", "the proxy directory to write into")
	flag.Var(extra, "add", "ZIPPATH=FILE: one more file of the module (repeatable)")
	flag.Parse()
	if err := run(*dir, *modPath, *version, *stamp, *proxy, extra, os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "gomodzip:", err)
		os.Exit(1)
	}
}

func run(dir, modPath, version, stamp, proxy string, extra adds, list io.Reader) error {
	if modPath == "" || proxy == "" {
		return errors.New("-module and -proxy are required")
	}
	m := module.Version{Path: modPath, Version: version}
	if err := module.Check(m.Path, m.Version); err != nil {
		return err
	}
	if semver.Canonical(version) != version {
		return fmt.Errorf("version %q is not canonical (%q)", version, semver.Canonical(version))
	}
	at := time.Now().UTC()
	if stamp != "" {
		t, err := time.Parse(time.RFC3339, stamp)
		if err != nil {
			return err
		}
		at = t.UTC()
	}
	files, err := moduleFiles(dir, extra, list)
	if err != nil {
		return err
	}
	escaped, err := module.EscapePath(m.Path)
	if err != nil {
		return err
	}
	vdir := filepath.Join(proxy, filepath.FromSlash(escaped), "@v")
	if err := os.MkdirAll(vdir, 0o755); err != nil {
		return err
	}
	zipPath := filepath.Join(vdir, version+".zip")
	if err := writeZip(zipPath, m, files); err != nil {
		return err
	}
	if _, err := modzip.CheckZip(m, zipPath); err != nil {
		return fmt.Errorf("the zip is not a valid module zip: %w", err)
	}
	gomod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".mod"), gomod, 0o644); err != nil {
		return err
	}
	info, err := json.Marshal(struct {
		Version string
		Time    time.Time
	}{version, at})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(vdir, version+".info"), append(info, '\n'), 0o644); err != nil {
		return err
	}
	if err := addToList(filepath.Join(vdir, "list"), version); err != nil {
		return err
	}
	hash, err := dirhash.HashZip(zipPath, dirhash.Hash1)
	if err != nil {
		return err
	}
	st, err := os.Stat(zipPath)
	if err != nil {
		return err
	}
	fmt.Printf("%s %d %s\n", zipPath, st.Size(), hash)
	return nil
}

// moduleFiles reads the listed paths (relative to dir) and applies the -add files, sorted by
// path so the same inputs make the same zip.
func moduleFiles(dir string, extra adds, list io.Reader) ([]modzip.File, error) {
	byPath := map[string]string{}
	sc := bufio.NewScanner(list)
	for sc.Scan() {
		p := strings.TrimSpace(sc.Text())
		if p == "" {
			continue
		}
		byPath[path.Clean(filepath.ToSlash(p))] = filepath.Join(dir, filepath.FromSlash(p))
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for dst, src := range extra {
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("-add %s: %w", dst, err)
		}
		byPath[dst] = src
	}
	if _, ok := byPath["go.mod"]; !ok {
		return nil, errors.New("the file list has no go.mod")
	}
	paths := slices.Sorted(maps.Keys(byPath))
	files := make([]modzip.File, 0, len(paths))
	for _, p := range paths {
		files = append(files, file{path: p, src: byPath[p]})
	}
	return files, nil
}

func writeZip(name string, m module.Version, files []modzip.File) (err error) {
	out, err := os.Create(name)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	w := bufio.NewWriter(out)
	if err := modzip.Create(w, m, files); err != nil {
		return err
	}
	return w.Flush()
}

// addToList adds version to the proxy's list file, keeping it sorted by semantic version.
func addToList(name, version string) error {
	var versions []string
	old, err := os.ReadFile(name)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for _, v := range strings.Fields(string(old)) {
		if v != version {
			versions = append(versions, v)
		}
	}
	versions = append(versions, version)
	slices.SortFunc(versions, semver.Compare)
	return os.WriteFile(name, []byte(strings.Join(versions, "\n")+"\n"), 0o644)
}
