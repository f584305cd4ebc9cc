//go:build unix

package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"durare.org/invitebot/internal/config"
)

// TestJournalDetected: under systemd (JOURNAL_STREAM naming the stream
// that standard error is) the text format becomes the journal's; with
// standard error elsewhere, or json asked for, it stays.
func TestJournalDetected(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	logOnce := func(format string) string {
		cfg := config.Defaults()
		cfg.Log.Format = format
		if err := f.Truncate(0); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Seek(0, 0); err != nil {
			t.Fatal(err)
		}
		newLogger(&cfg, slog.LevelInfo, f).Info("hello")
		b, err := os.ReadFile(f.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino))
	if got := logOnce("text"); !strings.HasPrefix(got, "<6>level=INFO msg=hello") {
		t.Errorf("under journald, text logs %q", got)
	}
	if got := logOnce("json"); !strings.HasPrefix(got, `{"time":`) {
		t.Errorf("under journald, json logs %q", got)
	}
	t.Setenv("JOURNAL_STREAM", fmt.Sprintf("%d:%d", st.Dev, st.Ino+1))
	if got := logOnce("text"); !strings.HasPrefix(got, "time=") {
		t.Errorf("JOURNAL_STREAM of another stream, text logs %q", got)
	}
}
