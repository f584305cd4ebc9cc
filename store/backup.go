package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
)

// backupWriter writes consistent copies of the whole file.
type backupWriter struct{ *base }

// Backup file names: a fixed prefix and the UTC time, so that names sort in
// time order and pruning can tell backups from anything else in the folder.
const (
	backupPrefix = "invitebot-"
	backupSuffix = ".db"
	backupLayout = "20060102T150405.000Z"
)

// WriteBackup writes a consistent copy of the database into dir and returns
// the file's path. It copies inside one read transaction: writers go on
// meanwhile, and the copy is the database as of the transaction's start. The
// file appears under its final name only once complete (written beside it,
// synced, renamed), owner-only like the database, since it holds live
// tokens.
func (s backupWriter) WriteBackup(ctx context.Context, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	name := backupPrefix + s.now().UTC().Format(backupLayout) + backupSuffix
	final := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, ".partial-"+name+"-*")
	if err != nil {
		return "", fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if err := tmp.Chmod(fileMode); err != nil {
		tmp.Close()
		return "", fmt.Errorf("backup: %w", err)
	}
	err = s.view(ctx, func(tx *bbolt.Tx) error {
		return copyTx(tx, tmp)
	})
	if err == nil {
		err = tmp.Sync()
	}
	if err == nil {
		// Synced, so the pages are clean: nobody reads the backup back
		// here, and a whole copy of the database left in the page cache
		// only pushes out pages that matter.
		dropCache(tmp)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), final)
	}
	if err != nil {
		return "", fmt.Errorf("backup to %s: %w", dir, err)
	}
	return final, nil
}

// copyTx writes the database as of tx to w, reading the file past the page
// cache where the system allows (backupReadFlag). A backup reads every page
// once; through the page cache that read would leave the whole file cached
// in large folios (readahead builds them), and the kernel maps a whole
// cached folio, up to 2 MiB, into the bot on its next random read of any
// page in it (fault-around; bbolt's MADV_RANDOM does not stop it). Measured
// at 100 k invites on Linux 6.18: after a cached backup, one invite mapped
// 38 MiB of the file into the bot and 100 invites 114 MiB; after a direct
// backup 0.1 and 2.2 MiB, as with no backup (docs/PERFORMANCE.md). The
// price is no readahead: each read goes to the disk as asked, so the copy
// reads backupChunk at a time (bigReads). O_DIRECT reads are
// coherent with the page cache (the kernel writes dirty pages back first),
// and the file's pages that are cached stay cached. A file system or
// buffer that the flag does not suit (EINVAL) gets a plain copy instead.
func copyTx(tx *bbolt.Tx, w *os.File) error {
	tx.WriteFlag = backupReadFlag
	buf, release := readBuffer(backupChunk)
	defer release()
	_, err := tx.WriteTo(bigReads{File: w, buf: buf})
	if err == nil || backupReadFlag == 0 || !errors.Is(err, syscall.EINVAL) {
		return err
	}
	if _, err := w.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if err := w.Truncate(0); err != nil {
		return err
	}
	tx.WriteFlag = 0
	_, err = tx.WriteTo(w)
	return err
}

// BackupFile is one backup in a folder: its path, and the time in its name,
// when it was taken by the clock of the store that wrote it.
type BackupFile struct {
	Path string
	Time time.Time
}

// ListBackups returns the backups in dir, oldest first by the time in their
// names. Files that are not backups are left out; a dir that does not exist
// holds none.
func ListBackups(dir string) ([]BackupFile, error) {
	backups, err := listBackups(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	return backups, nil
}

// listBackups returns the backups in dir, oldest first.
func listBackups(dir string) ([]BackupFile, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var backups []BackupFile
	for _, e := range entries {
		name := e.Name()
		if !e.Type().IsRegular() || !strings.HasPrefix(name, backupPrefix) || !strings.HasSuffix(name, backupSuffix) {
			continue
		}
		stamp := strings.TrimSuffix(strings.TrimPrefix(name, backupPrefix), backupSuffix)
		at, err := time.Parse(backupLayout, stamp)
		if err != nil {
			continue
		}
		backups = append(backups, BackupFile{Path: filepath.Join(dir, name), Time: at})
	}
	// Oldest first: the names are times, in a layout that sorts.
	slices.SortFunc(backups, func(a, b BackupFile) int { return strings.Compare(a.Path, b.Path) })
	return backups, nil
}

// PruneBackups removes all but the newest keep backups in dir and returns
// the paths removed. Files that are not backups are left alone.
func PruneBackups(dir string, keep int) ([]string, error) {
	backups, err := listBackups(dir)
	if err != nil {
		return nil, fmt.Errorf("prune backups: %w", err)
	}
	var removed []string
	for len(backups) > max(keep, 0) {
		path := backups[0].Path
		if err := os.Remove(path); err != nil {
			return removed, fmt.Errorf("prune backups: %w", err)
		}
		removed = append(removed, path)
		backups = backups[1:]
	}
	return removed, nil
}

// backupChunk is how much a backup reads at a time. Past the page cache
// there is no readahead, and the size of each read sets the speed: on the
// test VM 32 KiB reads (io.Copy's) ran at 367 MB/s, 1 MiB reads at 1.2 GB/s.
const backupChunk = 1 << 20

// bigReads is the backup file as the destination of bbolt's copy, which
// hands the database file to its ReadFrom (through io.CopyN): it reads into
// buf, which readBuffer aligned for O_DIRECT, instead of io.Copy's small
// buffer of no particular alignment.
type bigReads struct {
	*os.File
	buf []byte
}

// ReadFrom copies r into the file through b.buf.
func (b bigReads) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	for {
		k, err := r.Read(b.buf)
		if k > 0 {
			if _, werr := b.File.Write(b.buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
