package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestGrants(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	admin := "admin@durare.org"
	grant := func(jid, note string, at time.Time) Grant {
		g := Grant{JID: jid, GrantedBy: admin, GrantedAt: at, Note: note}
		if err := s.PutGrant(ctx, g, AuditEntry{Time: at, Actor: admin, Action: "grant"}); err != nil {
			t.Fatalf("PutGrant(%s): %v", jid, err)
		}
		return g
	}

	if gs, err := s.Grants(ctx); err != nil || gs == nil || len(gs) != 0 {
		t.Fatalf("Grants on empty store = %#v, %v; want empty non-nil", gs, err)
	}
	carol := grant("carol@example.org", "", t0)
	alice := grant("alice@example.org", "first", t0.Add(time.Minute))
	bob := grant("bob@other.net", "", t0.Add(2*time.Minute))

	got, err := s.Grant(ctx, "alice@example.org")
	if err != nil || !reflect.DeepEqual(got, alice) {
		t.Errorf("Grant(alice) = %+v, %v; want %+v", got, err, alice)
	}

	// Re-granting replaces, it does not fail or duplicate.
	alice = grant("alice@example.org", "updated", t0.Add(3*time.Minute))
	got, err = s.Grant(ctx, "alice@example.org")
	if err != nil || !reflect.DeepEqual(got, alice) {
		t.Errorf("Grant(alice) after replace = %+v, %v; want %+v", got, err, alice)
	}
	gs, err := s.Grants(ctx)
	if err != nil {
		t.Fatalf("Grants: %v", err)
	}
	if want := []Grant{alice, bob, carol}; !reflect.DeepEqual(gs, want) {
		t.Errorf("Grants = %+v, want %+v (sorted by JID)", gs, want)
	}

	revoke := AuditEntry{Time: t0.Add(time.Hour), Actor: admin, Action: "revoke"}
	if err := s.DeleteGrant(ctx, "bob@other.net", revoke); err != nil {
		t.Fatalf("DeleteGrant(bob): %v", err)
	}
	if _, err := s.Grant(ctx, "bob@other.net"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Grant(bob) after delete: err = %v, want ErrNotFound", err)
	}
	before := auditLen(t, s)
	for _, jid := range []string{"bob@other.net", "nobody@example.org", ""} {
		if err := s.DeleteGrant(ctx, jid, revoke); !errors.Is(err, ErrNotFound) {
			t.Errorf("DeleteGrant(%q): err = %v, want ErrNotFound", jid, err)
		}
	}
	if after := auditLen(t, s); after != before {
		t.Errorf("failed deletes wrote %d audit entries", after-before)
	}
	if gs, _ := s.Grants(ctx); !reflect.DeepEqual(gs, []Grant{alice, carol}) {
		t.Errorf("Grants after delete = %+v", gs)
	}

	// Subjects default to the JID so "audit alice" finds her grants.
	audit, err := s.Audit(ctx, "bob@other.net", 10)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	var actions []string
	for _, e := range audit {
		actions = append(actions, e.Action)
	}
	if want := []string{"revoke", "grant"}; !reflect.DeepEqual(actions, want) {
		t.Errorf("audit about bob = %q, want %q", actions, want)
	}
}

func TestGrantNotFound(t *testing.T) {
	s, _ := openTest(t)
	for _, jid := range []string{"", "nobody@example.org"} {
		g, err := s.Grant(t.Context(), jid)
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("Grant(%q): err = %v, want ErrNotFound", jid, err)
		}
		if g != (Grant{}) {
			t.Errorf("Grant(%q) returned %+v with the error", jid, g)
		}
	}
}

func TestGrantInvalid(t *testing.T) {
	s, _ := openTest(t)
	ok := AuditEntry{Actor: "admin@durare.org", Action: "grant"}
	tests := []struct {
		name string
		call func() error
	}{
		{"put empty jid", func() error { return s.PutGrant(t.Context(), Grant{}, ok) }},
		{"put without actor", func() error {
			return s.PutGrant(t.Context(), Grant{JID: "a@b"}, AuditEntry{Action: "grant"})
		}},
		{"delete without action", func() error {
			return s.DeleteGrant(t.Context(), "a@b", AuditEntry{Actor: "admin@durare.org"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
		})
	}
	if gs, _ := s.Grants(t.Context()); len(gs) != 0 {
		t.Errorf("refused grants were stored: %+v", gs)
	}
}
