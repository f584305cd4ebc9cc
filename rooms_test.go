// The rooms of docs/architecture.md, checked: each package may import only
// what its room allows. A forbidden import fails this test with the rule it
// breaks, so a wall cannot leak by accident. Test code may cross walls the
// way cmd does (a web test wires a real Prosody issuer), so only what a
// package's own code imports is checked.
package invitebot_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// module is this repository's module path.
const module = "durare.org/invitebot"

// policyStdlib is all policy may import: pure helpers of the standard
// library. policy decides over data it is given; anything that reads a
// clock of its own, a file, the network or another room does not belong.
var policyStdlib = map[string]bool{
	"errors": true, "fmt": true, "maps": true, "math": true, "slices": true,
	"sort": true, "strconv": true, "strings": true, "time": true,
}

// roomRules says, for a package (module-relative path) and one of its
// imports, why that import is forbidden; "" when it is allowed.
func roomRules(pkg, imp string) string {
	rel, inModule := strings.CutPrefix(imp, module+"/")
	in := func(room string) bool { return pkg == room || strings.HasPrefix(pkg, room+"/") }
	is := func(room string) bool { return inModule && (rel == room || strings.HasPrefix(rel, room+"/")) }
	switch {
	case inModule && is("cmd"):
		return "nothing imports cmd: it only wires"
	case (in("bot") || in("web")) && is("store"):
		return "front ends reach data through invites, never the store"
	case (in("bot") || in("web")) && is("homeserver"):
		return "front ends use the invites service, never the server's protocol; cmd wires the server"
	case in("bot") && is("web"), in("web") && is("bot"):
		return "bot and web are separate front ends; cmd wires them"
	case in("policy") && !policyStdlib[imp]:
		return "policy is pure decisions: standard library helpers only, no I/O and no other room"
	case in("store") && inModule:
		return "store knows no other room"
	case in("invites") && (is("bot") || is("web")):
		return "invites is the domain; front ends depend on it, not the other way"
	case in("invites") && is("homeserver"):
		return "invites names what it needs from a server as interfaces; homeserver implements them"
	case in("invites") && strings.HasPrefix(imp, "mellium.im/") && imp != "mellium.im/xmpp/jid":
		return "invites never sees a stanza: of mellium it may use jid only"
	case in("homeserver") && inModule && !is("homeserver") && !is("invites") && !is("internal"):
		return "homeserver speaks to the server for invites: it knows no front end, the store or policy"
	case in("homeserver/ibr") && inModule && !is("internal"):
		return "the registration client is a leaf: it knows no room"
	}
	return ""
}

func TestRoomRulesCatchForbiddenImports(t *testing.T) {
	tests := []struct {
		pkg, imp string
		allowed  bool
	}{
		{"bot", module + "/store", false},
		{"bot", module + "/homeserver/ibr", false},
		{"bot", module + "/homeserver/prosody", false},
		{"web", module + "/homeserver", false},
		{"invites", module + "/homeserver/prosody", false},
		{"invites", "mellium.im/xmpp/stanza", false},
		{"invites", "mellium.im/xmlstream", false},
		{"invites", "mellium.im/xmpp/jid", true},
		{"homeserver/prosody", module + "/invites", true},
		{"homeserver/prosody", module + "/homeserver/adhoc", true},
		{"homeserver/ejabberd", module + "/invites", true},
		{"homeserver/ejabberd", module + "/homeserver/adhoc", true},
		{"homeserver/ejabberd", module + "/homeserver", true},
		{"homeserver/ejabberd", module + "/store", false},
		{"homeserver/ejabberd", module + "/policy", false},
		{"bot", module + "/homeserver/ejabberd", false},
		{"web", module + "/homeserver/ejabberd", false},
		{"invites", module + "/homeserver/ejabberd", false},
		{"homeserver/minter", module + "/bot", false},
		{"homeserver/adhoc", module + "/store", false},
		{"homeserver/ibr", module + "/invites", false},
		{"cmd/invitebot", module + "/homeserver/prosody", true},
		{"bot", module + "/invites", true},
		{"web", module + "/store", false},
		{"web/internal/screenshots", module + "/store", false},
		{"web", module + "/bot", false},
		{"policy", "os", false},
		{"policy", "net/http", false},
		{"policy", module + "/store", false},
		{"policy", "time", true},
		{"store", module + "/invites", false},
		{"store", module + "/bot", false},
		{"store", "go.etcd.io/bbolt", true},
		{"invites", module + "/bot", false},
		{"invites", module + "/web", false},
		{"invites", module + "/store", true},
		{"invites", module + "/cmd/invitebot", false},
		{"cmd/invitebot", module + "/store", true},
	}
	for _, tt := range tests {
		if got := roomRules(tt.pkg, tt.imp) == ""; got != tt.allowed {
			t.Errorf("%s importing %s: allowed = %v, want %v", tt.pkg, tt.imp, got, tt.allowed)
		}
	}
}

// listedPackage is the part of `go list -json` this test reads.
type listedPackage struct {
	ImportPath string
	Imports    []string
}

func TestRoomsHold(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-json", module+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs, err := decodePackages(string(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 8 {
		t.Fatalf("go list found %d packages; the module has more, so the check would prove nothing", len(pkgs))
	}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, module+"/")
		for _, imp := range p.Imports {
			if why := roomRules(rel, imp); why != "" {
				t.Errorf("%s imports %s: %s", rel, imp, why)
			}
		}
	}
}

// decodePackages reads the stream of JSON objects go list -json prints.
func decodePackages(s string) ([]listedPackage, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	var pkgs []listedPackage
	for {
		var p listedPackage
		err := dec.Decode(&p)
		if errors.Is(err, io.EOF) {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("decode go list output: %w", err)
		}
		pkgs = append(pkgs, p)
	}
}
