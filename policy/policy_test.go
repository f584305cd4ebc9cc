package policy

import "testing"

func TestRoleOf(t *testing.T) {
	admins := map[string]bool{"admin@durare.test": true}
	tests := []struct {
		who               string
		granted, requests bool
		want              Role
	}{
		{"admin@durare.test", false, false, Admin},
		{"admin@durare.test", true, false, Admin},
		{"admin@durare.test", true, true, Admin},
		{"carol@elsewhere.test", true, false, Inviter},
		{"carol@elsewhere.test", true, true, Approver},
		// A requests flag is part of a grant; without one it means nothing.
		{"mallory@elsewhere.test", false, true, Stranger},
		{"mallory@elsewhere.test", false, false, Stranger},
		{"", false, false, Stranger},
	}
	for _, tc := range tests {
		if got := RoleOf(tc.who, admins, tc.granted, tc.requests); got != tc.want {
			t.Errorf("RoleOf(%q, granted=%v, requests=%v) = %v, want %v", tc.who, tc.granted, tc.requests, got, tc.want)
		}
	}
}

func TestAllows(t *testing.T) {
	tests := []struct {
		role Role
		perm Permission
		want bool
	}{
		{Stranger, ReadHelp, true},
		{Stranger, CreateInvite, false},
		{Stranger, ListInvites, false},
		{Stranger, CancelInvite, false},
		{Stranger, ManageGrants, false},
		{Inviter, CreateInvite, true},
		{Inviter, ListInvites, true},
		{Inviter, CancelInvite, true},
		{Inviter, ManageGrants, false},
		{Inviter, ListInviters, false},
		{Admin, CreateInvite, true},
		{Admin, ManageGrants, true},
		{Admin, ListInviters, true},
		{Inviter, ListAnyInvites, false},
		{Admin, ListAnyInvites, true},
		{Admin, Permission(999), false},
		// Answering account requests: admins, and inviters whose grant
		// says so (Approver), who keep every right of an inviter.
		{Inviter, AnswerRequests, false},
		{Approver, AnswerRequests, true},
		{Admin, AnswerRequests, true},
		{Approver, CreateInvite, true},
		{Approver, CancelInvite, true},
		{Approver, ManageGrants, false},
		{Approver, ReadAudit, false},
	}
	for _, tc := range tests {
		if got := Allows(tc.role, tc.perm); got != tc.want {
			t.Errorf("Allows(%v, %d) = %v, want %v", tc.role, tc.perm, got, tc.want)
		}
	}
}

func TestCanCancel(t *testing.T) {
	tests := []struct {
		role           Role
		actor, inviter string
		want           bool
	}{
		{Inviter, "carol@x", "carol@x", true},
		{Inviter, "carol@x", "dave@y", false},
		{Admin, "admin@z", "dave@y", true},
		{Stranger, "carol@x", "carol@x", false},
	}
	for _, tc := range tests {
		if got := CanCancel(tc.role, tc.actor, tc.inviter); got != tc.want {
			t.Errorf("CanCancel(%v, %q, %q) = %v, want %v", tc.role, tc.actor, tc.inviter, got, tc.want)
		}
	}
}

func TestEventCap(t *testing.T) {
	tests := []struct {
		role                 Role
		grantEvents, maxUses int
		want                 int
	}{
		{Admin, 0, 50, 50},
		{Admin, 5, 50, 50},
		{Inviter, 0, 50, 0},
		{Inviter, 20, 50, 20},
		{Inviter, 80, 50, 50},
		{Stranger, 20, 50, 0},
	}
	for _, tc := range tests {
		if got := EventCap(tc.role, tc.grantEvents, tc.maxUses); got != tc.want {
			t.Errorf("EventCap(%v, %d, %d) = %d, want %d", tc.role, tc.grantEvents, tc.maxUses, got, tc.want)
		}
	}
}

func TestCanCloseEvent(t *testing.T) {
	tests := []struct {
		role           Role
		actor, creator string
		want           bool
	}{
		{Inviter, "carol@x", "carol@x", true},
		{Inviter, "carol@x", "dave@y", false},
		{Admin, "admin@z", "dave@y", true},
		{Stranger, "carol@x", "carol@x", false},
	}
	for _, tc := range tests {
		if got := CanCloseEvent(tc.role, tc.actor, tc.creator); got != tc.want {
			t.Errorf("CanCloseEvent(%v, %q, %q) = %v, want %v", tc.role, tc.actor, tc.creator, got, tc.want)
		}
	}
}

func TestEventAllowance(t *testing.T) {
	lim := Limits{GlobalPerDay: 100, EventMaxUses: 50}
	tests := []struct {
		role        Role
		grantEvents int
		lim         Limits
		want        int
		limited     bool
	}{
		{Admin, 0, lim, 0, false},
		{Inviter, 0, lim, 0, true},
		{Inviter, 2, lim, 2, true},
		{Approver, 20, lim, 20, true},
		// Never more than half the service's daily limit.
		{Inviter, 80, lim, 50, true},
		{Inviter, 10, Limits{GlobalPerDay: 7}, 3, true},
		{Inviter, 10, Limits{GlobalPerDay: 1}, 0, true},
		{Stranger, 20, lim, 0, true},
	}
	for _, tc := range tests {
		got, limited := EventAllowance(tc.role, tc.grantEvents, tc.lim)
		if got != tc.want || limited != tc.limited {
			t.Errorf("EventAllowance(%v, %d, %+v) = %d, %v; want %d, %v", tc.role, tc.grantEvents, tc.lim, got, limited, tc.want, tc.limited)
		}
	}
}

func TestEventCapNow(t *testing.T) {
	lim := Limits{GlobalPerDay: 100, EventMaxUses: 50}
	tests := []struct {
		name        string
		role        Role
		grantEvents int
		lim         Limits
		u           EventUsage
		want        int
	}{
		{"admin, however much their links hand out", Admin, 0, lim, EventUsage{HandedOut: 500, Held: 500}, 50},
		{"inviter, nothing used", Inviter, 2, lim, EventUsage{}, 2},
		{"inviter, one held by an open link", Inviter, 2, lim, EventUsage{Held: 1}, 1},
		{"inviter, one handed out and one held", Inviter, 2, lim, EventUsage{HandedOut: 1, Held: 1}, 0},
		{"inviter, more handed out than allowed (lowered since)", Inviter, 2, lim, EventUsage{HandedOut: 5}, 0},
		{"inviter, the configured most per link", Inviter, 80, lim, EventUsage{HandedOut: 10}, 40},
		{"inviter, per link below what is left", Inviter, 40, Limits{GlobalPerDay: 100, EventMaxUses: 10}, EventUsage{HandedOut: 5}, 10},
		{"inviter, half the daily limit", Inviter, 10, Limits{GlobalPerDay: 6, EventMaxUses: 50}, EventUsage{HandedOut: 1}, 2},
		{"inviter without an allowance", Inviter, 0, lim, EventUsage{}, 0},
		{"stranger", Stranger, 10, lim, EventUsage{}, 0},
	}
	for _, tc := range tests {
		if got := EventCapNow(tc.role, tc.grantEvents, tc.lim, tc.u); got != tc.want {
			t.Errorf("%s: EventCapNow = %d, want %d", tc.name, got, tc.want)
		}
	}
}
