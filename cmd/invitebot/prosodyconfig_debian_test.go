package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	xmppcomponent "mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"

	"durare.org/invitebot/homeserver/ibr"
	"durare.org/invitebot/homeserver/prosody"
	"durare.org/invitebot/internal/prosodytest"
	"durare.org/invitebot/invites"
)

// The snippet `invitebot prosody-config` prints is meant to be saved as a
// file in /etc/prosody/conf.d/. These tests load it there, beside Debian's
// own prosody.cfg.lua, unchanged, and see that Prosody still does what the
// stock configuration makes it do.

// debianConfig is where Debian's prosody package keeps its configuration.
const debianConfig = "/etc/prosody/prosody.cfg.lua"

// ctlTimeout bounds one prosodyctl run.
const ctlTimeout = 30 * time.Second

// prosodyctlUnderTest returns the prosodyctl of the Prosody the tests run
// against, chosen the way internal/prosodytest chooses it: from
// $INVITEBOT_PROSODY_PREFIX/bin if that is set, else from PATH.
func prosodyctlUnderTest(t *testing.T) string {
	t.Helper()
	if prefix := os.Getenv(prosodytest.EnvPrefix); prefix != "" {
		p := filepath.Join(prefix, "bin", "prosodyctl")
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", prosodytest.EnvPrefix, prefix, err)
		}
		return p
	}
	p, err := exec.LookPath("prosodyctl")
	if err != nil {
		t.Fatalf("prosodyctl not found (apt-get install prosody, or set %s): %v", prosodytest.EnvPrefix, err)
	}
	return p
}

// debianStockConfig returns the prosody.cfg.lua that the Debian package of
// the Prosody under test ships: with $INVITEBOT_PROSODY_PREFIX, the one
// scripts/unpack-prosody unpacked beside PREFIX (PREFIX/../etc/prosody) or
// the one a scripts/debian13-root wrapper links (PREFIX/etc/prosody);
// else /etc/prosody/prosody.cfg.lua, which must be as the installed
// package shipped it (dpkg's checksum), not a local edit.
func debianStockConfig(t *testing.T) string {
	t.Helper()
	path := debianConfig
	prefix := os.Getenv(prosodytest.EnvPrefix)
	if prefix != "" {
		path = filepath.Join(prefix, "..", "etc", "prosody", "prosody.cfg.lua")
		// The wrappers of scripts/debian13-root link the package's etc
		// inside PREFIX instead.
		if inside := filepath.Join(prefix, "etc", "prosody", "prosody.cfg.lua"); fileExists(inside) {
			path = inside
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("Debian's stock Prosody configuration: %v (apt-get install prosody, or for %s scripts/unpack-prosody)", err, prosodytest.EnvPrefix)
	}
	if prefix == "" {
		out, err := exec.Command("dpkg-query", "-W", "-f=${Conffiles}", "prosody").Output()
		if err != nil {
			t.Fatalf("dpkg-query prosody: %v", err)
		}
		sum := md5.Sum(b)
		want := ""
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == debianConfig {
				want = f[1]
			}
		}
		if want == "" {
			t.Fatalf("dpkg does not list %s among prosody's conffiles:\n%s", debianConfig, out)
		}
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("%s is not the file the prosody package shipped (md5 %s, dpkg says %s): this test needs Debian's stock configuration; "+
				"restore it (apt-get download prosody && dpkg-deb --fsys-tarfile prosody_*.deb | tar -xO ./etc/prosody/prosody.cfg.lua)", debianConfig, got, want)
		}
	}
	text := string(b)
	// What makes the test mean something: the stock file includes conf.d,
	// and its global modules_enabled holds what logging in needs.
	if !strings.Contains(text, "\nInclude \"conf.d/*.cfg.lua\"") {
		t.Fatalf("%s has no Include \"conf.d/*.cfg.lua\"", path)
	}
	for _, m := range []string{"tls", "saslauth", "admin_shell"} {
		if !stockModules(t, text)[m] {
			t.Fatalf("%s does not enable mod_%s globally", path, m)
		}
	}
	return text
}

var (
	globalModulesRE = regexp.MustCompile(`(?ms)^modules_enabled = \{(.*?)^\}`)
	enabledModuleRE = regexp.MustCompile(`^\s*"([\w-]+)";`)
	pluginPathsRE   = regexp.MustCompile(`(?m)^plugin_paths = \{(.*)\}`)
	quotedRE        = regexp.MustCompile(`"([^"]*)"`)
)

// stockModules returns the modules the global modules_enabled of the stock
// configuration enables (not the commented-out ones).
func stockModules(t *testing.T, stock string) map[string]bool {
	t.Helper()
	m := globalModulesRE.FindStringSubmatch(stock)
	if m == nil {
		t.Fatal("no global modules_enabled in Debian's configuration")
	}
	mods := make(map[string]bool)
	for _, line := range strings.Split(m[1], "\n") {
		if e := enabledModuleRE.FindStringSubmatch(line); e != nil {
			mods[e[1]] = true
		}
	}
	return mods
}

// stockPluginPaths returns the folders in the stock plugin_paths.
func stockPluginPaths(t *testing.T, stock string) []string {
	t.Helper()
	m := pluginPathsRE.FindStringSubmatch(stock)
	if m == nil {
		t.Fatal("no plugin_paths in Debian's configuration")
	}
	var paths []string
	for _, q := range quotedRE.FindAllStringSubmatch(m[1], -1) {
		paths = append(paths, q[1])
	}
	return paths
}

// layDebianConfig writes stock into dir/prosody.cfg.lua unchanged, and puts
// two files into dir/conf.d, which its Include loads: env, what a test must
// change (paths, ports, logging), and the snippet, as an operator would
// save it. It returns the path of prosody.cfg.lua.
func layDebianConfig(t *testing.T, dir, stock, env, snippet string) string {
	t.Helper()
	confd := filepath.Join(dir, "conf.d")
	if err := os.MkdirAll(confd, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "prosody.cfg.lua")
	for path, text := range map[string]string{
		cfg:                                      stock,
		filepath.Join(confd, "test-env.cfg.lua"): env,
		filepath.Join(confd, "invitebot.cfg.lua"): snippet,
	} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return cfg
}

// checkEnv is the environment for `prosodyctl check config` alone: a data
// directory of the test's own, and the log nowhere.
func checkEnv(dir string) string {
	return "run_as_root = true\ndata_path = " + luaString(dir) + "\npidfile = " + luaString(filepath.Join(dir, "prosody.pid")) + "\nlog = {}\n"
}

// checkConfig runs `prosodyctl check config`, which must find no problem.
func checkConfig(t *testing.T, prosodyctl, cfg, what string) {
	t.Helper()
	out, err := prosodyctlRun(prosodyctl, cfg, "check", "config")
	if err != nil {
		t.Fatalf("prosodyctl check config (%s): %v\n%s\n--- conf.d/invitebot.cfg.lua ---\n%s", what, err, out, readFile(t, filepath.Join(filepath.Dir(cfg), "conf.d", "invitebot.cfg.lua")))
	}
}

func prosodyctlRun(prosodyctl, cfg string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, prosodyctl, append([]string{"--config", cfg}, args...)...).CombinedOutput()
	return string(out), err
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// enableModule uncomments the snippet's mod_invitebot lines, as its
// comments tell the operator to, with plugin_paths naming moduleDir (this
// repository's copy) instead of the Debian package's folder.
func enableModule(t *testing.T, snippet, moduleDir string) string {
	t.Helper()
	for _, line := range []string{
		`-- plugin_paths = { "/usr/local/lib/prosody/modules", "/usr/share/invitebot/prosody" }`,
		`-- "invitebot";`,
		`-- invitebot_component = `,
	} {
		if n := strings.Count(snippet, line); n != 1 {
			t.Fatalf("the snippet has %q %d times, want once:\n%s", line, n, snippet)
		}
	}
	return strings.NewReplacer(
		`-- plugin_paths = { "/usr/local/lib/prosody/modules", "/usr/share/invitebot/prosody" }`,
		`plugin_paths = { "/usr/local/lib/prosody/modules", `+luaString(moduleDir)+` }`,
		`-- "invitebot";`, `"invitebot";   `,
		`-- invitebot_component = `, `invitebot_component = `,
		`-- invitebot_minter = `, `invitebot_minter = `,
	).Replace(snippet)
}

// prosodyConfigFor prints the snippet for a bot configured against srv.
func prosodyConfigFor(t *testing.T, srv *prosodytest.Server) string {
	t.Helper()
	path := writeConfig(t, fmt.Sprintf("xmpp:\n  component: %s\n  server: %s\n  secret: %s\n  domain: %s\nadmins:\n  - admin@%s\n",
		srv.Component, srv.ComponentAddr, srv.ComponentSecret, srv.Domain, srv.Domain))
	var out, errOut bytes.Buffer
	if code := run([]string{"prosody-config", "-config", path, "-with-secret"}, &out, &errOut); code != 0 {
		t.Fatalf("prosody-config: exit %d: %s", code, errOut.String())
	}
	return out.String()
}

// adminSocketRE finds the admin socket in the harness's own configuration:
// the harness waits for it to accept, and picks a short path for it.
var adminSocketRE = regexp.MustCompile(`(?m)^admin_socket = (".*")$`)

// exampleFor is packaging/prosody-example.cfg.lua made out for srv the
// way its comments tell the operator to, with plugin_paths naming this
// repository's copy of the module instead of the Debian package's folder.
func exampleFor(t *testing.T, srv *prosodytest.Server, moduleDir string) string {
	t.Helper()
	example := readFile(t, filepath.Join(filepath.Dir(moduleDir), "packaging", "prosody-example.cfg.lua"))
	_, port, err := net.SplitHostPort(srv.ComponentAddr)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`"/usr/share/invitebot/prosody"`, `"paste the content of /etc/invitebot/component-secret here"`,
		"component_ports = { 5347 }", `"invites.example.org"`, `"example.org"`} {
		if !strings.Contains(example, s) {
			t.Fatalf("packaging/prosody-example.cfg.lua lacks %s", s)
		}
	}
	return strings.NewReplacer(
		`"/usr/share/invitebot/prosody"`, luaString(moduleDir),
		`"paste the content of /etc/invitebot/component-secret here"`, luaString(srv.ComponentSecret),
		"component_ports = { 5347 }", "component_ports = { "+port+" }",
		`"invites.example.org"`, luaString(srv.Component),
		`"example.org"`, luaString(srv.Domain),
	).Replace(example)
}

// TestProsodyConfigInDebiansConfD: saved in conf.d beside Debian's stock
// prosody.cfg.lua, the snippet adds what the bot needs and takes nothing
// away: Prosody passes its own check, c2s still offers STARTTLS and
// accounts log in, Debian's modules and plugin folder stay, the component
// links and mints, a token registers an account and nothing else does, and
// mod_invitebot loads when its lines are uncommented. The Debian package's
// example, made out for the test's domain, does the same.
func TestProsodyConfigInDebiansConfD(t *testing.T) {
	prosodyctl := prosodyctlUnderTest(t)
	stock := debianStockConfig(t)
	moduleDir, err := prosodytest.ModuleDir()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		snippet func(t *testing.T, srv *prosodytest.Server) string
		module  bool
	}{
		{"as printed", prosodyConfigFor, false},
		{"with mod_invitebot", func(t *testing.T, srv *prosodytest.Server) string {
			return enableModule(t, prosodyConfigFor(t, srv), moduleDir)
		}, true},
		{"packaging example", func(t *testing.T, srv *prosodytest.Server) string {
			return exampleFor(t, srv, moduleDir)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The harness lays out a directory (certificates for the
			// domain and the component, free ports, an admin socket)
			// and starts Prosody; the test then swaps its configuration
			// for Debian's and starts it again.
			srv := prosodytest.Start(t)
			snippet := tc.snippet(t, srv)
			m := adminSocketRE.FindStringSubmatch(readFile(t, srv.ConfigPath))
			if m == nil {
				t.Fatalf("no admin_socket in the harness's %s", srv.ConfigPath)
			}
			if filepath.Dir(srv.ConfigPath) != srv.Dir {
				t.Fatalf("the harness's configuration %s is not in its directory %s", srv.ConfigPath, srv.Dir)
			}
			_, c2sPort, err := net.SplitHostPort(srv.C2SAddr)
			if err != nil {
				t.Fatal(err)
			}
			// Debian's certificates = "certs" is the harness's
			// certificate folder beside prosody.cfg.lua.
			if _, err := os.Stat(filepath.Join(srv.Dir, "certs", srv.Domain+".crt")); err != nil {
				t.Fatal(err)
			}
			env := strings.Join([]string{
				"-- What the test changes in Debian's configuration, and nothing else.",
				"run_as_root = true -- tests run as root",
				"pidfile = " + luaString(filepath.Join(srv.Dir, "prosody.pid")),
				"data_path = " + luaString(srv.DataDir),
				"log = { debug = " + luaString(srv.LogPath) + " }",
				"interfaces = { \"127.0.0.1\" }",
				"c2s_ports = { " + c2sPort + " }",
				"s2s_ports = { } -- no federation, and no fixed port for parallel tests to share",
				"http_ports = { }",
				"https_ports = { }",
				"admin_socket = " + m[1],
				"",
			}, "\n")
			srv.Stop(t)
			cfg := layDebianConfig(t, srv.Dir, stock, env, snippet)
			checkConfig(t, prosodyctl, cfg, tc.name)
			srv.Restart(t)

			if !offersStartTLS(t, srv) {
				t.Fatalf("Prosody %s: c2s does not offer STARTTLS with the snippet in conf.d", srv.Version)
			}

			// Debian's modules are all loaded still, on the domain or
			// globally, and so are the snippet's on the domain.
			onDomain := loadedModules(t, prosodyctl, cfg, srv.Domain)
			global := loadedModules(t, prosodyctl, cfg, "*")
			for mod := range stockModules(t, stock) {
				if !onDomain[mod] && !global[mod] {
					t.Errorf("Prosody %s: Debian's mod_%s is not loaded with the snippet in conf.d", srv.Version, mod)
				}
			}
			want := []string{"register", "invites", "invites_adhoc", "invites_register"}
			if tc.module {
				want = append(want, "invitebot")
			}
			for _, mod := range want {
				if !onDomain[mod] {
					t.Errorf("Prosody %s: the snippet's mod_%s is not loaded on %s", srv.Version, mod, srv.Domain)
				}
			}
			if !tc.module && onDomain["invitebot"] {
				t.Errorf("Prosody %s: mod_invitebot loaded while its lines are commented out", srv.Version)
			}

			// Debian's plugin folder stays where Prosody looks.
			about, err := prosodyctlRun(prosodyctl, cfg, "about")
			if err != nil {
				t.Fatalf("prosodyctl about: %v\n%s", err, about)
			}
			dirs := stockPluginPaths(t, stock)
			if tc.module {
				dirs = append(dirs, moduleDir)
			}
			for _, d := range dirs {
				if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(d) + `/?(\s|$)`).MatchString(about) {
					t.Errorf("Prosody %s: plugin folder %s missing from prosodyctl about:\n%s", srv.Version, d, about)
				}
			}

			// The component links with the secret from the snippet and
			// mints an invite as the bot does.
			ctx, cancel := context.WithTimeout(context.Background(), prosodytest.ReplyTimeout)
			defer cancel()
			conn, err := net.Dial("tcp", srv.ComponentAddr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			domain, comp := jid.MustParse(srv.Domain), jid.MustParse(srv.Component)
			link, err := xmppcomponent.NewSession(ctx, comp, []byte(srv.ComponentSecret), conn)
			if err != nil {
				t.Fatalf("Prosody %s: component link: %v", srv.Version, err)
			}
			go func() { _ = link.Serve(nil) }()
			t.Cleanup(func() { link.Close() })
			minted, err := prosody.NewIssuer(domain, comp, link).Mint(ctx)
			if err != nil {
				t.Fatalf("Prosody %s: mint as the component: %v", srv.Version, err)
			}
			state, err := prosody.NewModule(domain, comp, link, slog.New(slog.NewTextHandler(io.Discard, nil))).Detect(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if wantState := map[bool]invites.ModuleState{false: invites.ModuleAbsent, true: invites.ModulePresent}[tc.module]; state != wantState {
				t.Errorf("Prosody %s: mod_invitebot is %v, want %v", srv.Version, state, wantState)
			}

			// Registration: refused without a token, done with one; the
			// new account logs in (STARTTLS, SCRAM).
			if err := prosodytest.OpenRegistration(t, srv).Register("walkin", "walk-in-pass"); err == nil {
				t.Errorf("Prosody %s: registration without a token succeeded", srv.Version)
			}
			account, err := ibr.Register(ctx, srv.IBRConfig(), minted.Token, "newcomer", "newcomer-pass")
			if err != nil {
				t.Fatalf("Prosody %s: register with the token: %v", srv.Version, err)
			}
			prosodytest.Login(t, srv, account, "newcomer-pass")
		})
	}
}

// offersStartTLS opens a c2s stream to the domain and reports whether its
// features offer STARTTLS.
func offersStartTLS(t *testing.T, srv *prosodytest.Server) bool {
	t.Helper()
	conn, err := net.Dial("tcp", srv.C2SAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(prosodytest.ReplyTimeout)); err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", srv.Domain); err != nil {
		t.Fatal(err)
	}
	var got []byte
	r := bufio.NewReader(conn)
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte("</stream:features>")) {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("Prosody %s: reading c2s stream features: %v; got %q", srv.Version, err, got)
		}
	}
	return bytes.Contains(got, []byte("urn:ietf:params:xml:ns:xmpp-tls"))
}

// moduleLineRE is one module in the output of prosodyctl shell module list.
var moduleLineRE = regexp.MustCompile(`^\s+([\w-]+)\s*$`)

// loadedModules lists the modules loaded on host ("*" for the global ones)
// through prosodyctl shell.
func loadedModules(t *testing.T, prosodyctl, cfg, host string) map[string]bool {
	t.Helper()
	out, err := prosodyctlRun(prosodyctl, cfg, "shell", "module", "list", host)
	if err != nil {
		t.Fatalf("prosodyctl shell module list %s: %v\n%s", host, err, out)
	}
	mods := make(map[string]bool)
	for _, line := range strings.Split(out, "\n") {
		if m := moduleLineRE.FindStringSubmatch(line); m != nil {
			mods[m[1]] = true
		}
	}
	if len(mods) == 0 {
		t.Fatalf("no modules in prosodyctl shell module list %s:\n%s", host, out)
	}
	return mods
}

// fileExists reports whether path names an existing file.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
