// Package packaging builds invitebot's Debian package with nfpm, a
// maintained library that writes the .deb archive format; this package only
// says what goes where. The files it ships that are not Go (the systemd unit,
// the maintainer scripts, the Prosody example) live in packaging/ at the
// repository root; /etc/invitebot/config.yaml is derived from the example
// config.yaml there, so the two cannot drift apart.
//
// scripts/package runs it through its command in ./cmd.
//
// It is a Go module of its own (durare.org/invitebot/tools/packaging): nfpm
// brings some thirty modules the bot never uses, which as part of the bot's
// module were in its go.mod and go.sum and were downloaded by every go test
// ./... and go mod download. Only its tests import the bot (internal/config,
// to load the config the package installs), through a replace of
// durare.org/invitebot with this checkout.
package packaging

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// Package metadata.
const (
	Name        = "invitebot"
	maintainer  = "invitebot developers <invitebot@durare.org>"
	section     = "net"
	description = `XMPP account invitations handed out by trusted people on any server
 invitebot is an XEP-0114 external component that sits next to a Prosody
 server. Trusted people on any XMPP domain message it "invite" and get back
 a single-use XEP-0401 invitation minted by the server, a landing page and a
 QR code. Admins grant and revoke the right to invite by chat; every invite
 and decision is kept in an audit trail.`
)

// Where things are installed. ConfigPath and SecretPath are also named in
// the unit and the maintainer scripts in packaging/.
const (
	BinaryPath = "/usr/bin/invitebot"
	UnitPath   = "/usr/lib/systemd/system/invitebot.service"
	ConfigDir  = "/etc/invitebot"
	ConfigPath = ConfigDir + "/config.yaml"
	SecretPath = ConfigDir + "/component-secret"
	ShareDir   = "/usr/share/invitebot"
	DocDir     = "/usr/share/doc/invitebot"
	ManPath    = "/usr/share/man/man1/invitebot.1.gz"
	// LintianOverrides says which lintian tags are deliberate.
	LintianOverrides = "/usr/share/lintian/overrides/invitebot"
)

// Options says what to package.
type Options struct {
	// Root is the repository root: packaging/, config.yaml, README.md and
	// prosody/ are read from there.
	Root string
	// Binary is the invitebot executable to ship, built for Arch.
	Binary string
	// Version is the Debian version, e.g. 0.0.0~git20261126093000.55e88bd.
	Version string
	// Arch is the Go architecture (amd64, arm64, …); nfpm maps it to
	// Debian's name.
	Arch string
	// Commit is the revision the package is built from; empty when
	// unknown. The changelog names it.
	Commit string
	// MTime stamps every file in the archive; the commit time makes the
	// package reproducible.
	MTime time.Time
	// Work is a scratch directory for generated files (the derived config).
	Work string
}

// Info describes the package for nfpm: metadata, contents with owners and
// modes, maintainer scripts.
func Info(o Options) (*nfpm.Info, error) {
	if o.Version == "" || o.Arch == "" || o.Binary == "" || o.Work == "" {
		return nil, errors.New("packaging: Version, Arch, Binary and Work are required")
	}
	contents, err := contents(o)
	if err != nil {
		return nil, err
	}
	pkg := func(name string) string { return filepath.Join(o.Root, "packaging", name) }
	info := &nfpm.Info{
		Name:          Name,
		Arch:          o.Arch,
		Platform:      "linux",
		Version:       o.Version,
		VersionSchema: "none", // a Debian version already, not semver
		Section:       section,
		Priority:      "optional",
		Maintainer:    maintainer,
		Description:   description,
		MTime:         o.MTime,
		Overridables: nfpm.Overridables{
			Depends:  []string{"passwd"}, // useradd, groupadd in the postinst
			Suggests: []string{"prosody"},
			Contents: contents,
			Scripts: nfpm.Scripts{
				PostInstall: pkg("postinst"),
				PreRemove:   pkg("prerm"),
				PostRemove:  pkg("postrm"),
			},
			Deb: nfpm.Deb{Compression: "xz"},
		},
	}
	return nfpm.WithDefaults(info), nil
}

// contents lists what the package installs: the binary, the unit, the
// configuration derived from config.yaml (written to o.Work, with the
// changelog and the man page), the copyright file, the docs and the
// Prosody module.
func contents(o Options) (files.Contents, error) {
	example, err := os.ReadFile(filepath.Join(o.Root, "config.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read example config: %w", err)
	}
	cfg, err := DeriveConfig(example)
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(o.Work, "config.yaml")
	if err := os.WriteFile(cfgPath, cfg, 0o600); err != nil {
		return nil, fmt.Errorf("write derived config: %w", err)
	}
	changelog, err := Changelog(o.Version, o.Commit, o.MTime)
	if err != nil {
		return nil, err
	}
	changelogPath := filepath.Join(o.Work, "changelog.gz")
	if err := os.WriteFile(changelogPath, changelog, 0o600); err != nil {
		return nil, fmt.Errorf("write changelog: %w", err)
	}

	manSrc, err := os.ReadFile(filepath.Join(o.Root, "packaging", "invitebot.1"))
	if err != nil {
		return nil, fmt.Errorf("read man page: %w", err)
	}
	man, err := ManPage(manSrc, o.Version, o.MTime)
	if err != nil {
		return nil, err
	}
	manPath := filepath.Join(o.Work, "invitebot.1.gz")
	if err := os.WriteFile(manPath, man, 0o600); err != nil {
		return nil, fmt.Errorf("write man page: %w", err)
	}

	pkg := func(name string) string { return filepath.Join(o.Root, "packaging", name) }
	file := func(src, dst string, mode os.FileMode) *files.Content {
		return &files.Content{Source: src, Destination: dst, Type: files.TypeFile,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode}}
	}
	list := files.Contents{
		file(o.Binary, BinaryPath, 0o755),
		file(pkg("invitebot.service"), UnitPath, 0o644),
		{Destination: ConfigDir, Type: files.TypeDir,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o755}},
		// root:root in the archive: the invitebot group does not exist yet
		// when dpkg unpacks. The postinst gives it to the group with a
		// dpkg-statoverride.
		{Source: cfgPath, Destination: ConfigPath, Type: files.TypeConfig,
			FileInfo: &files.ContentFileInfo{Owner: "root", Group: "root", Mode: 0o640}},
		file(pkg("prosody-example.cfg.lua"), ShareDir+"/prosody-example.cfg.lua", 0o644),
		file(filepath.Join(o.Root, "README.md"), DocDir+"/README.md", 0o644),
		file(changelogPath, DocDir+"/changelog.gz", 0o644),
		file(pkg("copyright"), DocDir+"/copyright", 0o644),
		file(manPath, ManPath, 0o644),
		file(pkg("lintian-overrides"), LintianOverrides, 0o644),
	}
	// The README links into docs/: ship the pages and the screenshots they
	// show, so the installed README leads somewhere.
	docs, err := docFiles(o.Root)
	if err != nil {
		return nil, err
	}
	for _, src := range docs {
		list = append(list, file(src, DocDir+"/docs/"+filepath.Base(src), 0o644))
	}
	// The Prosody module is written separately; ship whatever exists.
	lua, err := filepath.Glob(filepath.Join(o.Root, "prosody", "*.lua"))
	if err != nil {
		return nil, fmt.Errorf("find prosody modules: %w", err)
	}
	sort.Strings(lua)
	for _, src := range lua {
		list = append(list, file(src, ShareDir+"/prosody/"+filepath.Base(src), 0o644))
	}

	return list, nil
}

// ManPage is the gzipped man page from its troff source in packaging/,
// its header given the date of the build and the version. Like the
// changelog, the gzip header holds no name or time.
func ManPage(src []byte, version string, at time.Time) ([]byte, error) {
	const th = `.TH INVITEBOT 1 "" "invitebot" "User Commands"`
	if !bytes.Contains(src, []byte(th+"\n")) {
		return nil, fmt.Errorf("man page: no line %s to date", th)
	}
	dated := fmt.Sprintf(`.TH INVITEBOT 1 "%s" "invitebot %s" "User Commands"`, at.UTC().Format("2006-01-02"), version)
	return gzipped(bytes.Replace(src, []byte(th), []byte(dated), 1))
}

// gzipped compresses b at the best level, with an empty header.
func gzipped(b []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return nil, err
	}
	if _, err := zw.Write(b); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Changelog is the gzipped Debian changelog of a package built from commit:
// one entry, since the project's history lives in git. The gzip header holds
// no name or time, so the same inputs give the same bytes.
func Changelog(version, commit string, at time.Time) ([]byte, error) {
	from := "Built from commit " + commit + "."
	if commit == "" {
		from = "Built from a source tree without git."
	}
	text := fmt.Sprintf("%s (%s) unstable; urgency=medium\n\n  * %s\n\n -- %s  %s\n",
		Name, version, from, maintainer, at.UTC().Format(time.RFC1123Z))
	return gzipped([]byte(text))
}

// Build writes the .deb for o into dir and returns its path.
func Build(o Options, dir string) (string, error) {
	info, err := Info(o)
	if err != nil {
		return "", err
	}
	if err := nfpm.Validate(info); err != nil {
		return "", fmt.Errorf("package metadata: %w", err)
	}
	var buf bytes.Buffer
	if err := deb.Default.Package(info, &buf); err != nil {
		return "", fmt.Errorf("build deb: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, deb.Default.ConventionalFileName(info))
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write deb: %w", err)
	}
	return path, nil
}

// docFiles lists the documentation pages (docs/*.md) and the pictures they
// show (docs/*.png), sorted.
func docFiles(root string) ([]string, error) {
	var out []string
	for _, pattern := range []string{"*.md", "*.png"} {
		m, err := filepath.Glob(filepath.Join(root, "docs", pattern))
		if err != nil {
			return nil, fmt.Errorf("find docs: %w", err)
		}
		out = append(out, m...)
	}
	sort.Strings(out)
	return out, nil
}
