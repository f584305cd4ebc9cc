package invites

import (
	"context"
	"time"
)

// RecoveryMailer sends a password reset link to the address an account
// confirmed, in a language. The mail room implements it.
type RecoveryMailer interface {
	SendReset(ctx context.Context, to, lang string, r ResetMail) error
}

// ResetMail is what a password reset message says.
type ResetMail struct {
	// Account is the account the link resets; Link is where to go.
	Account, Link string
	// Expires is when the link stops working.
	Expires time.Time
}
