package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
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

func TestScans(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	base := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	old := mustAdd(t, s, testInvite("a@x.org", "t-old", base.Add(-48*time.Hour)))
	recent := mustAdd(t, s, testInvite("a@x.org", "t-new", base.Add(-time.Hour)))
	other := mustAdd(t, s, testInvite("b@y.org", "t-other", base))

	since, err := s.InvitesCreatedSince(ctx, base.Add(-24*time.Hour))
	if err != nil || len(since) != 2 {
		t.Fatalf("InvitesCreatedSince = %d invites, %v; want 2", len(since), err)
	}
	for _, inv := range since {
		if inv.ID == old.ID {
			t.Error("old invite counted as recent")
		}
	}

	if _, err := s.SetInviteState(ctx, recent.ID, StateUsed, "new@x.org", AuditEntry{Actor: "system", Action: "invite.use"}); err != nil {
		t.Fatal(err)
	}
	used, err := s.InvitesUsedBy(ctx, "new@x.org")
	if err != nil || len(used) != 1 || used[0].ID != recent.ID {
		t.Errorf("InvitesUsedBy = %+v, %v", used, err)
	}

	if _, err := s.SetInviteState(ctx, other.ID, StateCancelled, "", AuditEntry{Actor: "b@y.org", Action: "invite.cancel"}); err != nil {
		t.Fatal(err)
	}
	unrevoked, err := s.UnrevokedCancelled(ctx)
	if err != nil || len(unrevoked) != 1 || unrevoked[0].ID != other.ID {
		t.Fatalf("UnrevokedCancelled = %+v, %v", unrevoked, err)
	}
	if err := s.MarkRevoked(ctx, other.ID, AuditEntry{Actor: "system", Action: "invite.revoke"}); err != nil {
		t.Fatal(err)
	}
	if unrevoked, _ := s.UnrevokedCancelled(ctx); len(unrevoked) != 0 {
		t.Errorf("still unrevoked after MarkRevoked: %+v", unrevoked)
	}
	if err := s.MarkRevoked(ctx, "aaaaaaaaaaaaaaaa", AuditEntry{Actor: "system", Action: "invite.revoke"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("MarkRevoked unknown: %v", err)
	}
}
