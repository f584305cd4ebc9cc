package ejabberdtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"durare.org/invitebot/internal/testserver"
)

// process is one ejabberd started by ejabberdctl foreground, with the
// means to know when all of it exited and to kill all of it.
type process struct {
	cmd *exec.Cmd
	// lifeline is the write end of the pipe the watchdog reads: closing
	// it (or the test binary dying, which closes it too) kills the
	// process group. ejabberdctl does not exec the Erlang VM, and the VM
	// forks helpers, so a signal to the one child we start would not
	// reach them.
	lifeline *os.File
	// gone is closed when the output pipe reaches EOF: every process
	// holding it (ejabberdctl, the VM and its helpers) has exited.
	gone chan struct{}
}

// watchdog is the shell that starts ejabberdctl: a background reader of
// the lifeline (stdin) kills the whole process group when it ends, then
// ejabberdctl replaces the shell.
// (An asynchronous list's stdin is /dev/null unless redirected, hence
// the copy in fd 3.)
const watchdog = `exec 3<&0
(cat <&3 >/dev/null 2>&1; kill -KILL 0) >/dev/null 2>&1 &
exec "$0" "$@" </dev/null 3<&-`

// errPortTaken means a chosen port was bound by someone else before
// ejabberd got to it.
var errPortTaken = errors.New("port already in use")

// start runs ejabberd with the current configuration and waits until it
// listens on the c2s and component ports.
func (s *Server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return errors.New("already running")
	}
	// Only log lines of this run count: after a restart the file still
	// holds the previous run's.
	var offset int64
	if fi, err := os.Stat(s.LogPath); err == nil {
		offset = fi.Size()
	}
	// A pid file a killed run left must not name a process of this one.
	if err := os.Remove(s.pidPath()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	console, err := os.OpenFile(filepath.Join(s.Dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		console.Close()
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		console.Close()
		lifeR.Close()
		lifeW.Close()
		return err
	}
	cmd := exec.Command("/bin/sh", append([]string{"-c", watchdog, s.ctl}, s.ctlArgs("foreground")...)...)
	cmd.Dir = s.Dir
	cmd.Env = s.env()
	cmd.Stdin = lifeR
	cmd.Stdout = outW
	cmd.Stderr = outW
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	lifeR.Close() // the children hold their copies
	outW.Close()
	if err != nil {
		console.Close()
		lifeW.Close()
		outR.Close()
		return fmt.Errorf("run %s: %w", s.ctl, err)
	}
	p := &process{cmd: cmd, lifeline: lifeW, gone: make(chan struct{})}
	go func() {
		_, _ = io.Copy(console, outR)
		outR.Close()
		console.Close()
		close(p.gone)
	}()
	if err := s.awaitListening(p, offset); err != nil {
		p.kill()
		return err
	}
	s.proc = p
	return nil
}

// kill ends the whole process group at once and waits for it.
func (p *process) kill() {
	p.lifeline.Close()
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.gone
	_ = p.cmd.Wait()
}

// stop ends a running ejabberd gracefully, killing it after stopTimeout.
// Stopping a server that is not running is not an error.
func (s *Server) stop() error {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return nil
	}
	ctlErr := s.terminate(p.cmd.Process.Pid)
	timer := time.NewTimer(stopTimeout)
	defer timer.Stop()
	select {
	case <-p.gone:
		p.kill() // only the watchdog is left
		return nil
	case <-timer.C:
		p.kill()
		if ctlErr != nil {
			return fmt.Errorf("ejabberdctl stop failed (%w); killed", ctlErr)
		}
		return fmt.Errorf("ejabberd still running %v after ejabberdctl stop; killed", stopTimeout)
	}
}

// startedRE is the log line ejabberd writes once it runs.
var startedRE = regexp.MustCompile(`ejabberd (\S+) is started in the node`)

// awaitListening waits until ejabberd logged that it started and that it
// accepts on both ports, and the ports accept. The log is the authority:
// a port that accepts could belong to another process.
func (s *Server) awaitListening(p *process, offset int64) error {
	want := []string{
		"Start accepting TCP connections at " + s.C2SAddr + " for ejabberd_c2s",
		"Start accepting TCP connections at " + s.ComponentAddr + " for ejabberd_service",
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		logText := testserver.ReadFrom(s.LogPath, offset)
		if strings.Contains(logText, "eaddrinuse") {
			return errPortTaken
		}
		if m := startedRE.FindStringSubmatch(logText); m != nil && testserver.ContainsAll(logText, want) &&
			testserver.Accepts("tcp", s.C2SAddr) && testserver.Accepts("tcp", s.ComponentAddr) {
			s.Version = m[1]
			return nil
		}
		select {
		case <-p.gone:
			if strings.Contains(testserver.ReadFrom(filepath.Join(s.Dir, "console.log"), 0), "eaddrinuse") {
				return errPortTaken
			}
			return errors.New("ejabberd exited during start-up")
		case <-deadline.C:
			return fmt.Errorf("ejabberd not listening on %s and %s after %v", s.C2SAddr, s.ComponentAddr, startTimeout)
		case <-tick.C:
		}
	}
}

// run runs ejabberdctl COMMAND ARGS against this server's node.
func (s *Server) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.ctl, s.ctlArgs(args...)...)
	cmd.Dir = s.Dir
	cmd.Env = s.env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		// args may hold a password: name only the command.
		return string(out), fmt.Errorf("ejabberdctl %s: %w: %s", args[0], err, bytes.TrimSpace(out))
	}
	return string(out), nil
}

// ctlArgs puts the options that find this server's files before args.
func (s *Server) ctlArgs(args ...string) []string {
	return append([]string{"--config-dir", s.Dir, "--config", s.ConfigPath,
		"--spool", s.spoolDir, "--logs", s.logDir}, args...)
}

// env is the environment of ejabberdctl: HOME in the server's directory,
// so that nothing of the caller's Erlang setup (.erlang.cookie, .erlang)
// takes part.
func (s *Server) env() []string {
	env := []string{"HOME=" + s.Dir}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return env
}

// terminate asks the Erlang VM to stop: SIGTERM, which the VM answers
// with a clean shutdown (init:stop), to the pid ejabberd wrote, if that
// process is in the server's process group pgid (a pid file can outlive
// its process); else ejabberdctl stop, which costs a second VM start.
func (s *Server) terminate(pgid int) error {
	b, err := os.ReadFile(s.pidPath())
	if err == nil {
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if g, gerr := syscall.Getpgid(pid); perr == nil && gerr == nil && g == pgid && pid > 1 {
			if err := syscall.Kill(pid, syscall.SIGTERM); err == nil {
				return nil
			}
		}
	}
	_, err = s.run("stop")
	return err
}

// pidPath is where ejabberd writes its VM's pid (EJABBERD_PID_PATH).
func (s *Server) pidPath() string { return filepath.Join(s.Dir, "ejabberd.pid") }

// tail returns the last lines of ejabberd's log and console output.
func (s *Server) tail() string {
	return testserver.Tail(logTailLines, s.LogPath, filepath.Join(s.logDir, "error.log"), filepath.Join(s.Dir, "console.log"))
}
