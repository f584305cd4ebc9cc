package main

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
)

// version is the release version and commit the revision it was built
// from. The package build sets both with -ldflags "-X main.version=…
// -X main.commit=…" (scripts/package). A plain go build leaves them empty:
// then the module version and vcs.revision from the build info are used. The
// go command stamps no vcs.revision in a git worktree or with
// -buildvcs=false, hence the linked commit.
var version, commit string

// unknownCommit stands for a binary built without version control
// information (go test, -buildvcs=false, a build outside a checkout).
const unknownCommit = "unknown"

// buildVersion says which build this is, for `invitebot version` and the
// first line of the log.
type buildVersion struct {
	Version  string // release or module version, "devel" when neither is known
	Commit   string // VCS revision the binary was built from
	Modified bool   // the work tree had uncommitted changes
	Go       string // Go toolchain version
	Platform string // GOOS/GOARCH
}

// currentVersion describes the running binary.
func currentVersion() buildVersion {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(version, commit, bi)
}

// versionFrom combines the version and commit set at link time with the
// build info the go command embeds (bi may be nil). The build info's
// revision wins: it is what was actually compiled.
func versionFrom(linkedVersion, linkedCommit string, bi *debug.BuildInfo) buildVersion {
	v := buildVersion{Version: linkedVersion, Commit: linkedCommit, Go: runtime.Version(),
		Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi != nil {
		if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Commit = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if v.Version == "" {
		v.Version = "devel"
	}
	if v.Commit == "" {
		v.Commit = unknownCommit
	}
	return v
}

// String is the one line `invitebot version` prints.
func (v buildVersion) String() string {
	commit := v.Commit
	if v.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("invitebot %s, commit %s, %s %s", v.Version, commit, v.Go, v.Platform)
}

// LogValue groups the same facts as log attributes.
func (v buildVersion) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("version", v.Version),
		slog.String("commit", v.Commit),
		slog.Bool("modified", v.Modified),
		slog.String("go_version", v.Go),
	)
}

// runVersion is the `version` subcommand: it takes no arguments.
func runVersion(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintln(stderr, "usage: invitebot version")
		return 2
	}
	fmt.Fprintln(stdout, currentVersion())
	return 0
}
