package store

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// backupReadFlag makes a backup read the database file with O_DIRECT, past
// the page cache; see copyTx.
const backupReadFlag = syscall.O_DIRECT

// dropCache asks the kernel to drop f's clean pages from the page cache.
// Advice only: an error changes nothing that matters, so it is ignored.
func dropCache(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
