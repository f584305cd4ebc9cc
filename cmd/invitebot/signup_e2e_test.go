package main

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/config"
	"durare.org/invitebot/internal/mailtest"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/web"
)

// signupWorld is requestWorld with sign-ups confirmed by mail, sent
// through a private exim4 (STARTTLS, AUTH) that the test reads.
func signupWorld(t *testing.T, tune func(*config.Config)) (*world, *mailtest.Server) {
	t.Helper()
	mta := mailtest.Start(t)
	w := requestWorld(t, 0, func(c *config.Config) {
		c.Requests.Verify = "email"
		c.Requests.PerAddressPerHour = 50
		c.Mail = config.MailConfig{SMTP: mta.Addr, From: "invites@" + c.XMPP.Domain, Username: mta.Username,
			Password: mta.Password, ServerName: "localhost", CAFile: mta.CAFile,
			PerAddressPerDay: config.DefaultMailPerAddressPerDay, PerDomainPerDay: config.DefaultMailPerDomainPerDay}
		if tune != nil {
			tune(c)
		}
	})
	return w, mta
}

var (
	mailCode = regexp.MustCompile(`where you asked: ([0-9]{6})`)
	mailLink = regexp.MustCompile(`(http://\S+/confirm/[0-9]{6})`)
)

// confirmation waits for the confirmation mail to addr and returns its
// code and link.
func confirmation(t *testing.T, mta *mailtest.Server, addr string) (code, link string) {
	t.Helper()
	m := mta.Wait(t, addr)
	c, l := mailCode.FindStringSubmatch(m.Body), mailLink.FindStringSubmatch(m.Body)
	if c == nil || l == nil {
		t.Fatalf("the mail to %s lacks a code or a link:\n%s", addr, m.Body)
	}
	return c[1], l[1]
}

// askWithMail sends the request form with a mail address.
func (b *browserless) askWithMail(t *testing.T, name, email string, extra url.Values) (*http.Response, string) {
	t.Helper()
	v := url.Values{"email": {email}}
	for k, x := range extra {
		v[k] = x
	}
	return b.ask(t, name, "", "I would like to chat with my friends", v)
}

// typeCode sends code in the status page's confirmation form.
func (b *browserless) typeCode(t *testing.T, statusPage, code string) (*http.Response, string) {
	t.Helper()
	_, body := b.do(t, http.MethodGet, statusPage, nil)
	return b.do(t, http.MethodPost, statusPage+"/confirm", url.Values{"csrf": {submatch(t, csrfField, body)}, "code": {code}})
}

// TestSignupConfirmedByMailAutoApproved is the stranger with no human in
// the loop: they ask with a mail address, nobody hears of it until the
// link in the mail is opened and its button pressed, then the service
// approves it at once within requests.auto_approve (audited with the
// address, approvers told after the fact) and the status page is the
// invitation that makes the account. The same address (in another case,
// with a +tag) cannot ask again. Past the daily cap, a request confirmed
// by its typed code goes to the approvers, marked "email confirmed".
func TestSignupConfirmedByMailAutoApproved(t *testing.T) {
	w, mta := signupWorld(t, func(c *config.Config) { c.Requests.AutoApprove = 1 })
	domain := w.srv.Domain
	admin := w.user(t, "admin", domain)
	b := newBrowserless(t, "http://"+w.httpListen)

	resp, body := b.askWithMail(t, "Frank", "Frank+chat@Example.NET", nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, web.English.ConfirmTitle) {
		t.Fatalf("after asking: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	statusPage := resp.Request.URL.String()
	code, link := confirmation(t, mta, "Frank+chat@example.net")
	if !strings.HasPrefix(link, statusPage+"/confirm/") || !strings.HasSuffix(link, code) {
		t.Errorf("link %s is not the status page %s with the code %s", link, statusPage, code)
	}
	admin.NoMessage(t, 0) // unconfirmed: nobody is told
	expectContains(t, admin.Chat(t, w.component, "requests"), "No open account requests")

	// The link opens a page whose button confirms; opening it alone
	// changes nothing.
	resp, body = b.do(t, http.MethodGet, link, nil)
	expectContains(t, body, web.English.ConfirmLinkBody, `id="confirm-button"`)
	resp, body = b.do(t, http.MethodPost, statusPage+"/confirm", url.Values{"csrf": {submatch(t, csrfField, body)},
		"code": {code}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != statusPage {
		t.Fatalf("after confirming: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	expectContains(t, tagless.ReplaceAllString(body, ""), web.English.StatusApproved, web.English.Submit)
	expectNotice(t, admin, "was approved automatically: email confirmed")
	id := regexp.MustCompile(`request ([a-z2-7]{16})`).FindStringSubmatch(admin.Chat(t, w.component, "audit"))
	if id == nil {
		t.Fatal("the audit log names no request")
	}
	expectContains(t, admin.Chat(t, w.component, "audit "+id[1]), "request.auto-approve", "confirmed address Frank+chat@example.net")

	// The invitation makes the account.
	action := submatch(t, formAction, body)
	resp, body = b.do(t, http.MethodPost, action, url.Values{"csrf": {submatch(t, csrfField, body)},
		"username": {"frank"}, "password": {password}, "password2": {password}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("registering from the status page: %d\n%s", resp.StatusCode, body)
	}
	expectContains(t, body, web.English.SuccessTitle)
	prosodytest.Login(t, w.srv, jid.MustParse("frank@"+domain), password)

	// One account per address, whatever its case or +tag.
	resp, body = b.askWithMail(t, "Frank again", "FRANK@example.net", nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, web.English.ErrMailTaken) {
		t.Errorf("the same address again: %d\n%s", resp.StatusCode, body)
	}

	// The cap (1 a day) is reached: the next confirmed request waits for
	// an approver, who sees it marked.
	resp, body = b.askWithMail(t, "Gina", "gina@example.net", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Gina asking: %d\n%s", resp.StatusCode, body)
	}
	gina := resp.Request.URL.String()
	code, _ = confirmation(t, mta, "gina@example.net")
	resp, body = b.typeCode(t, gina, code)
	expectContains(t, body, web.English.StatusWaitingTitle)
	notice, ginaID := noticeID(t, admin)
	expectContains(t, notice.Body, "Mail: email confirmed")
	expectContains(t, admin.Chat(t, w.component, "requests"), ginaID, "email confirmed")
	expectContains(t, admin.Chat(t, w.component, "approve "+ginaID), "Approved request "+ginaID)
	_, body = b.do(t, http.MethodGet, gina, nil)
	expectContains(t, tagless.ReplaceAllString(body, ""), web.English.StatusApproved)
	if n := mta.Count(t, ""); n != 2 {
		t.Errorf("%d mails sent, want the 2 confirmations", n)
	}
}

// TestSignupCodesLimitsAndPause: wrong codes count and run out, malformed
// ones do not count; disposable and admin-blocked domains, a second open
// request for one address and a flood from one mail domain are refused
// without a mail; the pause stops asking and confirming.
func TestSignupCodesLimitsAndPause(t *testing.T) {
	w, mta := signupWorld(t, func(c *config.Config) {
		c.Requests.AutoApprove = 10
		c.Mail.PerDomainPerDay = 3
		c.Mail.BlockDomains = []string{"spam.example"}
	})
	admin := w.user(t, "admin", w.srv.Domain)
	b := newBrowserless(t, "http://"+w.httpListen)

	resp, _ := b.askWithMail(t, "Hans", "hans@example.com", nil)
	hans := resp.Request.URL.String()
	code, _ := confirmation(t, mta, "hans@example.com")
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, code)+1)%1000000)
	resp, body := b.typeCode(t, hans, "12ab")
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, web.English.ErrConfirmMalformed) {
		t.Errorf("a malformed code: %d\n%s", resp.StatusCode, body)
	}
	for left := 4; left >= 1; left-- {
		resp, body = b.typeCode(t, hans, wrong)
		if want := fmt.Sprintf(web.English.ErrConfirmWrong, left); resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, want) {
			t.Fatalf("wrong code, %d left: %d\n%s", left, resp.StatusCode, body)
		}
	}
	resp, body = b.typeCode(t, hans, wrong)
	if resp.StatusCode != http.StatusGone || !strings.Contains(body, web.English.ConfirmUsedUpTitle) {
		t.Fatalf("the fifth wrong code: %d\n%s", resp.StatusCode, body)
	}
	// Used up: not even the right code confirms now.
	resp, body = b.typeCode(t, hans, code)
	if resp.StatusCode != http.StatusGone {
		t.Errorf("the right code after five wrong ones: %d\n%s", resp.StatusCode, body)
	}
	admin.NoMessage(t, 0)

	refused := []struct {
		email, want string
	}{
		{"bot@mailinator.com", web.English.ErrMailBlocked},
		{"bot@eu.yopmail.com", web.English.ErrMailBlocked},
		{"bot@spam.example", web.English.ErrMailBlocked},
		{"not an address", web.English.ErrRequestEmail},
		{"a@b.example\r\nBcc: victim@example.org", web.English.ErrRequestEmail},
	}
	for _, r := range refused {
		resp, body = b.askWithMail(t, "Robot", r.email, nil)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, r.want) {
			t.Errorf("%q: %d\n%s", r.email, resp.StatusCode, body)
		}
	}

	// One open request per address.
	resp, _ = b.askWithMail(t, "Ida", "ida@example.org", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Ida: %d", resp.StatusCode)
	}
	ida := resp.Request.URL.String()
	idaCode, _ := confirmation(t, mta, "ida@example.org")
	resp, body = b.askWithMail(t, "Ida twice", "Ida+2@example.org", nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, web.English.ErrMailTaken) {
		t.Errorf("a second open request for one address: %d\n%s", resp.StatusCode, body)
	}
	// A flood from one mail domain: example.org got 1 of 3 mails so far.
	for _, who := range []string{"jan", "kim"} {
		if resp, _ = b.askWithMail(t, who, who+"@example.org", nil); resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d", who, resp.StatusCode)
		}
		confirmation(t, mta, who+"@example.org")
	}
	resp, body = b.askWithMail(t, "Lea", "lea@example.org", nil)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, web.English.ErrMailPerDomain) {
		t.Errorf("the fourth address of one domain in a day: %d\n%s", resp.StatusCode, body)
	}
	// Refused addresses got no mail: hans, ida, jan, kim did.
	if n := mta.Count(t, ""); n != 4 {
		t.Errorf("%d mails sent, want 4", n)
	}

	// The pause stops it all: asking, and confirming.
	expectContains(t, admin.Chat(t, w.component, "pause spam wave"), "paused")
	resp, body = b.do(t, http.MethodGet, "/request", nil)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, web.English.RequestClosedPaused) {
		t.Errorf("the request page while paused: %d\n%s", resp.StatusCode, body)
	}
	resp, body = b.typeCode(t, ida, idaCode)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, web.English.RequestClosedPaused) {
		t.Errorf("confirming while paused: %d\n%s", resp.StatusCode, body)
	}
	admin.NoMessage(t, 0)
	expectContains(t, admin.Chat(t, w.component, "resume"), "allowed again")
	resp, body = b.typeCode(t, ida, idaCode)
	if resp.StatusCode != http.StatusOK || !strings.Contains(tagless.ReplaceAllString(body, ""), web.English.StatusApproved) {
		t.Errorf("confirming after the resume: %d\n%s", resp.StatusCode, body)
	}
	if n := mta.Count(t, ""); n != 4 {
		t.Errorf("%d mails sent, want still 4", n)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err != nil {
		t.Fatal(err)
	}
	return n
}
