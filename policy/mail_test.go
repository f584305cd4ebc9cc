package policy

import "testing"

func TestCheckSignupMail(t *testing.T) {
	l := MailLimits{PerAddressPerDay: 3, PerDomainPerDay: 10}
	tests := []struct {
		name string
		u    MailUsage
		want MailLimit
	}{
		{"fresh address", MailUsage{}, ""},
		{"has an account", MailUsage{HasAccount: true}, MailHasAccount},
		{"open request", MailUsage{OpenRequest: true}, MailOpenRequest},
		{"address limit", MailUsage{AddressSent: 3}, MailPerAddress},
		{"below address limit", MailUsage{AddressSent: 2, DomainSent: 9}, ""},
		{"domain limit", MailUsage{DomainSent: 10}, MailPerDomain},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := CheckSignupMail(l, tt.u)
			if got != tt.want || ok != (tt.want == "") {
				t.Errorf("CheckSignupMail(%+v) = %q, %v; want %q", tt.u, got, ok, tt.want)
			}
		})
	}
}
