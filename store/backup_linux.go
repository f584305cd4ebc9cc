package store

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// backupReadFlag makes a backup read the database file with O_DIRECT, past
// the page cache; see copyTx.
const backupReadFlag = syscall.O_DIRECT

// readBuffer returns a buffer of n bytes aligned to a page, as O_DIRECT
// reads need, and the function that frees it. An anonymous mapping is
// page-aligned by definition, where a Go slice only happens to be; if the
// mapping fails the slice is used, and a read it does not suit fails with
// EINVAL, which copyTx answers with a plain copy.
func readBuffer(n int) ([]byte, func()) {
	buf, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, n), func() {}
	}
	return buf, func() { _ = unix.Munmap(buf) }
}

// dropCache asks the kernel to drop f's clean pages from the page cache.
// Advice only: an error changes nothing that matters, so it is ignored.
func dropCache(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
