package main

import (
	"fmt"
	"os"
	"os/user"
	"runtime"
	"strconv"
	"syscall"
)

// probeAsOwner runs probe, a test of what the bot may do in the file
// system, and returns whom it ran as, for the message ("" when as
// ourselves). Run as root, which may write anywhere, it runs probe with
// the file system identity (fsuid, fsgid) of path's owner instead, on an
// OS thread of its own that is thrown away afterwards: the identity of the
// rest of the process never changes.
func probeAsOwner(path string, probe func() error) (string, error) {
	if os.Geteuid() != 0 {
		return "", probe()
	}
	info, err := os.Stat(path)
	if err != nil {
		return "", probe()
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || st.Uid == 0 {
		return "checked as root, who may write anywhere (run the check as the bot's user to be sure): ", probe()
	}
	who := "as " + ownerName(st.Uid) + ", the owner of " + path + ": "
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, and its
		// changed identity with it.
		runtime.LockOSThread()
		// setfsgid and setfsuid return the previous value and no error;
		// asking again with an impossible value (-1) returns the current
		// one, which says whether the change took.
		syscall.RawSyscall(syscall.SYS_SETFSGID, uintptr(st.Gid), 0, 0)
		syscall.RawSyscall(syscall.SYS_SETFSUID, uintptr(st.Uid), 0, 0)
		cur, _, _ := syscall.RawSyscall(syscall.SYS_SETFSUID, ^uintptr(0), 0, 0)
		if uint32(cur) != st.Uid {
			done <- fmt.Errorf("could not act as the owner (uid %d) of %s", st.Uid, path)
			return
		}
		done <- probe()
	}()
	return who, <-done
}

// ownerName is the user name of uid, or the number.
func ownerName(uid uint32) string {
	id := strconv.FormatUint(uint64(uid), 10)
	if u, err := user.LookupId(id); err == nil {
		return u.Username
	}
	return "uid " + id
}
