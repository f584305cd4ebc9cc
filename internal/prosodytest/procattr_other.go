//go:build !linux

package prosodytest

import (
	"os"
	"syscall"
)

// sigTerm asks Prosody to shut down cleanly.
var sigTerm os.Signal = syscall.SIGTERM

// sysProcAttr has nothing to add where parent-death signals do not exist.
func sysProcAttr() *syscall.SysProcAttr { return nil }
