package store

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testRequest returns a valid request made at created, open for a week.
func testRequest(name string, created time.Time) Request {
	return Request{SecretHash: "hash-" + name, Name: name, Message: "I know Bob", Created: created,
		Expires: created.Add(7 * 24 * time.Hour)}
}

func receiveEntry(at time.Time) AuditEntry {
	return AuditEntry{Time: at, Actor: "web", Action: "request.receive"}
}

func mustAddRequest(t *testing.T, s *Store, r Request) Request {
	t.Helper()
	got, err := s.AddRequest(t.Context(), r, 100, receiveEntry(r.Created))
	if err != nil {
		t.Fatalf("AddRequest(%s): %v", r.Name, err)
	}
	return got
}

func TestAddRequestAndGet(t *testing.T) {
	s, _ := openTest(t)
	in := testRequest("Anna", t0)
	in.ID, in.State = "callerchosenidxx", RequestDenied // the store decides both
	got, err := s.AddRequest(t.Context(), in, 1, receiveEntry(t0))
	if err != nil {
		t.Fatalf("AddRequest: %v", err)
	}
	if !ValidID(got.ID) || got.ID == in.ID || got.State != RequestOpen {
		t.Errorf("added request id %q state %s, want a fresh id, open", got.ID, got.State)
	}
	stored, err := s.Request(t.Context(), got.ID)
	if err != nil || stored != got {
		t.Errorf("Request(%s) = %+v, %v; want %+v", got.ID, stored, err, got)
	}
	audit, _ := s.Audit(t.Context(), got.ID, 10)
	if len(audit) != 1 || audit[0].Action != "request.receive" {
		t.Errorf("audit about the request: %+v", audit)
	}
	if _, err := s.Request(t.Context(), "nosuchrequestxxx"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown request: %v, want ErrNotFound", err)
	}
	if _, err := s.AddRequest(t.Context(), Request{Name: "x"}, 1, receiveEntry(t0)); !errors.Is(err, ErrInvalid) {
		t.Errorf("request without secret or times: %v, want ErrInvalid", err)
	}
}

// TestAddRequestCap: past maxOpen live requests nothing is added, and
// neither answered nor lapsed requests count.
func TestAddRequestCap(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	first, err := s.AddRequest(ctx, testRequest("one", t0), 2, receiveEntry(t0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRequest(ctx, testRequest("two", t0), 2, receiveEntry(t0)); err != nil {
		t.Fatal(err)
	}
	before := auditLen(t, s)
	if _, err := s.AddRequest(ctx, testRequest("three", t0), 2, receiveEntry(t0)); !errors.Is(err, ErrFull) {
		t.Fatalf("third request with a cap of 2: %v, want ErrFull", err)
	}
	if auditLen(t, s) != before {
		t.Error("a refused request wrote an audit entry")
	}
	if _, err := s.DenyRequest(ctx, first.ID, "admin@x", "", AuditEntry{Time: t0, Actor: "admin@x", Action: "request.deny"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRequest(ctx, testRequest("three", t0), 2, receiveEntry(t0)); err != nil {
		t.Fatalf("after one was declined: %v", err)
	}
	// A week on, the open ones have lapsed (not swept yet): room again.
	later := t0.Add(7*24*time.Hour + time.Minute)
	if _, err := s.AddRequest(ctx, testRequest("four", later), 2, receiveEntry(later)); err != nil {
		t.Fatalf("after the others lapsed: %v", err)
	}
}

// TestAddRequestCapConcurrent: many requests at once cannot overshoot the
// cap, since the count and the write share a transaction.
func TestAddRequestCapConcurrent(t *testing.T) {
	s, _ := openTest(t)
	const maxOpen, tries = 5, 40
	var added atomic.Int32
	var wg sync.WaitGroup
	for range tries {
		wg.Go(func() {
			_, err := s.AddRequest(t.Context(), testRequest("x", t0), maxOpen, receiveEntry(t0))
			switch {
			case err == nil:
				added.Add(1)
			case !errors.Is(err, ErrFull):
				t.Error(err)
			}
		})
	}
	wg.Wait()
	open, err := s.OpenRequests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if added.Load() != maxOpen || len(open) != maxOpen {
		t.Errorf("%d added, %d open, want %d", added.Load(), len(open), maxOpen)
	}
}

// TestFirstAnswerWins: once a request is answered, neither an approval
// (whose invite is then not stored) nor another denial changes it.
func TestFirstAnswerWins(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	r := mustAddRequest(t, s, testRequest("Anna", t0))
	inv := testInvite("carol@elsewhere", "tok-approved", t0.Add(time.Hour))
	stored, approved, err := s.ApproveRequest(ctx, r.ID, inv, createEntry("carol@elsewhere", t0.Add(time.Hour)),
		AuditEntry{Time: t0.Add(time.Hour), Actor: "carol@elsewhere", Action: "request.approve", Detail: "x"})
	if err != nil {
		t.Fatalf("ApproveRequest: %v", err)
	}
	if approved.State != RequestApproved || approved.AnsweredBy != "carol@elsewhere" || approved.Invite != stored.ID ||
		!approved.Answered.Equal(t0.Add(time.Hour)) {
		t.Errorf("approved request %+v (invite %s)", approved, stored.ID)
	}
	if stored.Request != r.ID {
		t.Errorf("invite records request %q, want %q", stored.Request, r.ID)
	}
	if got, _ := s.Invite(ctx, stored.ID); got.Request != r.ID || got.Inviter != "carol@elsewhere" {
		t.Errorf("stored invite %+v", got)
	}

	before := auditLen(t, s)
	late := testInvite("admin@x", "tok-late", t0.Add(2*time.Hour))
	if _, _, err := s.ApproveRequest(ctx, r.ID, late, createEntry("admin@x", t0.Add(2*time.Hour)),
		AuditEntry{Time: t0.Add(2 * time.Hour), Actor: "admin@x", Action: "request.approve"}); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("second approval: %v, want ErrNotOpen", err)
	}
	if _, err := s.DenyRequest(ctx, r.ID, "admin@x", "no", AuditEntry{Time: t0.Add(2 * time.Hour), Actor: "admin@x", Action: "request.deny"}); !errors.Is(err, ErrNotOpen) {
		t.Fatalf("denial after approval: %v, want ErrNotOpen", err)
	}
	if auditLen(t, s) != before {
		t.Error("late answers wrote audit entries")
	}
	if invs, _ := s.InvitesByInviter(ctx, "admin@x"); len(invs) != 0 {
		t.Errorf("the late approval's invite was stored: %+v", invs)
	}
	if got, _ := s.Request(ctx, r.ID); got != approved {
		t.Errorf("request after late answers %+v, want %+v", got, approved)
	}
}

func TestDenyRequest(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	r := mustAddRequest(t, s, testRequest("Anna", t0))
	at := t0.Add(time.Hour)
	got, err := s.DenyRequest(ctx, r.ID, "admin@x", "we do not know you", AuditEntry{Time: at, Actor: "admin@x", Action: "request.deny"})
	if err != nil {
		t.Fatal(err)
	}
	if got.State != RequestDenied || got.AnsweredBy != "admin@x" || got.Reason != "we do not know you" || !got.Answered.Equal(at) {
		t.Errorf("denied request %+v", got)
	}
	if _, err := s.DenyRequest(ctx, "nosuchrequestxxx", "admin@x", "", AuditEntry{Actor: "admin@x", Action: "request.deny"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown request: %v, want ErrNotFound", err)
	}
	// A lapsed request cannot be answered, even before the sweep.
	old := mustAddRequest(t, s, testRequest("Old", t0))
	if _, err := s.DenyRequest(ctx, old.ID, "admin@x", "", AuditEntry{Time: old.Expires, Actor: "admin@x", Action: "request.deny"}); !errors.Is(err, ErrNotOpen) {
		t.Errorf("denying a lapsed request: %v, want ErrNotOpen", err)
	}
}

func TestExpireRequests(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	old := mustAddRequest(t, s, testRequest("Old", t0))
	young := mustAddRequest(t, s, testRequest("Young", t0.Add(3*24*time.Hour)))
	denied := mustAddRequest(t, s, testRequest("Denied", t0))
	if _, err := s.DenyRequest(ctx, denied.ID, "admin@x", "", AuditEntry{Time: t0, Actor: "admin@x", Action: "request.deny"}); err != nil {
		t.Fatal(err)
	}
	now := old.Expires.Add(time.Second)
	expired, err := s.ExpireRequests(ctx, now, "system", "request.expire")
	if err != nil {
		t.Fatal(err)
	}
	if len(expired) != 1 || expired[0].ID != old.ID || expired[0].State != RequestExpired {
		t.Fatalf("expired %+v, want only %s", expired, old.ID)
	}
	if got, _ := s.Request(ctx, old.ID); got.State != RequestExpired || !got.Answered.Equal(now) {
		t.Errorf("stored %+v", got)
	}
	if audit, _ := s.Audit(ctx, old.ID, 10); len(audit) != 2 || audit[0].Action != "request.expire" || audit[0].Actor != "system" {
		t.Errorf("audit about the expired request: %+v", audit)
	}
	open, _ := s.OpenRequests(ctx)
	if len(open) != 1 || open[0].ID != young.ID {
		t.Errorf("open after the sweep: %+v", open)
	}
	if again, err := s.ExpireRequests(ctx, now, "system", "request.expire"); err != nil || len(again) != 0 {
		t.Errorf("second sweep: %+v, %v", again, err)
	}
}

func TestOpenRequestsOldestFirst(t *testing.T) {
	s, _ := openTest(t)
	b := mustAddRequest(t, s, testRequest("B", t0.Add(time.Minute)))
	a := mustAddRequest(t, s, testRequest("A", t0))
	open, err := s.OpenRequests(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != 2 || open[0].ID != a.ID || open[1].ID != b.ID {
		t.Errorf("open requests %+v, want A then B", open)
	}
}
