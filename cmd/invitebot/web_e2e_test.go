package main

import (
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/internal/prosodytest"
)

// TestInviteWithWebPage: with http.listen set, the invite reply links the
// bot's landing page and sends the QR code as an XEP-0066 image, both of
// which the web server really serves; /healthz reports the link up.
func TestInviteWithWebPage(t *testing.T) {
	srv := prosodytest.Start(t)
	w := &world{srv: srv, component: jid.MustParse(srv.Component),
		dbPath: filepath.Join(t.TempDir(), "invitebot.db"), logs: &syncBuffer{}, httpListen: freeAddr(t)}
	w.bot = w.startBot(t)
	admin := w.user(t, "admin", srv.Domain)

	reply := admin.Chat(t, w.component, "invite")
	inviteURI(t, reply)
	base := "http://" + w.httpListen + "/i/"
	if !strings.Contains(reply, base) {
		t.Fatalf("reply does not link the landing page %s:\n%s", base, reply)
	}
	qr := admin.Next(t)
	if !strings.HasPrefix(qr.Body, base) || !strings.HasSuffix(qr.Body, "/qr.png") {
		t.Errorf("second message body %q is not the QR image URL", qr.Body)
	}
	if !strings.Contains(qr.Inner, "jabber:x:oob") || !strings.Contains(qr.Inner, qr.Body) {
		t.Errorf("QR message lacks XEP-0066 data with the same URL: %s", qr.Inner)
	}
	landing := strings.TrimSuffix(qr.Body, "/qr.png")
	for url, wantType := range map[string]string{landing: "text/html", qr.Body: "image/png"} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) {
			t.Errorf("GET %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	resp, err := http.Get("http://" + w.httpListen + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: %d with the link up", resp.StatusCode)
	}
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
