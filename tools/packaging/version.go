package packaging

import (
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Source identifies the checkout a package is built from.
type Source struct {
	Commit   string    // full revision
	Time     time.Time // commit time, also the files' mtime in the package
	Describe string    // git describe --tags --long of the newest v* tag; empty without one
	Dirty    bool      // tracked files differ from the commit
}

// GitSource reads Source from the git checkout at root.
func GitSource(root string) (Source, error) {
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-C", root}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(ee.Stderr)))
			}
			return "", fmt.Errorf("git %s: %w", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out)), nil
	}
	var s Source
	var err error
	if s.Commit, err = git("rev-parse", "HEAD"); err != nil {
		return Source{}, err
	}
	ct, err := git("log", "-1", "--format=%ct", "HEAD")
	if err != nil {
		return Source{}, err
	}
	sec, err := strconv.ParseInt(ct, 10, 64)
	if err != nil {
		return Source{}, fmt.Errorf("commit time %q: %w", ct, err)
	}
	s.Time = time.Unix(sec, 0).UTC()
	// No tag yet is normal; any other failure shows up in the calls above.
	s.Describe, _ = git("describe", "--tags", "--long", "--match", "v[0-9]*", "HEAD")
	status, err := git("status", "--porcelain", "--untracked-files=no")
	if err != nil {
		return Source{}, err
	}
	s.Dirty = status != ""
	return s, nil
}

// describeRE matches git describe --long output for a v-tag:
// v1.2.0-3-gabcdef0.
var describeRE = regexp.MustCompile(`^v([0-9][0-9A-Za-z.~+]*)-([0-9]+)-g([0-9a-f]+)$`)

// DebVersion is the Debian version of a build from s. It increases with
// every commit, so dpkg treats a newer build as an upgrade:
//
//	on tag v1.2.0                   1.2.0
//	3 commits after v1.2.0          1.2.0+git3.abcdef0
//	no tag yet                      0~git20261126093000.abcdef0 (commit time, UTC)
//
// A build from a modified work tree gets ".dirty" appended.
func DebVersion(s Source) string {
	short := s.Commit
	if len(short) > 7 {
		short = short[:7]
	}
	var v string
	if m := describeRE.FindStringSubmatch(s.Describe); m != nil {
		v = m[1]
		if m[2] != "0" {
			v += "+git" + m[2] + "." + m[3]
		}
	} else {
		v = "0~git" + s.Time.UTC().Format("20060102150405") + "." + short
	}
	if s.Dirty {
		v += ".dirty"
	}
	return v
}
