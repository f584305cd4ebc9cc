package store

import (
	"errors"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestMailRequestConfirmAndPurge: one open request per address, wrong
// codes counted until they run out, the right one confirms, and the
// addresses no longer needed are dropped.
func TestMailRequestConfirmAndPurge(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	add := func(key, addr string) (Request, error) {
		return s.AddMailRequest(ctx, Request{SecretHash: "h", Name: "n", Created: now, Expires: now.Add(24 * time.Hour)},
			MailAddress{Key: key, Address: addr, Domain: "example.net", CodeHash: "right", CodeExpires: now.Add(24 * time.Hour)},
			10, func(u MailUsage) error {
				if u.OpenRequest || u.Account != "" {
					return errors.New("taken")
				}
				return nil
			}, AuditEntry{Time: now, Actor: "web", Action: "request.receive"})
	}
	r, err := add("k1", "frank@example.net")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := add("k1", "frank+2@example.net"); err == nil || err.Error() != "add request: taken" {
		t.Errorf("a second open request for one address: %v", err)
	}
	matches := func(h string) bool { return h == "right" }
	wrong := func(string) bool { return false }
	entry := AuditEntry{Time: now.Add(time.Minute), Actor: "web", Action: "request.confirm"}
	if _, left, err := s.ConfirmMail(ctx, r.ID, wrong, 2, now.Add(48*time.Hour), entry); !errors.Is(err, ErrWrongCode) || left != 1 {
		t.Errorf("first wrong code: %d left, %v", left, err)
	}
	got, _, err := s.ConfirmMail(ctx, r.ID, matches, 2, now.Add(48*time.Hour), entry)
	if err != nil || got.Unconfirmed || !got.Expires.Equal(now.Add(48*time.Hour)) {
		t.Fatalf("right code: %+v, %v", got, err)
	}
	if _, _, err := s.ConfirmMail(ctx, r.ID, matches, 2, now, entry); !errors.Is(err, ErrConfirmed) {
		t.Errorf("confirming twice: %v", err)
	}

	// A second request runs out of tries.
	r2, err := add("k2", "gina@example.net")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		s.ConfirmMail(ctx, r2.ID, wrong, 2, now, entry)
	}
	if _, _, err := s.ConfirmMail(ctx, r2.ID, matches, 2, now, entry); !errors.Is(err, ErrNoTriesLeft) {
		t.Errorf("the right code after the tries ran out: %v", err)
	}

	// Declined: its address goes at the next purge; the confirmed one
	// stays while its request is open.
	if _, err := s.DenyRequest(ctx, r2.ID, "admin@example.org", "", AuditEntry{Time: now, Actor: "admin@example.org", Action: "request.deny"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.PurgeMailAddresses(ctx, now.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("purge: %d, %v; want 1", n, err)
	}
	if _, err := s.MailAddress(ctx, "k2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("the declined request's address: %v", err)
	}
	if a, err := s.MailAddress(ctx, "k1"); err != nil || a.Address != "frank@example.net" {
		t.Errorf("the open request's address: %+v, %v", a, err)
	}
	sent := 0
	s.view(ctx, func(tx *bbolt.Tx) error { sent = len(sendsIn(tx, "d/example.net", now)); return nil })
	if sent != 2 {
		t.Errorf("%d mails counted for the domain, want 2", sent)
	}

	// Approved, kept for recovery, its invite used by a known account:
	// the address stays; without consent, only the hashed key stays.
	for _, c := range []struct {
		key      string
		recovery bool
		want     string
	}{{"k3", true, "hans@example.net"}, {"k4", false, ""}} {
		r, err := s.AddMailRequest(ctx, Request{SecretHash: "h", Name: "n", Created: now, Expires: now.Add(24 * time.Hour)},
			MailAddress{Key: c.key, Address: "hans@example.net", Domain: "example.net", CodeHash: "right", CodeExpires: now.Add(24 * time.Hour),
				Recovery: c.recovery}, 10, func(MailUsage) error { return nil }, AuditEntry{Time: now, Actor: "web", Action: "request.receive"})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.ConfirmMail(ctx, r.ID, matches, 2, now.Add(48*time.Hour), entry); err != nil {
			t.Fatal(err)
		}
		inv, _, err := s.ApproveRequest(ctx, r.ID, Invite{Token: "t-" + c.key, Domain: "example.org", Inviter: "auto-approval",
			Created: now, Expires: now.Add(time.Hour), State: StatePending}, AuditEntry{Time: now, Actor: "auto-approval", Action: "invite.create"},
			AuditEntry{Time: now, Actor: "auto-approval", Action: "request.auto-approve"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetInviteState(ctx, inv.ID, StateUsed, "hans@example.org", AuditEntry{Time: now, Actor: "hans@example.org", Action: "invite.use"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PurgeMailAddresses(ctx, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		a, err := s.MailAddress(ctx, c.key)
		if err != nil || a.Address != c.want || a.Account != "hans@example.org" {
			t.Errorf("recovery %v: %+v, %v; want the address %q kept for hans@example.org", c.recovery, a, err, c.want)
		}
	}
}
