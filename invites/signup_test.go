package invites

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"durare.org/invitebot/policy"
	"durare.org/invitebot/store"
)

// mailbox is a Confirmer that keeps what it was asked to send, and fails
// while fail is set.
type mailbox struct {
	mu   sync.Mutex
	sent []sentMail
	fail bool
}

type sentMail struct {
	to, lang, key string
	c             Confirmation
}

func (m *mailbox) SendConfirmation(_ context.Context, to, lang string, c Confirmation) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("mail server says no")
	}
	key, _, _ := strings.Cut(c.Link, "|")
	m.sent = append(m.sent, sentMail{to: to, lang: lang, key: key, c: c})
	return nil
}

func (m *mailbox) last(t *testing.T) sentMail {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.sent) == 0 {
		t.Fatal("no mail sent")
	}
	return m.sent[len(m.sent)-1]
}

func newSignupService(t *testing.T, lim policy.Limits, o SignupOptions) (*Service, *mailbox, *events) {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "invitebot.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	mb, notes := &mailbox{}, &events{}
	o.Verify, o.Confirmer = VerifyEmail, mb
	o.ConfirmLink = func(key, code string) string { return key + "|" + code }
	svc := NewService(Options{Store: st, Issuer: &mintingIssuer{}, Domain: "durare.test", Admins: map[string]bool{reqAdmin: true},
		Log: slog.New(slog.NewTextHandler(t.Output(), nil)), Notifier: notes, Limits: lim,
		Requests: RequestOptions{Enabled: true}, Signup: o})
	return svc, mb, notes
}

// TestAutoApprovalCountsTowardTheGlobalLimit: automatic approvals stop at
// policy.global_per_day even below requests.auto_approve; the request
// then waits for an approver, who hears of it marked confirmed.
func TestAutoApprovalCountsTowardTheGlobalLimit(t *testing.T) {
	ctx := context.Background()
	svc, mb, notes := newSignupService(t, policy.Limits{PerDay: 5, MaxPending: 10, GlobalPerDay: 1}, SignupOptions{AutoApprovePerDay: 10})
	for i, addr := range []string{"anna@example.net", "bert@example.net"} {
		if _, err := svc.SubmitRequest(ctx, NewRequest{Name: "N", Message: "hello", Email: addr, Lang: "de"}); err != nil {
			t.Fatal(err)
		}
		m := mb.last(t)
		if m.to != addr || m.lang != "de" {
			t.Errorf("mail to %q in %q", m.to, m.lang)
		}
		if got := notes.take(); len(got) != 0 {
			t.Errorf("told before confirming: %v", got)
		}
		r, err := svc.ConfirmRequest(ctx, m.key, m.c.Code)
		if err != nil {
			t.Fatal(err)
		}
		want := []RequestState{RequestApproved, RequestOpen}[i]
		if r.State != want || r.MailConfirmed.IsZero() {
			t.Errorf("%s: %s, confirmed %v; want %s", addr, r.State, r.MailConfirmed, want)
		}
		got := notes.take()
		if i == 1 && (len(got) != 1 || got[0] != reqAdmin+": invites.RequestReceived") {
			t.Errorf("past the global limit the approvers were told %v", got)
		}
	}
}

// TestMailsPerAddress: mails to one address stop at its daily limit, even
// when sending failed (a failed mail leaves no request behind); an open
// request holds its address; a bad address is refused.
func TestMailsPerAddress(t *testing.T) {
	ctx := context.Background()
	svc, mb, _ := newSignupService(t, policy.Limits{PerDay: 5, MaxPending: 10, GlobalPerDay: 10},
		SignupOptions{Limits: policy.MailLimits{PerAddressPerDay: 2, PerDomainPerDay: 10}})
	nr := NewRequest{Name: "N", Message: "hello", Email: "cara@example.net"}
	mb.fail = true
	for range 2 {
		if _, err := svc.SubmitRequest(ctx, nr); !errors.Is(err, ErrMailNotSent) {
			t.Fatalf("a failed mail: %v", err)
		}
	}
	mb.fail = false
	var refused *MailRefusedError
	if _, err := svc.SubmitRequest(ctx, nr); !errors.As(err, &refused) || refused.Limit != policy.MailPerAddress {
		t.Errorf("a third mail to one address in a day: %v", err)
	}
	// Another address is fine, and its open request holds it.
	if _, err := svc.SubmitRequest(ctx, NewRequest{Name: "N", Message: "hi", Email: "dora@example.net"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SubmitRequest(ctx, NewRequest{Name: "N", Message: "hi", Email: "Dora+x@example.net"}); !errors.As(err, &refused) || refused.Limit != policy.MailOpenRequest {
		t.Errorf("the same address again: %v", err)
	}
	for _, bad := range []string{"", "cara", "cara@example.net\nBcc: x@y.org"} {
		if _, err := svc.SubmitRequest(ctx, NewRequest{Name: "N", Message: "hi", Email: bad}); !errors.Is(err, ErrRequestInvalid) {
			t.Errorf("address %q: %v", bad, err)
		}
	}
	admin, err := svc.Actor(ctx, reqAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if open, err := svc.Requests(ctx, admin); err != nil || len(open) != 0 {
		t.Errorf("approvers see %d unconfirmed requests, %v", len(open), err)
	}
}
