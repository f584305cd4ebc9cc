package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersionCommand(t *testing.T) {
	old := version
	version = "1.2.3~test"
	t.Cleanup(func() { version = old })

	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit code %d; stderr: %s", code, errOut.String())
	}
	line := out.String()
	for _, want := range []string{"invitebot 1.2.3~test,", "commit ", runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(line, want) {
			t.Errorf("version output lacks %q: %q", want, line)
		}
	}
	if strings.Count(line, "\n") != 1 {
		t.Errorf("version output is not one line: %q", line)
	}

	out.Reset()
	errOut.Reset()
	if code := run([]string{"version", "extra"}, &out, &errOut); code != 2 {
		t.Errorf("version with an argument: exit code %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "usage") {
		t.Errorf("version with an argument: stderr lacks usage: %q", errOut.String())
	}
}

func TestVersionFrom(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: "55e88bd0c0ffee"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name   string
		linked string
		commit string
		bi     *debug.BuildInfo
		want   buildVersion
	}{
		{
			name: "no build info", bi: nil,
			want: buildVersion{Version: "devel", Commit: unknownCommit, Go: runtime.Version()},
		},
		{
			name: "package build", linked: "0.0.0~git20261126.55e88bd",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-2026-55e88bd"}, Settings: vcs[:2]},
			want: buildVersion{Version: "0.0.0~git20261126.55e88bd", Commit: "55e88bd0c0ffee", Go: "go1.26.8"},
		},
		{
			name: "go build in a dirty checkout",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261126-55e88bd+dirty"}, Settings: vcs},
			want: buildVersion{Version: "v0.0.0-20261126-55e88bd+dirty", Commit: "55e88bd0c0ffee", Modified: true, Go: "go1.26.8"},
		},
		{
			name: "package build in a git worktree", linked: "0.0.0~git20261126.55e88bd", commit: "55e88bd0c0ffee",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: buildVersion{Version: "0.0.0~git20261126.55e88bd", Commit: "55e88bd0c0ffee", Go: "go1.26.8"},
		},
		{
			name: "go test",
			bi:   &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			want: buildVersion{Version: "devel", Commit: unknownCommit, Go: "go1.26.8"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := versionFrom(tc.linked, tc.commit, tc.bi)
			tc.want.Platform = runtime.GOOS + "/" + runtime.GOARCH
			if got != tc.want {
				t.Errorf("versionFrom = %+v, want %+v", got, tc.want)
			}
		})
	}
}
