package packaging

import (
	"bytes"
	"fmt"
)

// configHeader opens the installed /etc/invitebot/config.yaml.
const configHeader = `# /etc/invitebot/config.yaml, installed by the invitebot Debian package.
# Your edits are kept on upgrade (a dpkg conffile). Readable by root and the
# invitebot group only.
#
# To start:
#   1. Set xmpp.component, xmpp.domain and admins below.
#   2. Put the component secret into Prosody's Component block
#      (see /usr/share/invitebot/prosody-example.cfg.lua):
#        sudo cat /etc/invitebot/component-secret
#   3. sudo invitebot check-config -config /etc/invitebot/config.yaml
#      sudo systemctl enable --now invitebot
#
# The secret: the package generated /etc/invitebot/component-secret (root
# only). The systemd unit hands it to the service with LoadCredential= and
# INVITEBOT_XMPP_SECRET_FILE, which overrides xmpp.secret_file below; keep
# xmpp.secret empty. The database lives in /var/lib/invitebot (the unit's
# StateDirectory); dpkg --purge deletes it.
#
`

// Lines of the example config.yaml that the installed one changes. Each must
// occur exactly once, so an edit to the example that moves them fails the
// build instead of shipping a config that silently differs. The store path
// is right in the example already: that line is only checked.
var configEdits = []struct{ old, new string }{
	{`  secret_file: ""` + "\n", `  secret_file: ` + SecretPath + "\n"},
	{`  path: /var/lib/invitebot/invitebot.db` + "\n", `  path: /var/lib/invitebot/invitebot.db` + "\n"},
}

// DeriveConfig turns the repository's example config.yaml into the one the
// package installs: the secret read from SecretPath and the database under
// /var/lib/invitebot, with a header saying how the package is set up.
func DeriveConfig(example []byte) ([]byte, error) {
	out := example
	for _, e := range configEdits {
		if n := bytes.Count(out, []byte(e.old)); n != 1 {
			return nil, fmt.Errorf("derive config: example config.yaml has %d lines %q, want exactly 1", n, bytes.TrimSpace([]byte(e.old)))
		}
		out = bytes.Replace(out, []byte(e.old), []byte(e.new), 1)
	}
	return append([]byte(configHeader), out...), nil
}
