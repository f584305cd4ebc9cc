//go:build !linux

package store

import "os"

// backupReadFlag is zero where O_DIRECT is not known: backups read through
// the page cache.
const backupReadFlag = 0

// readBuffer returns a buffer of n bytes; nothing here needs alignment.
func readBuffer(n int) ([]byte, func()) { return make([]byte, n), func() {} }

// dropCache does nothing where posix_fadvise is not at hand.
func dropCache(*os.File) {}
