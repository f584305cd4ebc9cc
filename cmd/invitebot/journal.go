package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"sync"
)

// journalHandler writes slog records the way journald reads a service's
// standard error (sd-daemon(3)): each line starts with its syslog priority,
// "<6>" for info, and carries no time, which journald records itself. The
// rest of the line is slog's text format, keys and quoting as ever.
type journalHandler struct {
	inner slog.Handler // a TextHandler writing into out.buf
	out   *journalOut
}

// journalOut is what a handler and those derived from it share: one line
// is built at a time and written whole.
type journalOut struct {
	mu  sync.Mutex
	buf bytes.Buffer
	w   io.Writer
}

func newJournalHandler(w io.Writer, opts *slog.HandlerOptions) *journalHandler {
	out := &journalOut{w: w}
	o := slog.HandlerOptions{}
	if opts != nil {
		o = *opts
	}
	replace := o.ReplaceAttr
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey {
			return slog.Attr{} // journald stamps the line
		}
		if replace != nil {
			return replace(groups, a)
		}
		return a
	}
	return &journalHandler{inner: slog.NewTextHandler(&out.buf, &o), out: out}
}

func (h *journalHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h *journalHandler) Handle(ctx context.Context, r slog.Record) error {
	h.out.mu.Lock()
	defer h.out.mu.Unlock()
	h.out.buf.Reset()
	h.out.buf.WriteString(journalPriority(r.Level))
	if err := h.inner.Handle(ctx, r); err != nil {
		return err
	}
	_, err := h.out.w.Write(h.out.buf.Bytes())
	return err
}

func (h *journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &journalHandler{inner: h.inner.WithAttrs(as), out: h.out}
}

func (h *journalHandler) WithGroup(name string) slog.Handler {
	return &journalHandler{inner: h.inner.WithGroup(name), out: h.out}
}

// journalPriority is the sd-daemon(3) prefix of a level: debug 7, info 6,
// warn 4, error 3 (levels between take the one below them).
func journalPriority(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "<3>"
	case l >= slog.LevelWarn:
		return "<4>"
	case l >= slog.LevelInfo:
		return "<6>"
	default:
		return "<7>"
	}
}

// underJournal reports whether w is the stream systemd connected to
// journald: JOURNAL_STREAM names its device and inode (systemd.exec(5)).
// Comparing them, not just seeing the variable, keeps a command run from
// a service with its standard error redirected from writing priorities
// into a file.
func underJournal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	want := os.Getenv("JOURNAL_STREAM")
	if want == "" {
		return false
	}
	id, ok := streamID(f)
	return ok && id == want
}
