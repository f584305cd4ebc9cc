package policy

// MailLimit names the rule that refused a mail address on the request
// page.
type MailLimit string

// Mail limits.
const (
	// MailHasAccount: the address belongs to an account already.
	MailHasAccount MailLimit = "address_account"
	// MailOpenRequest: an open request (or the invite it got) holds the
	// address.
	MailOpenRequest MailLimit = "address_open"
	// MailPerAddress: the address got as many mails as a day allows.
	MailPerAddress MailLimit = "per_address"
	// MailPerDomain: the mail domain got as many mails as a day allows.
	MailPerDomain MailLimit = "per_domain"
)

// MailLimits bound the mails the bot sends, per address and per mail
// domain, over a rolling day.
type MailLimits struct {
	PerAddressPerDay, PerDomainPerDay int
}

// MailUsage is what counts against an address: whether an account or an
// open request holds it, and the mails sent to it and its domain in the
// last day.
type MailUsage struct {
	HasAccount, OpenRequest bool
	AddressSent, DomainSent int
}

// CheckSignupMail decides whether a new request may give this address:
// one account and one open request per address, and the daily mail limits.
func CheckSignupMail(l MailLimits, u MailUsage) (MailLimit, bool) {
	switch {
	case u.HasAccount:
		return MailHasAccount, false
	case u.OpenRequest:
		return MailOpenRequest, false
	}
	return CheckMailSend(l, u)
}

// CheckMailSend decides whether one more mail may go to an address: the
// daily limits per address and per mail domain.
func CheckMailSend(l MailLimits, u MailUsage) (MailLimit, bool) {
	switch {
	case u.AddressSent >= l.PerAddressPerDay:
		return MailPerAddress, false
	case u.DomainSent >= l.PerDomainPerDay:
		return MailPerDomain, false
	}
	return "", true
}
