package bot

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// The email command: an account of the domain keeps a mail address for
// password recovery (the recovery page mails reset links there), shows it,
// or has it forgotten. The address is confirmed by a code mailed to it,
// sent back here.

// msgRecoveryOff answers the email command when recovery is off.
const msgRecoveryOff = "Password recovery by mail is switched off here (http.recovery in the configuration)."

// recoveryOn says whether the email command is offered.
func recoveryOn(b *Bot) bool { return b.svc.RecoveryEnabled() && b.svc.MailsCodes() }

func runEmail(ctx context.Context, b *Bot, req request) (reply, error) {
	what := strings.TrimSpace(req.args["what"])
	verb, rest, _ := strings.Cut(what, " ")
	switch strings.ToLower(verb) {
	case "":
		addr, err := b.svc.AccountMail(ctx, req.actor)
		if err != nil {
			return mailRefusal(b, err)
		}
		if addr == "" {
			return reply{text: "Your account keeps no mail address for password resets. To keep one: email you@example.org"}, nil
		}
		return reply{text: fmt.Sprintf("Your account keeps %s for password resets. To forget it: email remove", addr)}, nil
	case "remove":
		n, err := b.svc.RemoveAccountMail(ctx, req.actor)
		if err != nil {
			return mailRefusal(b, err)
		}
		if n == 0 {
			return reply{text: "Your account kept no mail address; nothing to remove."}, nil
		}
		return reply{text: "Done: no mail address of your account is kept any more."}, nil
	case "confirm":
		err := b.svc.ConfirmAccountMail(ctx, req.actor, rest)
		var wrong *invites.ConfirmError
		switch {
		case err == nil:
			return reply{text: "Confirmed: a forgotten password can now be reset by mail on the recovery page."}, nil
		case errors.As(err, &wrong):
			return refusal(stanza.NotAuthorized, fmt.Sprintf("That code is not right. Tries left: %d.", wrong.Left)), nil
		case errors.Is(err, invites.ErrWrongCode):
			return refusal(stanza.BadRequest, "The code is the six digits in the mail: email confirm 123456"), nil
		case errors.Is(err, invites.ErrCodeUsedUp):
			return refusal(stanza.NotAuthorized, "That code no longer works (typed wrong too often, or too old). Send email you@example.org for a new one."), nil
		case errors.Is(err, invites.ErrNoPendingCode):
			return refusal(stanza.ItemNotFound, "No code is waiting; send email you@example.org first."), nil
		}
		return mailRefusal(b, err)
	}
	err := b.svc.AddAccountMail(ctx, req.actor, what, "en")
	if err != nil {
		return mailRefusal(b, err)
	}
	return reply{text: "A code is on its way to that address. Send it back here within the hour: email confirm 123456"}, nil
}

// mailRefusal answers the errors every email subcommand shares.
func mailRefusal(b *Bot, err error) (reply, error) {
	var refused *invites.MailRefusedError
	var paused *invites.PausedError
	switch {
	case errors.Is(err, invites.ErrNotLocalAccount):
		return refusal(stanza.NotAllowed, "Only accounts on "+b.svc.Domain()+" can keep a mail address here."), nil
	case errors.Is(err, invites.ErrRequestInvalid):
		return refusal(stanza.BadRequest, "That is not a mail address like name@example.org."), nil
	case errors.As(err, &refused):
		switch refused.Limit {
		case invites.MailBlockedDomain:
			return refusal(stanza.NotAcceptable, "Addresses of disposable mail services are not accepted."), nil
		case policy.MailPerAddress, policy.MailPerDomain:
			return refusal(stanza.ResourceConstraint, "That address, or its mail provider, got enough mail from me today. Try again tomorrow."), nil
		}
		return refusal(stanza.NotAcceptable, "That address cannot be used here."), nil
	case errors.As(err, &paused):
		return refusal(stanza.ServiceUnavailable, "Everything is paused for now; try again later."), nil
	case errors.Is(err, invites.ErrMailNotSent):
		return refusal(stanza.RemoteServerTimeout, "I could not send the mail just now. Try again later."), nil
	}
	return reply{}, err
}
