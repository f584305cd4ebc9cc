package bot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/internal/plaintext"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
)

// Ad-hoc session tunables.
const (
	// sessionTTL is how long a multi-stage command waits for the next step.
	sessionTTL = 10 * time.Minute
	// expiredGrace keeps expired sessions long enough to answer
	// session-expired rather than bad-sessionid.
	expiredGrace = time.Hour
	// maxSessionsPerJID bounds live sessions per bare JID, so one account
	// (or a server inventing resources for it) cannot fill the table.
	maxSessionsPerJID = 5
	// maxSessions bounds the live sessions as a whole; expired ones kept
	// for expiredGrace are dropped first when the table is this full.
	maxSessions = 10000
)

// XEP-0050 actions and statuses.
const (
	actionExecute  = "execute"
	actionNext     = "next"
	actionPrev     = "prev"
	actionComplete = "complete"
	actionCancel   = "cancel"

	statusExecuting = "executing"
	statusCompleted = "completed"
	statusCanceled  = "canceled"
)

// commandIn is a <command/> a client sends.
type commandIn struct {
	XMLName   xml.Name        `xml:"http://jabber.org/protocol/commands command"`
	Node      string          `xml:"node,attr"`
	Action    string          `xml:"action,attr"`
	SessionID string          `xml:"sessionid,attr"`
	Forms     []dataform.Form `xml:"jabber:x:data x"`
}

// commandOut is the <command/> the bot answers with.
type commandOut struct {
	XMLName   xml.Name       `xml:"http://jabber.org/protocol/commands command"`
	Node      string         `xml:"node,attr"`
	SessionID string         `xml:"sessionid,attr"`
	Status    string         `xml:"status,attr"`
	Actions   *actions       `xml:"actions,omitempty"`
	Notes     []commandNote  `xml:"note"`
	Form      *dataform.Form `xml:"jabber:x:data x,omitempty"`
}

type actions struct {
	Execute  string    `xml:"execute,attr,omitempty"`
	Prev     *struct{} `xml:"prev,omitempty"`
	Next     *struct{} `xml:"next,omitempty"`
	Complete *struct{} `xml:"complete,omitempty"`
}

type commandNote struct {
	Type string `xml:"type,attr"`
	Text string `xml:",chardata"`
}

// adhocSession is one multi-stage command in progress.
type adhocSession struct {
	id      string
	owner   string // full JID: XEP-0050 binds a session to the requester
	node    string
	stage   int
	args    map[string]string
	expires time.Time
}

// Stages of a command with parameters.
const (
	stageForm    = 0 // the parameters form is shown
	stageConfirm = 1 // the confirmation question is shown
)

// sessionTable holds the open ad-hoc sessions in memory. They are not worth
// persisting: a restart just asks the person to start the command again.
type sessionTable struct {
	mu   sync.Mutex
	byID map[string]*adhocSession
	now  func() time.Time
}

func newSessionTable(now func() time.Time) *sessionTable {
	return &sessionTable{byID: make(map[string]*adhocSession), now: now}
}

var (
	errTooManySessions = errors.New("too many open command sessions")
	errBadSession      = errors.New("unknown session")
	errSessionExpired  = errors.New("session expired")
)

// open starts a session for owner, sweeping expired ones first. Only live
// sessions count against the caps: expired ones are kept for expiredGrace
// so that a late request learns session-expired rather than bad-sessionid,
// but they never block anyone. The session is not in the table until put.
func (t *sessionTable) open(owner, node string) (*adhocSession, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	bare := bareOf(owner)
	mine, live := 0, 0
	for id, s := range t.byID {
		expired := !now.Before(s.expires)
		if now.After(s.expires.Add(expiredGrace)) || (expired && len(t.byID) >= maxSessions) {
			delete(t.byID, id)
			continue
		}
		if expired {
			continue
		}
		live++
		if bareOf(s.owner) == bare {
			mine++
		}
	}
	if mine >= maxSessionsPerJID || live >= maxSessions {
		return nil, errTooManySessions
	}
	s := &adhocSession{id: newSessionID(), owner: owner, node: node, args: map[string]string{}, expires: now.Add(sessionTTL)}
	return s, nil
}

// bareOf is the bare part of a full JID string.
func bareOf(full string) string {
	bare, _, _ := strings.Cut(full, "/")
	return bare
}

// take removes owner's session id on node from the table and returns it;
// the caller puts it back if the command goes on. Taking it out is what
// makes two concurrent requests on one session safe: the second finds
// nothing. Sessions of other JIDs look unknown, so ids reveal nothing.
func (t *sessionTable) take(id, owner, node string) (*adhocSession, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok || s.owner != owner || s.node != node {
		return nil, errBadSession
	}
	delete(t.byID, id)
	if !t.now().Before(s.expires) {
		return nil, errSessionExpired
	}
	return s, nil
}

// put stores s (back) in the table with a fresh lifetime.
func (t *sessionTable) put(s *adhocSession) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.expires = t.now().Add(sessionTTL)
	t.byID[s.id] = s
}

func newSessionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// commandError is an XEP-0050 failure answered as a stanza error.
type commandError struct{ *stanzaError }

func cmdErr(typ string, cond stanza.Condition, app, text string) *commandError {
	return &commandError{newError(typ, cond, app, text)}
}

// executeCommand serves one XEP-0050 request (§4) for actor.
func (b *Bot) executeCommand(ctx context.Context, reply *iqReply, req iqRequest, actor invites.Actor) {
	out, cerr := b.runCommand(ctx, req, actor)
	if cerr != nil {
		reply.fail(cerr.stanzaError)
		return
	}
	reply.Payload = out
}

func (b *Bot) runCommand(ctx context.Context, req iqRequest, actor invites.Actor) (commandOut, *commandError) {
	cmd := req.command
	role := actor.Role()
	op, ok := b.nodes[cmd.Node]
	if !ok {
		return commandOut{}, cmdErr("cancel", stanza.ItemNotFound, "", "no such command")
	}
	if !policy.Allows(role, op.perm) {
		return commandOut{}, cmdErr("auth", stanza.Forbidden, "", "you may not run this command")
	}
	if !op.available(b) {
		return commandOut{}, cmdErr("cancel", stanza.FeatureNotImplemented, "", op.unavailable)
	}
	switch cmd.Action {
	case "", actionExecute, actionNext, actionPrev, actionComplete, actionCancel:
	default:
		return commandOut{}, cmdErr("modify", stanza.BadRequest, "malformed-action", "")
	}
	r := request{actor: actor, args: map[string]string{}}
	owner := req.iq.From.String()

	if cmd.SessionID == "" {
		if cmd.Action != "" && cmd.Action != actionExecute {
			return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-sessionid", "no session to "+cmd.Action)
		}
		if len(visibleParams(op, role)) == 0 && op.confirm == nil {
			return b.finish(ctx, op, r, newSessionID()), nil
		}
		s, err := b.sessions.open(owner, op.node)
		if err != nil {
			return commandOut{}, cmdErr("wait", stanza.ResourceConstraint, "", "too many open commands; finish or cancel one")
		}
		return b.nextStage(ctx, op, r, s)
	}

	s, err := b.sessions.take(cmd.SessionID, owner, op.node)
	switch {
	case errors.Is(err, errSessionExpired):
		return commandOut{}, cmdErr("cancel", stanza.NotAllowed, "session-expired", "")
	case err != nil:
		return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-sessionid", "")
	}
	for k, v := range s.args {
		r.args[k] = v
	}
	form := submitted(cmd.Forms)
	if cmd.Action == actionCancel || (form != nil && form.Type == dataform.TypeCancel) {
		return commandOut{Node: op.node, SessionID: s.id, Status: statusCanceled}, nil
	}
	if cmd.Action == actionPrev {
		if s.stage == stageForm {
			b.sessions.put(s) // a wrong step does not end the session
			return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-action", "this is the first step")
		}
		s.stage = stageForm
		return b.nextStage(ctx, op, r, s)
	}

	allowed := allowedActions(op, s.stage)
	action := cmd.Action
	if action == "" || action == actionExecute {
		action = allowed.Execute
	}
	if action == actionNext && allowed.Next == nil && allowed.Complete != nil {
		// poezio submits every stage with next. XEP-0050 lets a responder
		// be lenient, and Prosody's own commands are: on the last stage
		// next means complete.
		action = actionComplete
	}
	if (action == actionNext && allowed.Next == nil) || (action == actionComplete && allowed.Complete == nil) {
		b.sessions.put(s)
		return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-action", action+" is not possible at this step")
	}

	if s.stage == stageForm {
		if form == nil {
			b.sessions.put(s)
			return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-payload", "submit the form")
		}
		args, err := paramsFromForm(op, role, form)
		if err != nil {
			// Show the form again with what was typed and what is wrong,
			// rather than ending the command: one field to fix instead of
			// starting over.
			s.args = typedValues(op, role, form)
			out, cerr := b.nextStage(ctx, op, r, s)
			if cerr == nil {
				// The note is where XEP-0050 puts it; profanity and
				// poezio show no note on a form that is still open, so
				// the form's first field says it too.
				text := sentence(err.Error())
				out.Notes = []commandNote{{Type: "error", Text: text}}
				out.Form.Fields = append([]dataform.Field{{Var: fixedVarError, Type: dataform.Fixed, Values: []string{text}}}, out.Form.Fields...)
			}
			return out, cerr
		}
		r.args, s.args = args, args
		if op.confirm != nil {
			s.stage = stageConfirm
			return b.nextStage(ctx, op, r, s)
		}
	}
	return b.finish(ctx, op, r, s.id), nil
}

// submitted picks the submitted (or cancelled) form of a request.
func submitted(forms []dataform.Form) *dataform.Form {
	for i := range forms {
		if forms[i].Type == dataform.TypeSubmit || forms[i].Type == dataform.TypeCancel {
			return &forms[i]
		}
	}
	return nil
}

func visibleParams(op operation, role policy.Role) []param {
	var ps []param
	for _, p := range op.params {
		if p.visible(role) {
			ps = append(ps, p)
		}
	}
	return ps
}

// allowedActions is what a stage offers; execute names the default.
func allowedActions(op operation, stage int) actions {
	present := &struct{}{}
	switch {
	case stage == stageConfirm:
		return actions{Execute: actionComplete, Prev: present, Complete: present}
	case op.confirm != nil:
		return actions{Execute: actionNext, Next: present}
	default:
		return actions{Execute: actionComplete, Complete: present}
	}
}

// Names of the fixed fields that repeat a note's text in a form. XEP-0004
// lets a fixed field go without a name, but poezio turns every note into a
// nameless fixed field of its own, with the text as a label it does not
// show, and slixmpp keeps a form's fields by name: the note's empty field
// then takes the place of a nameless one of ours, and the text is gone.
const (
	fixedVarError = "error"
	fixedVarText  = "text" // numbered: text-1, text-2, …
)

// nextStage renders the session's current stage and keeps the session for
// the next request.
func (b *Bot) nextStage(ctx context.Context, op operation, r request, s *adhocSession) (commandOut, *commandError) {
	out, cerr := b.stageOutput(ctx, op, r, s)
	if cerr == nil {
		b.sessions.put(s)
	}
	return out, cerr
}

// stageOutput renders the form of the session's current stage.
func (b *Bot) stageOutput(ctx context.Context, op operation, r request, s *adhocSession) (commandOut, *commandError) {
	acts := allowedActions(op, s.stage)
	out := commandOut{Node: op.node, SessionID: s.id, Status: statusExecuting, Actions: &acts}
	if s.stage == stageConfirm {
		question, err := op.confirm(ctx, b, r)
		if err != nil {
			return commandOut{}, b.failure(ctx, op, r.actor.JID(), err)
		}
		out.Form = &dataform.Form{Type: dataform.TypeForm, Title: op.title,
			Fields: []dataform.Field{{Type: dataform.Fixed, Values: []string{question}}}}
		return out, nil
	}
	form := &dataform.Form{Type: dataform.TypeForm, Title: op.title}
	for _, p := range visibleParams(op, r.role()) {
		fields, err := b.formFields(ctx, p, r, s.args[p.name])
		if err != nil {
			return commandOut{}, b.failure(ctx, op, r.actor.JID(), err)
		}
		form.Fields = append(form.Fields, fields...)
	}
	out.Form = form
	return out, nil
}

// formFields presents parameter p, pre-filled with value (going back with
// prev keeps what was entered).
func (b *Bot) formFields(ctx context.Context, p param, r request, value string) ([]dataform.Field, error) {
	f := dataform.Field{Var: p.name, Label: p.label}
	if value != "" {
		f.Values = []string{value}
	}
	typed := p.offersTyping(r.role())
	if p.required && !typed {
		f.Required = dataform.Req
	}
	if p.choices == nil {
		switch p.kind {
		case kindJID:
			f.Type = dataform.JIDSingle
		default:
			f.Type = dataform.TextSingle
		}
		return []dataform.Field{f}, nil
	}
	opts, err := p.choices(ctx, b, r)
	if err != nil {
		return nil, err
	}
	f.Type, f.Options = dataform.ListSingle, opts
	if p.kind == kindYesNo && value == "" {
		f.Values = []string{valueUnchanged}
	}
	fields := []dataform.Field{f}
	if typed {
		other := dataform.Field{Var: p.name + "-other", Type: dataform.TextSingle, Label: "or type it"}
		if p.kind == kindJID {
			other.Type = dataform.JIDSingle
		}
		fields = append(fields, other)
	}
	return fields, nil
}

// typedValues is what a submitted form holds for the parameters role may
// set, unchecked, to fill the form in again.
func typedValues(op operation, role policy.Role, form *dataform.Form) map[string]string {
	vals := make(map[string]string)
	for _, p := range visibleParams(op, role) {
		if v := form.Value(p.name); v != "" {
			vals[p.name] = plaintext.Truncate(plaintext.Line(v), maxTextParam)
		}
	}
	return vals
}

// paramsFromForm validates a submitted form against the parameters role
// may set.
func paramsFromForm(op operation, role policy.Role, form *dataform.Form) (map[string]string, error) {
	args := make(map[string]string)
	for _, p := range visibleParams(op, role) {
		raw := form.Value(p.name)
		if p.offersTyping(role) {
			if other := form.Value(p.name + "-other"); other != "" {
				raw = other
			}
		}
		if raw == "" || (p.kind == kindYesNo && raw == valueUnchanged) {
			if p.required {
				return nil, fmt.Errorf("%s is required", p.label)
			}
			continue
		}
		v, err := parseParam(p, raw)
		if err != nil {
			return nil, err
		}
		args[p.name] = v
	}
	return args, nil
}

// finish runs the operation and renders its result as a completed command.
func (b *Bot) finish(ctx context.Context, op operation, r request, sid string) commandOut {
	out := commandOut{Node: op.node, SessionID: sid, Status: statusCompleted}
	b.countCommand(op)
	res, err := op.run(ctx, b, r)
	if err != nil {
		text := b.userMessage(ctx, op, r.actor, err)
		out.Notes = []commandNote{{Type: "error", Text: text}}
		return out
	}
	out.Form = res.form
	switch {
	case res.warn:
		out.Notes = []commandNote{{Type: "warn", Text: res.text}}
	case res.form == nil, res.form.Reported != nil:
		// Console clients (profanity, poezio) show a reported table as an
		// empty form: the same rows as text reach every client.
		out.Notes = []commandNote{{Type: "info", Text: res.text}}
	}
	return out
}

// failure turns an error met while preparing a stage into a stanza error.
func (b *Bot) failure(ctx context.Context, op operation, actor string, err error) *commandError {
	if errors.Is(err, invites.ErrForbidden) {
		return cmdErr("auth", stanza.Forbidden, "", "")
	}
	b.log.ErrorContext(ctx, "command stage failed", slog.String("node", op.node), slog.String("actor", actor), slog.Any("err", err))
	return cmdErr("cancel", stanza.InternalServerError, "", "")
}
