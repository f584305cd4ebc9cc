package prosodytest

import (
	"os"
	"syscall"
)

// sigTerm asks Prosody to shut down cleanly.
var sigTerm os.Signal = syscall.SIGTERM

// sysProcAttr makes the kernel kill Prosody if the test binary dies (e.g. on
// go test -timeout), so no orphaned server keeps ports and temp files.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
