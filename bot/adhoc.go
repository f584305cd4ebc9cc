package bot

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"

	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/internal/dataform"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/policy"
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
	SessionID string         `xml:"sessionid,attr,omitempty"`
	Status    string         `xml:"status,attr,omitempty"`
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

// Stages of a command with parameters.
const (
	stageForm    = 0 // the parameters form is shown
	stageConfirm = 1 // the confirmation question is shown
)

// commandError is an XEP-0050 failure answered as a stanza error.
type commandError struct{ *stanzaError }

func cmdErr(typ string, cond stanza.Condition, app, text string) *commandError {
	return &commandError{newError(typ, cond, app, text)}
}

// executeCommand serves one XEP-0050 request (§4) for actor.
func (b *Bot) executeCommand(ctx context.Context, reply *iqReply, req iqRequest, actor invites.Actor) {
	out, cerr := b.runCommand(ctx, req, actor)
	answerCommand(reply, req.command, out, cerr)
}

// answerCommand makes reply the answer to cmd: out, or the stanza error
// cerr. An error carries a <command/> naming the command and the session
// the request named (XEP-0050 §4.6 shows errors so): slixmpp, and so
// poezio, finds the session an answer belongs to by that sessionid, and
// drops an error without one, so the person would see nothing at all.
func answerCommand(reply *iqReply, cmd commandIn, out commandOut, cerr *commandError) {
	if cerr == nil {
		reply.Payload = out
		return
	}
	reply.fail(cerr.stanzaError)
	if cmd.Node != "" {
		reply.Payload = commandOut{Node: cmd.Node, SessionID: cmd.SessionID}
	}
}

// runCommand serves one XEP-0050 request for actor: it starts the command,
// or takes the next step of the session the request names.
func (b *Bot) runCommand(ctx context.Context, req iqRequest, actor invites.Actor) (commandOut, *commandError) {
	c, cerr := newCommandRun(b, req, actor)
	if cerr != nil {
		return commandOut{}, cerr
	}
	if c.cmd.SessionID == "" {
		return c.start(ctx)
	}
	return c.resume(ctx)
}

// commandRun is one XEP-0050 request being served. Its stages each check
// and answer one thing, in the order a request meets them: the command, the
// session, the action, the submitted form, the operation.
type commandRun struct {
	bot *Bot
	op  operation
	cmd commandIn
	// owner is the requester's full JID: XEP-0050 binds a session to it.
	owner string
	// req is the operation's request; its arguments come from the session
	// and the submitted form.
	req request
}

// newCommandRun finds the command a request names and checks that actor
// may run it here, with an action XEP-0050 knows.
func newCommandRun(b *Bot, req iqRequest, actor invites.Actor) (*commandRun, *commandError) {
	cmd := req.command
	op, ok := b.nodes[cmd.Node]
	if !ok {
		return nil, cmdErr("cancel", stanza.ItemNotFound, "", "no such command")
	}
	if !policy.Allows(actor.Role(), op.perm) {
		return nil, cmdErr("auth", stanza.Forbidden, "", "you may not run this command")
	}
	if !op.available(b) {
		return nil, cmdErr("cancel", stanza.FeatureNotImplemented, "", op.unavailable)
	}
	switch cmd.Action {
	case "", actionExecute, actionNext, actionPrev, actionComplete, actionCancel:
	default:
		return nil, cmdErr("modify", stanza.BadRequest, "malformed-action", "")
	}
	return &commandRun{bot: b, op: op, cmd: cmd, owner: req.iq.From.String(),
		req: request{actor: actor, args: map[string]string{}, form: true}}, nil
}

// start begins the command: one that asks nothing runs at once, others
// open a session and show their first stage.
func (c *commandRun) start(ctx context.Context) (commandOut, *commandError) {
	if c.cmd.Action != "" && c.cmd.Action != actionExecute {
		return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-sessionid", "no session to "+c.cmd.Action)
	}
	if len(visibleParams(c.op, c.req.role())) == 0 && c.op.confirm == nil {
		return c.finish(ctx, newSessionID())
	}
	if c.op.precheck != nil {
		res, err := c.op.precheck(ctx, c.bot, c.req)
		if err != nil {
			return commandOut{}, c.failure(ctx, err)
		}
		if res.refused != "" {
			return commandOut{}, refusalError(res.refused, res.text)
		}
	}
	none, err := c.nothingToChoose(ctx)
	if err != nil {
		return commandOut{}, c.failure(ctx, err)
	}
	if none != "" {
		return commandOut{Node: c.op.node, SessionID: newSessionID(), Status: statusCompleted,
			Notes: []commandNote{{Type: "info", Text: none}}}, nil
	}
	s, err := c.bot.sessions.open(c.owner, c.op.node)
	if err != nil {
		return commandOut{}, cmdErr("wait", stanza.ResourceConstraint, "", "too many open commands; finish or cancel one")
	}
	return c.nextStage(ctx, s)
}

// resume takes the next step of the session the request names, with the
// arguments the session holds so far.
func (c *commandRun) resume(ctx context.Context) (commandOut, *commandError) {
	s, err := c.bot.sessions.take(c.cmd.SessionID, c.owner, c.op.node)
	switch {
	case errors.Is(err, errSessionExpired):
		return commandOut{}, cmdErr("cancel", stanza.NotAllowed, "session-expired", "")
	case err != nil:
		return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-sessionid", "")
	}
	for k, v := range s.args {
		c.req.args[k] = v
	}
	form := submitted(c.cmd.Forms)
	if c.cmd.Action == actionCancel || (form != nil && form.Type == dataform.TypeCancel) {
		return commandOut{Node: c.op.node, SessionID: s.id, Status: statusCanceled}, nil
	}
	if c.cmd.Action == actionPrev {
		return c.back(ctx, s)
	}
	if cerr := c.checkAction(s); cerr != nil {
		return commandOut{}, cerr
	}
	if s.stage == stageForm {
		return c.submitForm(ctx, s, form)
	}
	return c.finish(ctx, s.id)
}

// nothingToChoose is what the command answers at once, instead of its
// form, when a required list offers nothing and the person can type no
// value beyond it: a form whose only answer is refused ("Invite is
// required.") would be a dead end. Empty when the form has something to
// choose.
func (c *commandRun) nothingToChoose(ctx context.Context) (string, error) {
	role := c.req.role()
	for _, p := range visibleParams(c.op, role) {
		if p.choices == nil || !p.required || p.none == "" || p.typesBeyondList(role) {
			continue
		}
		opts, err := p.choices(ctx, c.bot, c.req)
		if err != nil {
			return "", err
		}
		if len(opts) == 0 {
			return p.none, nil
		}
	}
	return "", nil
}

// back returns from the confirmation to the form, which keeps what was
// entered.
func (c *commandRun) back(ctx context.Context, s *adhocSession) (commandOut, *commandError) {
	if s.stage == stageForm {
		c.bot.sessions.put(s) // a wrong step does not end the session
		return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-action", "this is the first step")
	}
	s.stage = stageForm
	return c.nextStage(ctx, s)
}

// checkAction refuses an action the session's stage does not offer. The
// session stays open: a wrong step does not end it.
func (c *commandRun) checkAction(s *adhocSession) *commandError {
	allowed := allowedActions(c.op, s.stage)
	action := c.cmd.Action
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
		c.bot.sessions.put(s)
		return cmdErr("modify", stanza.BadRequest, "bad-action", action+" is not possible at this step")
	}
	return nil
}

// submitForm binds the submitted parameters form to the request, then asks
// for confirmation if the operation wants it, or runs it.
func (c *commandRun) submitForm(ctx context.Context, s *adhocSession, form *dataform.Form) (commandOut, *commandError) {
	if form == nil {
		c.bot.sessions.put(s)
		return commandOut{}, cmdErr("modify", stanza.BadRequest, "bad-payload", "submit the form")
	}
	args, err := paramsFromForm(c.op, c.req.role(), form)
	if err != nil {
		return c.formAgain(ctx, s, form, err)
	}
	c.req.args, s.args = args, args
	if c.op.confirm != nil {
		s.stage = stageConfirm
		return c.nextStage(ctx, s)
	}
	return c.finish(ctx, s.id)
}

// formAgain shows the form again with what was typed and what is wrong,
// rather than ending the command: one field to fix instead of starting
// over.
func (c *commandRun) formAgain(ctx context.Context, s *adhocSession, form *dataform.Form, mistake error) (commandOut, *commandError) {
	s.args = typedValues(c.op, c.req.role(), form)
	out, cerr := c.nextStage(ctx, s)
	if cerr == nil {
		// Said once, in the form's first lines: profanity and poezio show
		// no note on a form that is still open, and Gajim showed a note
		// as well as the lines, the same words twice.
		lines := wrapLine(mistakeText(mistake, true), "")
		out.Form.Fields = append(textFields(fixedVarError, lines), out.Form.Fields...)
	}
	return out, cerr
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

// nextStage renders the session's current stage and keeps the session for
// the next request.
func (c *commandRun) nextStage(ctx context.Context, s *adhocSession) (commandOut, *commandError) {
	out, cerr := c.stageOutput(ctx, s)
	if cerr == nil {
		c.bot.sessions.put(s)
	}
	return out, cerr
}

// stageOutput renders the form of the session's current stage.
func (c *commandRun) stageOutput(ctx context.Context, s *adhocSession) (commandOut, *commandError) {
	acts := allowedActions(c.op, s.stage)
	out := commandOut{Node: c.op.node, SessionID: s.id, Status: statusExecuting, Actions: &acts}
	if s.stage == stageConfirm {
		question, err := c.op.confirm(ctx, c.bot, c.req)
		var no refusedConfirm
		if errors.As(err, &no) {
			// Nothing to confirm: the answer is the refusal itself.
			return commandOut{}, refusalError(no.refused, no.text)
		}
		if err != nil {
			return commandOut{}, c.failure(ctx, err)
		}
		out.Form = &dataform.Form{Type: dataform.TypeForm, Title: c.op.title,
			Fields: textFields(fixedVarText, wrapLine(question, ""))}
		return out, nil
	}
	form := &dataform.Form{Type: dataform.TypeForm, Title: c.op.title}
	for _, p := range visibleParams(c.op, c.req.role()) {
		fields, err := formFields(ctx, c.bot, p, c.req, s.args[p.name])
		if err != nil {
			return commandOut{}, c.failure(ctx, err)
		}
		form.Fields = append(form.Fields, fields...)
	}
	out.Form = form
	return out, nil
}

// finish runs the operation and renders its result as a completed
// command, or its refusal as a stanza error; either ends the session.
func (c *commandRun) finish(ctx context.Context, sid string) (commandOut, *commandError) {
	b, op := c.bot, c.op
	out := commandOut{Node: op.node, SessionID: sid, Status: statusCompleted}
	b.countCommand(op)
	res, err := op.run(ctx, b, c.req)
	if err != nil {
		cond, text := b.failureText(ctx, op, c.req, err)
		return commandOut{}, refusalError(cond, text)
	}
	switch {
	case res.refused != "":
		return commandOut{}, refusalError(res.refused, res.text)
	case res.warn:
		out.Notes = []commandNote{{Type: "warn", Text: res.text}}
	case res.form == nil:
		out.Notes = []commandNote{{Type: "info", Text: res.text}}
	}
	// A result form says all the reply says, in its own fields (a list's
	// rows as text lines): the same text as a note too would show twice in
	// Gajim, and not at all in poezio, which shows a form's notes as
	// fields without text.
	out.Form = res.form
	return out, nil
}

// refusalError is the answer to a command that was refused, or failed:
// a stanza error with the words chat says (XEP-0050 §4.6 lets a responder
// answer a failed execution so). A completed command with an error note
// says the same in XEP-0050's words, but no client shows it as a failure:
// Gajim draws "✓ Completed" over it, poezio says "Info: completed", and
// profanity "completed"; an error each shows as one.
func refusalError(cond stanza.Condition, text string) *commandError {
	return cmdErr(errorType(cond), cond, "", text)
}

// errorType is the error type (RFC 6120 §8.3.2) that goes with a
// condition the bot answers with.
func errorType(cond stanza.Condition) string {
	switch cond {
	case stanza.Forbidden:
		return "auth"
	case stanza.ResourceConstraint, stanza.RemoteServerTimeout, stanza.InternalServerError:
		return "wait"
	case stanza.NotAcceptable, stanza.BadRequest:
		return "modify"
	default:
		return "cancel"
	}
}

// failure turns an error met while preparing a stage into a stanza error.
func (c *commandRun) failure(ctx context.Context, err error) *commandError {
	if errors.Is(err, invites.ErrForbidden) {
		return cmdErr("auth", stanza.Forbidden, "", "")
	}
	c.bot.log.ErrorContext(ctx, "command stage failed", slog.String("node", c.op.node), slog.String("actor", c.req.actor.JID()), slog.Any("err", err))
	return cmdErr("cancel", stanza.InternalServerError, "", "")
}
