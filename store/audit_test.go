package store

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestAudit(t *testing.T) {
	s, _ := openTest(t)
	ctx := t.Context()
	s.now = func() time.Time { return t0.Add(24 * time.Hour) }

	// seq: actor, action, subject
	log := []AuditEntry{
		{Actor: "admin@durare.org", Action: "grant", Subject: "alice@example.org"},         // 1
		{Actor: "alice@example.org", Action: "invite.create", Subject: "aaaaaaaaaaaaaaaa"}, // 2
		{Actor: "admin@durare.org", Action: "grant", Subject: "bob@other.net"},             // 3
		{Actor: "bob@other.net", Action: "invite.create", Subject: "bbbbbbbbbbbbbbbb"},     // 4
		{Actor: "system", Action: "invite.expire", Subject: "aaaaaaaaaaaaaaaa"},            // 5
		{Actor: "admin@durare.org", Action: "revoke", Subject: "alice@example.org"},        // 6
	}
	for i, e := range log {
		if i%2 == 0 {
			e.Time = t0.Add(time.Duration(i) * time.Minute)
		} // odd entries take the store's clock
		e.Detail = "seq-check"
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit %d: %v", i, err)
		}
	}

	tests := []struct {
		name  string
		about string
		n     int
		want  []uint64
	}{
		{"all", "", 100, []uint64{6, 5, 4, 3, 2, 1}},
		{"limit", "", 2, []uint64{6, 5}},
		{"limit one", "", 1, []uint64{6}},
		{"actor or subject", "alice@example.org", 100, []uint64{6, 2, 1}},
		{"filter with limit", "alice@example.org", 2, []uint64{6, 2}},
		{"actor only", "admin@durare.org", 100, []uint64{6, 3, 1}},
		{"invite id", "aaaaaaaaaaaaaaaa", 100, []uint64{5, 2}},
		{"subject and actor", "bob@other.net", 100, []uint64{4, 3}},
		{"no match", "mallory@evil.example", 100, []uint64{}},
		{"no partial match", "alice", 100, []uint64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Audit(ctx, tt.about, tt.n)
			if err != nil {
				t.Fatalf("Audit: %v", err)
			}
			if got == nil {
				t.Fatal("got nil slice, want empty non-nil")
			}
			seqs := []uint64{}
			for _, e := range got {
				seqs = append(seqs, e.Seq)
			}
			if !reflect.DeepEqual(seqs, tt.want) {
				t.Errorf("seqs = %v, want %v", seqs, tt.want)
			}
		})
	}

	all, err := s.Audit(ctx, "", 100)
	if err != nil {
		t.Fatalf("Audit: %v", err)
	}
	for _, e := range all {
		want := log[e.Seq-1]
		want.Seq = e.Seq
		want.Detail = "seq-check"
		if i := int(e.Seq - 1); i%2 == 0 {
			want.Time = t0.Add(time.Duration(i) * time.Minute)
		} else {
			want.Time = t0.Add(24 * time.Hour)
		}
		if !reflect.DeepEqual(e, want) {
			t.Errorf("entry %d =\n %+v\nwant %+v", e.Seq, e, want)
		}
	}
}

func TestAuditInvalid(t *testing.T) {
	s, _ := openTest(t)
	for _, n := range []int{0, -1} {
		got, err := s.Audit(t.Context(), "", n)
		if !errors.Is(err, ErrInvalid) || got != nil {
			t.Errorf("Audit(n=%d) = %v, %v; want nil, ErrInvalid", n, got, err)
		}
	}
	for _, e := range []AuditEntry{{Action: "x"}, {Actor: "system"}, {}} {
		if err := s.AppendAudit(t.Context(), e); !errors.Is(err, ErrInvalid) {
			t.Errorf("AppendAudit(%+v): err = %v, want ErrInvalid", e, err)
		}
	}
	if n := auditLen(t, s); n != 0 {
		t.Errorf("refused entries were written: %d", n)
	}
}
