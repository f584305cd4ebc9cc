package ejabberdtest

import (
	"os"

	"durare.org/invitebot/internal/testcert"
)

// writeCertificate makes one self-signed certificate valid for all hosts
// (and 127.0.0.1), writes it with its key into one PEM file at path (what
// ejabberd's certfiles reads), and returns the certificate's PEM for
// clients to trust.
func writeCertificate(path string, hosts ...string) ([]byte, error) {
	certPEM, keyPEM, err := testcert.New("invitebot ejabberdtest", hosts...)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, append(append([]byte{}, certPEM...), keyPEM...), 0o600); err != nil {
		return nil, err
	}
	return certPEM, nil
}
