package main

// Prosody's storage choice and the tokens it holds (issue 22 #1): what one
// create-account and one preauth check cost Prosody with N tokens held, in
// its internal files and in SQLite (storage = { invite_token = "sql" }).
//
//	go test ./cmd/invitebench -run '^$' -bench TokenStorage -benchtime 50x -held 1000,10000
//
// SQLite needs LuaDBI's driver (Debian: lua-dbi-sqlite3) and the sqlite3
// command, which seeds the table. The held tokens are written straight
// into storage while Prosody is stopped: minting 10,000 one by one would
// take most of an hour with the internal storage, which is the point.

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
)

var heldSizes = flag.String("held", "1000", "comma-separated numbers of tokens Prosody holds in BenchmarkTokenStorage")

// BenchmarkTokenStorage measures, per storage and number of tokens held,
// one create-account (mint) and one preauth check (check) as an admin's
// client and an unauthenticated stream see them: the round trip, and
// Prosody's CPU per operation (prosody-ms/op, from /proc, 10 ms ticks:
// run enough operations).
func BenchmarkTokenStorage(b *testing.B) {
	for _, field := range strings.Split(*heldSizes, ",") {
		held, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil {
			b.Fatalf("-held: %v", err)
		}
		for _, storage := range []string{"internal", "sql"} {
			b.Run(fmt.Sprintf("%s/held=%d", storage, held), func(b *testing.B) {
				benchStorage(b, storage == "sql", held)
			})
		}
	}
}

const storageAdmin = "admin@" + prosodytest.DefaultDomain

func benchStorage(b *testing.B, sql bool, held int) {
	opts := []prosodytest.Option{prosodytest.WithAdmins(storageAdmin)}
	if sql {
		opts = append(opts, prosodytest.WithSQLTokens())
	}
	srv := prosodytest.Start(b, opts...)
	srv.AddUser(b, "admin", srv.Domain, "correct horse battery")
	// One mint through Prosody makes its storage (the SQL table) exist.
	first := srv.MintAdminToken(b)
	srv.Stop(b)
	seed := seedFile
	if sql {
		seed = seedSQL
	}
	if err := seed(srv, held, first); err != nil {
		b.Fatal(err)
	}
	srv.Restart(b)
	pid, err := prosodyPIDOf(srv)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	admin, err := prosodytest.Dial(ctx, srv, jid.MustParse(storageAdmin), "correct horse battery")
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close()
	checker, err := ibr.DialChecker(ctx, srv.IBRConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer checker.Close()

	b.Run("mint", func(b *testing.B) {
		measure(b, pid, func() error {
			_, err := prosodytest.RunMintCommand(ctx, admin.Session(), jid.MustParse(srv.Domain), invites.NodeCreateAccount)
			return err
		})
	})
	b.Run("check", func(b *testing.B) {
		measure(b, pid, func() error { return checker.Check(ctx, first) })
	})
}

// measure runs op b.N times and reports Prosody's CPU per operation.
func measure(b *testing.B, pid int, op func() error) {
	before, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if err := op(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	after, err := procCPU(pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before)/float64(time.Millisecond)/float64(b.N), "prosody-ms/op")
}

// prosodyPIDOf reads the running Prosody's process id from its pidfile,
// which Prosody may write a moment after its listeners accept.
func prosodyPIDOf(srv *prosodytest.Server) (int, error) {
	for deadline := time.Now().Add(10 * time.Second); ; {
		raw, err := os.ReadFile(filepath.Join(srv.Dir, "prosody.pid"))
		if err == nil && len(strings.TrimSpace(string(raw))) > 0 {
			return strconv.Atoi(strings.TrimSpace(string(raw)))
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no pidfile: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// seedToken is the n-th made-up token; Prosody's are 24 characters.
func seedToken(n int) string { return fmt.Sprintf("seed%020d", n) }

// seedFile writes held tokens, plus keep (the one minted through
// Prosody), into Prosody's internal token file, as Prosody writes it.
func seedFile(srv *prosodytest.Server, held int, keep string) error {
	host := strings.ReplaceAll(srv.Domain, ".", "%2e")
	var b strings.Builder
	b.WriteString("return {\n")
	now := time.Now().Unix()
	for i := range held + 1 {
		tok := keep
		if i < held {
			tok = seedToken(i)
		}
		fmt.Fprintf(&b, "\t[%q] = {\n\t\t[\"type\"] = \"register\";\n\t\t[\"jid\"] = %q;\n\t\t[\"token\"] = %q;\n"+
			"\t\t[\"allow_registration\"] = true;\n\t\t[\"uri\"] = %q;\n\t\t[\"created_at\"] = %d;\n\t\t[\"expires\"] = %d;\n\t};\n",
			tok, srv.Domain, tok, "xmpp:"+srv.Domain+"?register;preauth="+tok, now, now+7*86400)
	}
	b.WriteString("};\n")
	return os.WriteFile(filepath.Join(srv.DataDir, host, "invite_token.dat"), []byte(b.String()), 0o600)
}

// seedSQL inserts held tokens into the SQLite table Prosody made, the way
// its SQL storage writes a map store's records (type json).
func seedSQL(srv *prosodytest.Server, held int, _ string) error {
	var b strings.Builder
	b.WriteString("BEGIN;\n")
	now := time.Now().Unix()
	for i := range held {
		tok := seedToken(i)
		value := fmt.Sprintf(`{"type":"register","jid":%q,"token":%q,"allow_registration":true,"uri":%q,"created_at":%d,"expires":%d}`,
			srv.Domain, tok, "xmpp:"+srv.Domain+"?register;preauth="+tok, now, now+7*86400)
		fmt.Fprintf(&b, "INSERT INTO prosody (host,user,store,key,type,value) VALUES ('%s','','invite_token','%s','json','%s');\n",
			srv.Domain, tok, strings.ReplaceAll(value, "'", "''"))
	}
	b.WriteString("COMMIT;\n")
	b.WriteString("SELECT count(*) FROM prosody WHERE store='invite_token';\n")
	cmd := exec.Command("sqlite3", filepath.Join(srv.DataDir, "prosody.sqlite"))
	cmd.Stdin = strings.NewReader(b.String())
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("seed SQLite: %v: %s", err, out)
	}
	// The seeded rows and the one Prosody wrote: else it wrote elsewhere.
	if n, err := strconv.Atoi(strings.TrimSpace(string(out))); err != nil || n != held+1 {
		return fmt.Errorf("seed SQLite: the table holds %q tokens, want %d", out, held+1)
	}
	return nil
}
