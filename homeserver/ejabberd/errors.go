package ejabberd

import (
	"errors"
	"fmt"
	"strings"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
)

// APIError is an API command's failure as mod_adhoc_api reports it: not
// an IQ error but a completed form whose field "error" holds the message,
// labelled "Error CODE".
type APIError struct {
	Node    string // the command's ad-hoc node
	Code    string // "403", "400", ... from the label; "" if none
	Message string // what ejabberd said
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s: ejabberd error %s: %s", e.Node, e.Code, e.Message)
}

// notFound reports whether the command failed because what it names does
// not exist (delete_invite_by_token of an unknown token).
func (e *APIError) notFound() bool {
	m := strings.ToLower(e.Message)
	return strings.Contains(m, "not_found") || strings.Contains(m, "not found")
}

// apiError reads the error field of a completed form. A 403 is ejabberd
// refusing the minter the command (its configure rule on the host, or
// api_permissions): a RefusedError with what to add to ejabberd.yml.
func (e *Issuer) apiError(node string, f *dataform.Form) error {
	ae := &APIError{Node: node, Message: f.Value("error")}
	for _, fld := range f.Fields {
		if fld.Var == "error" {
			ae.Code = strings.TrimSpace(strings.TrimPrefix(fld.Label, "Error"))
		}
	}
	if ae.Code == "403" || ae.Code == "401" {
		return &invites.RefusedError{Node: node, As: e.From, Condition: "forbidden", Err: ae, Fix: Fix(e.From, node)}
	}
	return ae
}

// classify adds to the errors adhoc returns what is particular to
// ejabberd: the fix for a refusal, and the invite limit.
func (e *Issuer) classify(err error) error {
	var re *invites.RefusedError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re):
		re.Fix = Fix(e.From, re.Node)
		return err
	case strings.Contains(err.Error(), "Maximum number of invites reached"):
		return fmt.Errorf("%w: %w", ErrTooManyInvites, err)
	}
	return err
}
