//go:build !linux

package store

import "os"

// backupReadFlag is zero where O_DIRECT is not known: backups read through
// the page cache.
const backupReadFlag = 0

// dropCache does nothing where posix_fadvise is not at hand.
func dropCache(*os.File) {}
