package mail_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"durare.org/invitebot/internal/mailtest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/mail"
)

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func sender(t *testing.T, mta *mailtest.Server, password string) *mail.Sender {
	t.Helper()
	s, err := mail.New(mail.Config{SMTP: mta.Addr, From: "invites@example.org", Username: mta.Username,
		Password: password, ServerName: "localhost", CAFile: mta.CAFile, Domain: "example.org"}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSendConfirmationOverSTARTTLS(t *testing.T) {
	mta := mailtest.Start(t)
	s := sender(t, mta, mta.Password)
	ctx := context.Background()
	expires := time.Date(2030, 1, 2, 15, 4, 0, 0, time.UTC)
	tests := []struct {
		lang, to, subject, says string
	}{
		{"en", "frank@example.net", "Confirm your address for example.org", "Or type this code"},
		{"de-AT", "franz@example.net", "Bestätige deine Adresse für example.org", "gib auf der Seite"},
		{"fr", "francois@example.net", "Confirm your address for example.org", "Or type this code"},
	}
	for _, tt := range tests {
		t.Run(tt.lang, func(t *testing.T) {
			c := invites.Confirmation{Code: "123456", Link: "https://invites.example.org/r/key/confirm/123456", Expires: expires}
			if err := s.SendConfirmation(ctx, tt.to, tt.lang, c); err != nil {
				t.Fatal(err)
			}
			m := mta.Wait(t, tt.to)
			if m.Subject != tt.subject {
				t.Errorf("subject %q, want %q", m.Subject, tt.subject)
			}
			for _, want := range []string{tt.says, c.Code, c.Link} {
				if !strings.Contains(m.Body, want) {
					t.Errorf("body lacks %q:\n%s", want, m.Body)
				}
			}
			if ct := m.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
				t.Errorf("Content-Type %q, want plain text", ct)
			}
			// The daemon took the mail over TLS, logged in: the
			// Received header says so (esmtpsa = ESMTP, TLS, auth).
			if r := m.Header.Get("Received"); !strings.Contains(r, "esmtpsa") {
				t.Errorf("not received over TLS with a login: %q", r)
			}
		})
	}
}

func TestSendRefusesWhatIsNotOneAddress(t *testing.T) {
	mta := mailtest.Start(t)
	s := sender(t, mta, mta.Password)
	for _, to := range []string{
		"frank@example.net\r\nBcc: victim@example.com",
		"frank@example.net, victim@example.com",
		"Frank <frank@example.net>",
		"",
	} {
		err := s.SendConfirmation(context.Background(), to, "en", invites.Confirmation{Code: "1", Link: "x"})
		if err == nil {
			t.Errorf("sent to %q", to)
		}
	}
	if n := mta.Count(t, ""); n != 0 {
		t.Errorf("%d mails delivered, want none", n)
	}
}

func TestSendWithWrongPasswordFailsWithoutSayingIt(t *testing.T) {
	mta := mailtest.Start(t)
	s := sender(t, mta, "not-"+mta.Password)
	err := s.SendReset(context.Background(), "frank@example.net", "en", invites.ResetMail{Account: "frank@example.org", Link: "x"})
	if err == nil {
		t.Fatal("sent with a wrong password")
	}
	if strings.Contains(err.Error(), mta.Password) {
		t.Errorf("error holds the password: %v", err)
	}
}

func TestSendRefusesAnUntrustedCertificate(t *testing.T) {
	mta := mailtest.Start(t)
	s, err := mail.New(mail.Config{SMTP: mta.Addr, From: "invites@example.org", Username: mta.Username,
		Password: mta.Password, ServerName: "localhost", Domain: "example.org"}, testLog(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendReset(context.Background(), "frank@example.net", "en", invites.ResetMail{Link: "x"}); err == nil {
		t.Fatal("sent to a server whose certificate nobody trusts")
	}
}
