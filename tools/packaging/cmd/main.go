// Command cmd builds invitebot's Debian package: it compiles
// ./cmd/invitebot with the version and commit linked in, then writes
// dist/invitebot_VERSION_ARCH.deb with nfpm. Run it from the repository root
// through scripts/package:
//
//	./scripts/package [-version V] [-arch GOARCH] [-out DIR] [-binary FILE]
package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"durare.org/invitebot/tools/packaging"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "Debian version (default: from git, see packaging.DebVersion)")
	arch := fs.String("arch", cmp.Or(os.Getenv("GOARCH"), runtime.GOARCH), "Go architecture to build for")
	out := fs.String("out", "dist", "directory for the .deb")
	binary := fs.String("binary", "", "ship this invitebot binary instead of building one")
	root := fs.String("root", ".", "repository root")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	path, err := build(*root, *version, *arch, *out, *binary, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "package: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, path)
	return 0
}

func build(root, version, arch, out, binary string, log io.Writer) (string, error) {
	src, err := packaging.GitSource(root)
	if err != nil {
		// A source tree without git can still be packaged with -version.
		if version == "" {
			return "", fmt.Errorf("no version: %w (pass -version)", err)
		}
		src = packaging.Source{Time: time.Now().UTC()}
	}
	if version == "" {
		version = packaging.DebVersion(src)
	}
	work, err := os.MkdirTemp("", "invitebot-package-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)

	if binary == "" {
		binary = filepath.Join(work, "invitebot")
		if err := compile(root, binary, version, src.Commit, arch, log); err != nil {
			return "", err
		}
	}
	return packaging.Build(packaging.Options{
		Root: root, Binary: binary, Version: version, Arch: arch, Commit: src.Commit, MTime: src.Time, Work: work,
	}, out)
}

// compile builds a static invitebot (no cgo: the package depends on no C
// library) with the version and commit `invitebot version` prints.
func compile(root, dst, version, commit, arch string, log io.Writer) error {
	ldflags := "-s -w -X main.version=" + version
	if commit != "" {
		ldflags += " -X main.commit=" + commit
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", dst, "./cmd/invitebot")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	cmd.Stdout = log
	cmd.Stderr = log
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}
