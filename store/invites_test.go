package store

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAddInviteAndGet(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	in := testInvite("alice@example.org", "tok-a", t0.In(time.FixedZone("CET", 3600)))
	in.ID = "callerchosenidxx" // must be ignored: the store hands out ids
	in.LandingURL = "https://durare.org/invite?t=tok-a"
	in.Note = "for Carol"
	entry := AuditEntry{Time: t0, Actor: "alice@example.org", Action: "invite.create", Detail: "chat"}

	got, err := s.AddInvite(ctx, in, entry)
	if err != nil {
		t.Fatalf("AddInvite: %v", err)
	}
	if !ValidID(got.ID) || got.ID == in.ID {
		t.Errorf("assigned ID = %q, want a fresh valid id", got.ID)
	}
	want := in
	want.ID = got.ID
	want.Created = in.Created.UTC()
	want.Expires = in.Expires.UTC()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("AddInvite returned\n %+v\nwant %+v", got, want)
	}
	stored, err := s.Invite(ctx, got.ID)
	if err != nil {
		t.Fatalf("Invite: %v", err)
	}
	if !reflect.DeepEqual(stored, got) {
		t.Errorf("Invite(%s) =\n %+v\nwant %+v", got.ID, stored, got)
	}

	audit, err := s.Audit(ctx, "", 10)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	wantEntry := entry
	wantEntry.Seq = 1
	wantEntry.Subject = got.ID
	if !reflect.DeepEqual(audit, []AuditEntry{wantEntry}) {
		t.Errorf("audit = %+v, want [%+v]", audit, wantEntry)
	}
}

func TestAddInviteDefaultsPending(t *testing.T) {
	s, _ := openTest(t)
	in := testInvite("alice@example.org", "tok-a", t0)
	in.State = ""
	got := mustAdd(t, s, in)
	if got.State != StatePending {
		t.Errorf("State = %q, want pending", got.State)
	}
}

func TestAddInviteKeepsExplicitSubject(t *testing.T) {
	s, _ := openTest(t)
	entry := AuditEntry{Time: t0, Actor: "system", Action: "invite.import", Subject: "batch-7"}
	if _, err := s.AddInvite(t.Context(), testInvite("alice@example.org", "tok-a", t0), entry); err != nil {
		t.Fatalf("AddInvite: %v", err)
	}
	audit, err := s.Audit(t.Context(), "batch-7", 10)
	if err != nil || len(audit) != 1 {
		t.Errorf("Audit(batch-7) = %+v, %v; want the one entry", audit, err)
	}
}

func TestAddInviteInvalid(t *testing.T) {
	good := testInvite("alice@example.org", "tok", t0)
	tests := []struct {
		name string
		edit func(*Invite, *AuditEntry)
	}{
		{"empty token", func(i *Invite, _ *AuditEntry) { i.Token = "" }},
		{"empty inviter", func(i *Invite, _ *AuditEntry) { i.Inviter = "" }},
		{"NUL in inviter", func(i *Invite, _ *AuditEntry) { i.Inviter = "alice\x00evil" }},
		{"zero created", func(i *Invite, _ *AuditEntry) { i.Created = time.Time{} }},
		{"created before 1970", func(i *Invite, _ *AuditEntry) { i.Created = time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC) }},
		{"created after 2262", func(i *Invite, _ *AuditEntry) { i.Created = time.Date(2263, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"unknown state", func(i *Invite, _ *AuditEntry) { i.State = "revoked" }},
		{"audit without actor", func(_ *Invite, e *AuditEntry) { e.Actor = "" }},
		{"audit without action", func(_ *Invite, e *AuditEntry) { e.Action = "" }},
	}
	s, _ := openTest(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, entry := good, createEntry("alice@example.org", t0)
			tt.edit(&inv, &entry)
			got, err := s.AddInvite(t.Context(), inv, entry)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			if !reflect.DeepEqual(got, Invite{}) {
				t.Errorf("returned %+v alongside the error, want zero Invite", got)
			}
		})
	}
	if n := auditLen(t, s); n != 0 {
		t.Errorf("refused invites wrote %d audit entries", n)
	}
	if p, _ := s.PendingInvites(t.Context()); len(p) != 0 {
		t.Errorf("refused invites were stored: %+v", p)
	}
}

func TestAddInviteDuplicateToken(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	first := mustAdd(t, s, testInvite("alice@example.org", "same-token", t0))
	_, err := s.AddInvite(ctx, testInvite("bob@other.net", "same-token", t0.Add(time.Minute)), createEntry("bob@other.net", t0))
	if !errors.Is(err, ErrExists) {
		t.Fatalf("second AddInvite err = %v, want ErrExists", err)
	}
	// Nothing of the refused invite may remain: no record, no index, no audit.
	if list, _ := s.InvitesByInviter(ctx, "bob@other.net"); len(list) != 0 {
		t.Errorf("bob's invites = %+v, want none", list)
	}
	if p, _ := s.PendingInvites(ctx); len(p) != 1 || p[0].ID != first.ID {
		t.Errorf("pending = %+v, want only the first invite", p)
	}
	if n := auditLen(t, s); n != 1 {
		t.Errorf("audit entries = %d, want 1", n)
	}
}

func TestAddInviteIDCollision(t *testing.T) {
	s, _ := openTest(t)
	ids := []string{"aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"}
	var mu sync.Mutex
	s.newID = func() string {
		mu.Lock()
		defer mu.Unlock()
		id := ids[0]
		ids = ids[1:]
		return id
	}
	a := mustAdd(t, s, testInvite("alice@example.org", "tok-a", t0))
	b := mustAdd(t, s, testInvite("alice@example.org", "tok-b", t0))
	if a.ID != "aaaaaaaaaaaaaaaa" || b.ID != "bbbbbbbbbbbbbbbb" {
		t.Errorf("ids = %q, %q; want the colliding id skipped", a.ID, b.ID)
	}
	if got, err := s.Invite(t.Context(), a.ID); err != nil || got.Token != "tok-a" {
		t.Errorf("first invite after collision = %+v, %v; want it untouched", got, err)
	}

	// A random source stuck on one value must fail, not loop or overwrite.
	s.newID = func() string { return "aaaaaaaaaaaaaaaa" }
	if _, err := s.AddInvite(t.Context(), testInvite("alice@example.org", "tok-c", t0), createEntry("alice@example.org", t0)); err == nil {
		t.Error("AddInvite with a stuck id source succeeded")
	}
	if n := auditLen(t, s); n != 2 {
		t.Errorf("audit entries = %d, want 2", n)
	}
}

func TestInviteNotFound(t *testing.T) {
	s, _ := openTest(t)
	mustAdd(t, s, testInvite("alice@example.org", "tok-a", t0))
	for _, id := range []string{"", "aaaaaaaaaaaaaaaa", "not an id at all"} {
		got, err := s.Invite(t.Context(), id)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Invite(%q) err = %v, want ErrNotFound", id, err)
		}
		if !reflect.DeepEqual(got, Invite{}) {
			t.Errorf("Invite(%q) returned %+v with the error", id, got)
		}
	}
}

func TestInvitesByInviter(t *testing.T) {
	s, _ := openTest(t)
	// Inviters chosen so that a sloppy prefix scan would mix them up.
	add := func(inviter, token string, minutes int) Invite {
		return mustAdd(t, s, testInvite(inviter, token, t0.Add(time.Duration(minutes)*time.Minute)))
	}
	a2 := add("alice@example.org", "a2", 2)
	a1 := add("alice@example.org", "a1", 1) // inserted out of time order
	a3 := add("alice@example.org", "a3", 3)
	evil := add("alice@example.org.evil", "e1", 5)
	short := add("alice@example.or", "s1", 4)
	bob := add("bob@other.net", "b1", 0)

	tests := []struct {
		inviter string
		want    []Invite
	}{
		{"alice@example.org", []Invite{a3, a2, a1}},
		{"alice@example.org.evil", []Invite{evil}},
		{"alice@example.or", []Invite{short}},
		{"bob@other.net", []Invite{bob}},
		{"zed@nowhere", []Invite{}},           // after every key
		{"aaa@first", []Invite{}},             // before every key
		{"alice@example.o", []Invite{}},       // strict prefix of real inviters
		{"", []Invite{}},                      // cannot be stored
		{"alice@example.org\x00", []Invite{}}, // would match alice by prefix
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.inviter), func(t *testing.T) {
			got, err := s.InvitesByInviter(t.Context(), tt.inviter)
			if err != nil {
				t.Fatalf("InvitesByInviter: %v", err)
			}
			if got == nil {
				t.Fatal("got nil slice, want empty non-nil")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %v, want %v", tokens(got), tokens(tt.want))
			}
		})
	}
}

// tokens makes invite lists readable in failure messages.
func tokens(invs []Invite) []string {
	out := []string{}
	for _, inv := range invs {
		out = append(out, inv.Token)
	}
	return out
}

func TestPendingInvites(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	got, err := s.PendingInvites(ctx)
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("PendingInvites on empty store = %#v, %v; want empty non-nil", got, err)
	}
	p3 := mustAdd(t, s, testInvite("bob@other.net", "p3", t0.Add(3*time.Hour)))
	p1 := mustAdd(t, s, testInvite("alice@example.org", "p1", t0.Add(1*time.Hour)))
	gone := mustAdd(t, s, testInvite("alice@example.org", "gone", t0))
	p2 := mustAdd(t, s, testInvite("carol@example.org", "p2", t0.Add(2*time.Hour)))
	used := testInvite("alice@example.org", "used", t0)
	used.State = StateUsed
	mustAdd(t, s, used)
	if _, err := s.SetInviteState(ctx, gone.ID, StateCancelled, "", AuditEntry{Actor: "alice@example.org", Action: "invite.cancel"}); err != nil {
		t.Fatalf("SetInviteState: %v", err)
	}

	got, err = s.PendingInvites(ctx)
	if err != nil {
		t.Fatalf("PendingInvites: %v", err)
	}
	if want := []Invite{p1, p2, p3}; !reflect.DeepEqual(got, want) {
		t.Errorf("PendingInvites = %v, want %v", tokens(got), tokens(want))
	}
}

func TestSetInviteState(t *testing.T) {
	changedAt := t0.Add(time.Hour)
	tests := []struct {
		name      string
		prior     State // state the invite is moved to first, "" for none
		id        string
		to        State
		usedBy    string
		wantErr   error
		wantInv   func(Invite) Invite // expected result from the original invite
		wantAudit int                 // audit entries added by the call under test
	}{
		{
			name: "pending to cancelled", to: StateCancelled,
			wantInv:   func(i Invite) Invite { i.State, i.Changed = StateCancelled, changedAt; return i },
			wantAudit: 1,
		},
		{
			name: "pending to used records account", to: StateUsed, usedBy: "newbie@durare.org",
			wantInv: func(i Invite) Invite {
				i.State, i.Changed, i.UsedBy = StateUsed, changedAt, "newbie@durare.org"
				return i
			},
			wantAudit: 1,
		},
		{
			name: "pending to expired", to: StateExpired,
			wantInv:   func(i Invite) Invite { i.State, i.Changed = StateExpired, changedAt; return i },
			wantAudit: 1,
		},
		{name: "cancelled to used", prior: StateCancelled, to: StateUsed, usedBy: "x@durare.org", wantErr: ErrNotPending},
		{name: "used to cancelled", prior: StateUsed, to: StateCancelled, wantErr: ErrNotPending},
		{name: "expired to expired", prior: StateExpired, to: StateExpired, wantErr: ErrNotPending},
		{name: "unknown id", id: "aaaaaaaaaaaaaaaa", to: StateCancelled, wantErr: ErrNotFound},
		{name: "empty id", id: "-", to: StateCancelled, wantErr: ErrNotFound},
		{name: "to pending", to: StatePending, wantErr: ErrInvalid},
		{name: "to unknown state", to: "revoked", wantErr: ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTest(t)
			ctx := t.Context()
			inv := mustAdd(t, s, testInvite("alice@example.org", "tok", t0))
			if tt.prior != "" {
				var err error
				inv, err = s.SetInviteState(ctx, inv.ID, tt.prior, "", AuditEntry{Time: t0, Actor: "system", Action: "setup"})
				if err != nil {
					t.Fatalf("setup SetInviteState: %v", err)
				}
			}
			id := inv.ID
			switch tt.id {
			case "-":
				id = ""
			case "":
			default:
				id = tt.id
			}
			before := auditLen(t, s)

			entry := AuditEntry{Time: changedAt.In(time.FixedZone("X", -7200)), Actor: "alice@example.org", Action: "invite.change", Detail: tt.name}
			got, err := s.SetInviteState(ctx, id, tt.to, tt.usedBy, entry)

			if added := auditLen(t, s) - before; added != tt.wantAudit {
				t.Errorf("audit entries added = %d, want %d", added, tt.wantAudit)
			}
			stored, getErr := s.Invite(ctx, inv.ID)
			if getErr != nil {
				t.Fatalf("Invite: %v", getErr)
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !reflect.DeepEqual(got, Invite{}) {
					t.Errorf("returned %+v alongside the error", got)
				}
				if !reflect.DeepEqual(stored, inv) {
					t.Errorf("refused transition changed the invite:\n got %+v\nwant %+v", stored, inv)
				}
				return
			}
			if err != nil {
				t.Fatalf("SetInviteState: %v", err)
			}
			want := tt.wantInv(inv)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("returned\n %+v\nwant %+v", got, want)
			}
			if !reflect.DeepEqual(stored, want) {
				t.Errorf("stored\n %+v\nwant %+v", stored, want)
			}
			last, err := s.Audit(ctx, "", 1)
			if err != nil {
				t.Fatalf("Audit: %v", err)
			}
			if last[0].Subject != inv.ID || last[0].Detail != tt.name || !last[0].Time.Equal(changedAt) {
				t.Errorf("audit entry = %+v, want subject %s at %s", last[0], inv.ID, changedAt)
			}
		})
	}
}

func TestSetInviteStateOnlyOnce(t *testing.T) {
	// The expiry sweep and a user's cancel can race; exactly one may win.
	s, _ := openTest(t)
	inv := mustAdd(t, s, testInvite("alice@example.org", "tok", t0))
	const racers = 10
	var wg sync.WaitGroup
	errs := make(chan error, racers)
	for i := range racers {
		wg.Go(func() {
			to := StateCancelled
			if i%2 == 0 {
				to = StateExpired
			}
			_, err := s.SetInviteState(t.Context(), inv.ID, to, "", AuditEntry{Actor: "system", Action: "race"})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	var ok, refused int
	for err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrNotPending):
			refused++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || refused != racers-1 {
		t.Errorf("succeeded %d, refused %d; want 1 and %d", ok, refused, racers-1)
	}
	if n := auditLen(t, s); n != 2 {
		t.Errorf("audit entries = %d, want 2 (create + one transition)", n)
	}
}

func TestConcurrentAddInvite(t *testing.T) {
	s, _ := openTest(t)
	const workers = 20
	var wg sync.WaitGroup
	results := make(chan Invite, workers)
	for i := range workers {
		wg.Go(func() {
			inv, err := s.AddInvite(t.Context(), testInvite("alice@example.org", fmt.Sprintf("tok-%d", i), t0.Add(time.Duration(i)*time.Second)), createEntry("alice@example.org", t0))
			if err != nil {
				t.Errorf("AddInvite %d: %v", i, err)
				return
			}
			results <- inv
		})
	}
	wg.Wait()
	close(results)

	ids := make(map[string]bool)
	for inv := range results {
		if !ValidID(inv.ID) {
			t.Errorf("invalid id %q", inv.ID)
		}
		if ids[inv.ID] {
			t.Errorf("duplicate id %q", inv.ID)
		}
		ids[inv.ID] = true
	}
	if len(ids) != workers {
		t.Fatalf("got %d distinct ids, want %d", len(ids), workers)
	}
	list, err := s.InvitesByInviter(t.Context(), "alice@example.org")
	if err != nil {
		t.Fatalf("InvitesByInviter: %v", err)
	}
	if len(list) != workers {
		t.Errorf("listed %d invites, want %d", len(list), workers)
	}
	for i, inv := range list {
		if !ids[inv.ID] {
			t.Errorf("listed unknown id %q", inv.ID)
		}
		if want := fmt.Sprintf("tok-%d", workers-1-i); inv.Token != want {
			t.Errorf("list[%d] = %s, want %s (newest first)", i, inv.Token, want)
		}
	}
	audit, err := s.Audit(t.Context(), "", 100)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	seqs := make(map[uint64]bool)
	for _, e := range audit {
		seqs[e.Seq] = true
		if !ids[e.Subject] {
			t.Errorf("audit subject %q is not one of the new ids", e.Subject)
		}
	}
	if len(audit) != workers || len(seqs) != workers {
		t.Errorf("audit has %d entries with %d distinct seqs, want %d", len(audit), len(seqs), workers)
	}
}

func TestInvitesUsedBy(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	a := mustAdd(t, s, testInvite("a@x.org", "t-a", t0))
	b := mustAdd(t, s, testInvite("a@x.org", "t-b", t0.Add(time.Hour)))
	mustAdd(t, s, testInvite("a@x.org", "t-c", t0.Add(2*time.Hour)))
	for _, inv := range []Invite{a, b} {
		if _, err := s.SetInviteState(ctx, inv.ID, StateUsed, "new@x.org", AuditEntry{Actor: "system", Action: "invite.use"}); err != nil {
			t.Fatal(err)
		}
	}
	// A longer account sharing the prefix must not match.
	if _, err := s.SetInviteState(ctx, a.ID, StateUsed, "new@x.org.evil", AuditEntry{Actor: "system", Action: "invite.use"}); !errors.Is(err, ErrNotPending) {
		t.Fatalf("second use: %v", err)
	}
	used, err := s.InvitesUsedBy(ctx, "new@x.org")
	if err != nil || len(used) != 2 {
		t.Fatalf("InvitesUsedBy = %v, %v; want t-a and t-b", tokens(used), err)
	}
	for _, account := range []string{"", "new@x.or", "nobody@x.org"} {
		if got, err := s.InvitesUsedBy(ctx, account); err != nil || got == nil || len(got) != 0 {
			t.Errorf("InvitesUsedBy(%q) = %#v, %v; want empty non-nil", account, got, err)
		}
	}
	long := strings.Repeat("x", maxKeyPart+1)
	if _, err := s.SetInviteState(ctx, b.ID, StateUsed, long, AuditEntry{Actor: "system", Action: "invite.use"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetInviteState with a %d-byte account: %v, want ErrInvalid", len(long), err)
	}
	checkIndexes(t, s)
}

func TestUnrevokedCancelled(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	now := t0.Add(24 * time.Hour)
	cancel := func(inv Invite) Invite {
		t.Helper()
		got, err := s.SetInviteState(ctx, inv.ID, StateCancelled, "", AuditEntry{Actor: "a@x.org", Action: "invite.cancel"})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	live := cancel(mustAdd(t, s, testInvite("a@x.org", "t-live", t0)))
	expiredInv := testInvite("a@x.org", "t-expired", t0.Add(-7*24*time.Hour))
	cancel(mustAdd(t, s, expiredInv))
	atNow := testInvite("a@x.org", "t-at-now", t0)
	atNow.Expires = now // refused from now on: expired
	cancel(mustAdd(t, s, atNow))
	unknown := testInvite("b@y.org", "t-unknown", t0)
	unknown.Expires = time.Time{}
	unknownInv := cancel(mustAdd(t, s, unknown))
	mustAdd(t, s, testInvite("a@x.org", "t-pending", t0))

	got, err := s.UnrevokedCancelled(ctx, now)
	if want := []string{"t-live", "t-unknown"}; err != nil || !reflect.DeepEqual(tokens(got), want) {
		t.Fatalf("UnrevokedCancelled = %v, %v; want %v (soonest expiry first, unknown last)", tokens(got), err, want)
	}
	if !reflect.DeepEqual(got[0], live) || !reflect.DeepEqual(got[1], unknownInv) {
		t.Errorf("UnrevokedCancelled records = %+v, want %+v and %+v", got, live, unknownInv)
	}
	if err := s.MarkRevoked(ctx, live.ID, AuditEntry{Actor: "system", Action: "invite.token-revoked"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.UnrevokedCancelled(ctx, now); !reflect.DeepEqual(tokens(got), []string{"t-unknown"}) {
		t.Errorf("after MarkRevoked: %v, want [t-unknown]", tokens(got))
	}
	if err := s.MarkRevoked(ctx, "aaaaaaaaaaaaaaaa", AuditEntry{Actor: "system", Action: "invite.revoke"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkRevoked unknown: %v", err)
	}
	checkIndexes(t, s)
}

func TestPendingPage(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	if _, err := s.PendingPage(ctx, PendingRef{}, 0); !errors.Is(err, ErrInvalid) {
		t.Errorf("PendingPage limit 0: %v, want ErrInvalid", err)
	}
	if got, err := s.PendingPage(ctx, PendingRef{}, 10); err != nil || got == nil || len(got) != 0 {
		t.Errorf("PendingPage on empty store = %#v, %v; want empty non-nil", got, err)
	}
	// Seven pending invites, expiring in the order of their tokens; one
	// with an unknown expiry, which comes last.
	var want []PendingRef
	for i := range 7 {
		inv := testInvite("a@x.org", fmt.Sprintf("t%d", i), t0.Add(-time.Duration(i)*time.Minute))
		inv.Expires = t0.Add(time.Duration(i) * time.Hour)
		if i == 6 {
			inv.Expires = time.Time{}
		}
		inv = mustAdd(t, s, inv)
		want = append(want, PendingRef{ID: inv.ID, Token: inv.Token, Inviter: inv.Inviter, Expires: inv.Expires})
	}
	settled := mustAdd(t, s, testInvite("b@y.org", "t-used", t0))
	if _, err := s.SetInviteState(ctx, settled.ID, StateUsed, "", AuditEntry{Actor: "system", Action: "invite.use"}); err != nil {
		t.Fatal(err)
	}

	var got []PendingRef
	var after PendingRef
	for pages := 0; ; pages++ {
		page, err := s.PendingPage(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, page...)
		if pages == 0 {
			// Settling an invite of a later page between pages drops it
			// from the sweep without disturbing the paging.
			if _, err := s.SetInviteState(ctx, want[4].ID, StateExpired, "", AuditEntry{Actor: "system", Action: "invite.expire"}); err != nil {
				t.Fatal(err)
			}
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1]
	}
	want = append(want[:4:4], want[5:]...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pages =\n %+v\nwant %+v", got, want)
	}
}

func TestQuotaCounts(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	now := t0.Add(48 * time.Hour)
	since := now.Add(-24 * time.Hour)
	add := func(inviter string, created time.Time) Invite {
		t.Helper()
		return mustAdd(t, s, testInvite(inviter, fmt.Sprintf("t-%s-%d", inviter, created.UnixNano()), created))
	}
	// alice: two before the window, three in it (one exactly at its
	// start), added out of order; one of hers is used.
	add("alice@x.org", since.Add(-time.Hour))
	used := add("alice@x.org", since.Add(-time.Minute))
	add("alice@x.org", since.Add(3*time.Hour))
	add("alice@x.org", since)
	add("alice@x.org", since.Add(time.Hour))
	// "alice@x.org.evil" must not count as alice.
	add("alice@x.org.evil", since.Add(time.Hour))
	// Admins, excluded from the global count.
	add("admin@durare.org", since.Add(2*time.Hour))
	add("admin@durare.org", since.Add(4*time.Hour))
	add("ops@durare.org", since.Add(-2*time.Hour))
	if _, err := s.SetInviteState(ctx, used.ID, StateUsed, "", AuditEntry{Actor: "system", Action: "invite.use"}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		inviter string
		exclude []string
		want    QuotaCounts
	}{
		{"alice@x.org", []string{"admin@durare.org", "ops@durare.org", "admin@durare.org"}, QuotaCounts{Created: 3, Pending: 4, GlobalCreated: 4}},
		{"alice@x.org", nil, QuotaCounts{Created: 3, Pending: 4, GlobalCreated: 6}},
		{"alice@x.org.evil", nil, QuotaCounts{Created: 1, Pending: 1, GlobalCreated: 6}},
		{"admin@durare.org", nil, QuotaCounts{Created: 2, Pending: 2, GlobalCreated: 6}},
		{"nobody@x.org", []string{"nobody@x.org"}, QuotaCounts{GlobalCreated: 6}},
		{"", nil, QuotaCounts{GlobalCreated: 6}},
		{"bad\x00jid", nil, QuotaCounts{GlobalCreated: 6}},
	}
	for _, tt := range tests {
		got, err := s.QuotaCounts(ctx, tt.inviter, since, tt.exclude)
		if err != nil || got != tt.want {
			t.Errorf("QuotaCounts(%q, exclude %q) = %+v, %v; want %+v", tt.inviter, tt.exclude, got, err, tt.want)
		}
	}
	if got, _ := s.QuotaCounts(ctx, "alice@x.org", now, nil); got.Created != 0 || got.GlobalCreated != 0 {
		t.Errorf("QuotaCounts since now = %+v, want no creations", got)
	}
	if got, _ := s.QuotaCounts(ctx, "alice@x.org", time.Time{}, nil); got.Created != 5 || got.GlobalCreated != 9 {
		t.Errorf("QuotaCounts since the zero time = %+v, want all 5 of alice's and all 9", got)
	}

	oldest := []struct {
		inviter string
		exclude []string
		n       int
		want    []time.Time
	}{
		{"alice@x.org", nil, 2, []time.Time{since, since.Add(time.Hour)}},
		{"alice@x.org", nil, 10, []time.Time{since, since.Add(time.Hour), since.Add(3 * time.Hour)}},
		{"", []string{"admin@durare.org"}, 3, []time.Time{since, since.Add(time.Hour), since.Add(time.Hour)}},
		{"", []string{"alice@x.org", "alice@x.org.evil"}, 2, []time.Time{since.Add(2 * time.Hour), since.Add(4 * time.Hour)}},
		{"nobody@x.org", nil, 2, []time.Time{}},
	}
	for _, tt := range oldest {
		got, err := s.OldestCreatedSince(ctx, tt.inviter, since, tt.exclude, tt.n)
		if err != nil || !slices.EqualFunc(got, tt.want, time.Time.Equal) || got == nil {
			t.Errorf("OldestCreatedSince(%q, %q, %d) = %v, %v; want %v", tt.inviter, tt.exclude, tt.n, got, err, tt.want)
		}
	}
	checkIndexes(t, s)
}

func TestNextPendingExpiry(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	now := t0
	add := func(token string, expires time.Time) Invite {
		t.Helper()
		inv := testInvite("a@x.org", token, t0.Add(-time.Hour))
		inv.Expires = expires
		return mustAdd(t, s, inv)
	}
	if got, err := s.NextPendingExpiry(ctx, "a@x.org", now); err != nil || !got.IsZero() {
		t.Errorf("NextPendingExpiry with none = %v, %v; want zero", got, err)
	}
	add("unknown", time.Time{})
	if got, _ := s.NextPendingExpiry(ctx, "a@x.org", now); !got.IsZero() {
		t.Errorf("NextPendingExpiry with only an unknown expiry = %v; want zero", got)
	}
	add("past", now.Add(-time.Minute))
	add("at-now", now)
	later := add("later", now.Add(2*time.Hour))
	soon := add("soon", now.Add(time.Hour))
	mustAdd(t, s, testInvite("a@x.org.evil", "other", now.Add(-6*24*time.Hour))) // expires in a day, but is not a@x.org's
	if got, _ := s.NextPendingExpiry(ctx, "a@x.org", now); !got.Equal(soon.Expires) {
		t.Errorf("NextPendingExpiry = %v, want %v", got, soon.Expires)
	}
	if _, err := s.SetInviteState(ctx, soon.ID, StateCancelled, "", AuditEntry{Actor: "a@x.org", Action: "invite.cancel"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.NextPendingExpiry(ctx, "a@x.org", now); !got.Equal(later.Expires) {
		t.Errorf("NextPendingExpiry after cancelling the soonest = %v, want %v", got, later.Expires)
	}
	if got, _ := s.NextPendingExpiry(ctx, "", now); !got.IsZero() {
		t.Errorf("NextPendingExpiry of nobody = %v", got)
	}
	checkIndexes(t, s)
}

// TestMarkUnrevocable: a cancelled invite the server would not revoke is
// marked so, with its audit entry, and stays in the unrevoked index (a
// server that later deletes tokens can still revoke it); revoking it later
// clears the mark. Only a cancelled, unrevoked invite can be marked.
func TestMarkUnrevocable(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	now := t0.Add(time.Hour)
	inv := mustAdd(t, s, testInvite("a@x.org", "t-bound", t0))
	entry := AuditEntry{Actor: "system", Action: "invite.token-unrevocable"}
	if _, err := s.MarkUnrevocable(ctx, inv.ID, entry); !errors.Is(err, ErrInvalid) {
		t.Errorf("MarkUnrevocable of a pending invite: %v, want ErrInvalid", err)
	}
	if _, err := s.SetInviteState(ctx, inv.ID, StateCancelled, "", AuditEntry{Actor: "a@x.org", Action: "invite.cancel"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.MarkUnrevocable(ctx, inv.ID, entry)
	if err != nil || !got.Unrevocable || got.Revoked {
		t.Fatalf("MarkUnrevocable = %+v, %v; want unrevocable, not revoked", got, err)
	}
	if stored, err := s.Invite(ctx, inv.ID); err != nil || !stored.Unrevocable {
		t.Errorf("stored after MarkUnrevocable: %+v, %v", stored, err)
	}
	if left, _ := s.UnrevokedCancelled(ctx, now); !reflect.DeepEqual(tokens(left), []string{"t-bound"}) {
		t.Errorf("unrevoked after MarkUnrevocable: %v, want [t-bound]", tokens(left))
	}
	if audit, err := s.Audit(ctx, inv.ID, 10); err != nil || !slices.ContainsFunc(audit, func(e AuditEntry) bool { return e.Action == entry.Action }) {
		t.Errorf("audit of %s: %+v, %v; want %s", inv.ID, audit, err, entry.Action)
	}
	checkIndexes(t, s)
	if err := s.MarkRevoked(ctx, inv.ID, AuditEntry{Actor: "system", Action: "invite.token-revoked"}); err != nil {
		t.Fatal(err)
	}
	if stored, _ := s.Invite(ctx, inv.ID); !stored.Revoked || stored.Unrevocable {
		t.Errorf("after MarkRevoked: %+v, want revoked and no longer unrevocable", stored)
	}
	if _, err := s.MarkUnrevocable(ctx, inv.ID, entry); !errors.Is(err, ErrInvalid) {
		t.Errorf("MarkUnrevocable of a revoked invite: %v, want ErrInvalid", err)
	}
	checkIndexes(t, s)
}
