package prosody_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"durare.org/invitebot/homeserver"
	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
	"durare.org/invitebot/store"
)

// BenchmarkReportWhileTracking: Prosody holds 10,000 tokens in its internal
// files, all of them pending invites of the bot, whose usage tracking checks
// them meanwhile at its pace; each iteration mints a token, registers an
// account with it, and measures how long after the registration the
// module's report reaches the component (report-ms: the slowest and the
// median). Issue 22 measured 4–7 s here before the checks were paced by the
// server's answer time.
//
//	go test ./homeserver/prosody -run '^$' -bench ReportWhileTracking -benchtime 5x
func BenchmarkReportWhileTracking(b *testing.B) {
	const held = 10_000
	srv := prosodytest.Start(b, prosodytest.WithInvitebotModule())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dbPath := filepath.Join(b.TempDir(), "invitebot.db")
	now := time.Now().UTC()
	if _, err := store.Generate(ctx, dbPath, store.Profile{Invites: held, Inviters: 50, PendingFraction: 1,
		History: 6 * 24 * time.Hour, Expiry: 7 * 24 * time.Hour, Now: now}); err != nil {
		b.Fatal(err)
	}
	st, err := store.Open(ctx, dbPath)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	tokens := pendingTokens(b, st)
	srv.Stop(b)
	if err := writeTokenFile(srv, tokens); err != nil {
		b.Fatal(err)
	}
	srv.Restart(b)

	reports := make(chan time.Time, 16)
	link := componentLinkWith(b, srv, reportHandler(reports))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mod := prosody.NewModule(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), link, log)
	if st, err := mod.Detect(ctx); err != nil || st != invites.ModulePresent {
		b.Fatalf("module: %v, %v", st, err)
	}
	issuer := prosody.NewIssuer(jid.MustParse(srv.Domain), jid.MustParse(srv.Component), link)
	svc := invites.NewService(invites.Options{Store: st, Domain: srv.Domain, Issuer: issuer, Module: mod,
		Registrar: homeserver.Registrar{C2S: srv.IBRConfig()}, Log: log})
	// Tracking checks the 10,000 tokens at its pace while the benchmark runs.
	tracking := make(chan struct{})
	go func() {
		defer close(tracking)
		_ = svc.CheckPending(ctx)
	}()
	var took, regs []time.Duration
	b.ResetTimer()
	for i := range b.N {
		m, err := issuer.Mint(ctx)
		if err != nil {
			b.Fatal(err)
		}
		began := time.Now()
		if _, err := ibr.Register(ctx, srv.IBRConfig(), m.Token, fmt.Sprintf("user%d", i), "correct horse battery"); err != nil {
			b.Fatal(err)
		}
		regs = append(regs, time.Since(began))
		select {
		case at := <-reports:
			took = append(took, at.Sub(began))
		case <-time.After(30 * time.Second):
			b.Fatal("no report within 30 s")
		}
	}
	b.StopTimer()
	cancel()
	<-tracking
	slices.Sort(took)
	slices.Sort(regs)
	b.ReportMetric(float64(took[len(took)-1])/float64(time.Millisecond), "max-report-ms")
	b.ReportMetric(float64(took[len(took)/2])/float64(time.Millisecond), "median-report-ms")
	b.ReportMetric(float64(regs[len(regs)/2])/float64(time.Millisecond), "median-reg-ms")
}

// pendingTokens lists the tokens of every pending invite in st.
func pendingTokens(b *testing.B, st *store.Store) []string {
	var out []string
	for after := (store.PendingRef{}); ; {
		page, err := st.PendingPage(context.Background(), after, 1000)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range page {
			out = append(out, r.Token)
		}
		if len(page) < 1000 {
			return out
		}
		after = page[len(page)-1]
	}
}

// writeTokenFile writes tokens into Prosody's internal token file as the
// component's (additional_data.source), valid for a week.
func writeTokenFile(srv *prosodytest.Server, tokens []string) error {
	var b strings.Builder
	b.WriteString("return {\n")
	now := time.Now().Unix()
	for _, tok := range tokens {
		fmt.Fprintf(&b, "\t[%q] = {\n\t\t[\"type\"] = \"register\";\n\t\t[\"jid\"] = %q;\n\t\t[\"token\"] = %q;\n"+
			"\t\t[\"allow_registration\"] = true;\n\t\t[\"uri\"] = %q;\n\t\t[\"created_at\"] = %d;\n\t\t[\"expires\"] = %d;\n"+
			"\t\t[\"additional_data\"] = {\n\t\t\t[\"source\"] = %q;\n\t\t};\n\t};\n",
			tok, srv.Domain, tok, "xmpp:"+srv.Domain+"?register;preauth="+tok, now, now+7*86400, srv.Component)
	}
	b.WriteString("};\n")
	dir := filepath.Join(srv.DataDir, strings.ReplaceAll(srv.Domain, ".", "%2e"))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "invite_token.dat"), []byte(b.String()), 0o600)
}

// reportHandler acknowledges the module's usage reports and sends when
// each arrived to at.
func reportHandler(at chan<- time.Time) xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		if start.Name.Local != "iq" {
			return nil
		}
		iq, err := stanza.NewIQ(*start)
		if err != nil || iq.Type != stanza.SetIQ {
			return nil
		}
		for {
			tok, err := t.Token()
			if err != nil {
				return nil
			}
			if el, ok := tok.(xml.StartElement); ok {
				if el.Name.Local == "registered" {
					at <- time.Now()
					_, err = xmlstream.Copy(t, iq.Result(nil))
					return err
				}
				return nil
			}
		}
	})
}
