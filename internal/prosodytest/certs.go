package prosodytest

import (
	"os"
	"path/filepath"

	"durare.org/invitebot/internal/testcert"
)

// writeCertificates makes one self-signed certificate valid for all hosts
// (and 127.0.0.1), writes it as <host>.crt/<host>.key into dir for each host,
// where Prosody's "certificates" directory lookup finds it, and returns its
// PEM for clients to trust.
func writeCertificates(dir string, hosts ...string) ([]byte, error) {
	certPEM, keyPEM, err := testcert.New("invitebot prosodytest", hosts...)
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if err := os.WriteFile(filepath.Join(dir, h+".crt"), certPEM, 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(dir, h+".key"), keyPEM, 0o600); err != nil {
			return nil, err
		}
	}
	return certPEM, nil
}
