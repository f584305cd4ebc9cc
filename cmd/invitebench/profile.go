package main

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// profileEnv names the file the profiling build writes its CPU profile to.
const profileEnv = "INVITEBENCH_CPUPROFILE"

// profileWait bounds waiting for the profile after the second SIGUSR1.
const profileWait = 30 * time.Second

// botProfileHook is added to the bot's package main for -cpuprofile.
//
//go:embed botprofile.go
var botProfileHook []byte

// buildBot builds ./cmd/invitebot into dir and returns the binary's path.
// With profiling, botprofile.go joins the build through an overlay; the
// source tree is not touched.
func buildBot(ctx context.Context, dir string, profiling bool) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run invitebench inside the invitebot module (go run ./cmd/invitebench)")
	}
	root := filepath.Dir(gomod)
	bin := filepath.Join(dir, "invitebot")
	args := []string{"build", "-o", bin}
	if profiling {
		hook := filepath.Join(dir, "botprofile.go")
		// Without the build constraint line, or the hook would be ignored.
		src := strings.Replace(string(botProfileHook), "//go:build ignore\n", "", 1)
		if err := os.WriteFile(hook, []byte(src), 0o600); err != nil {
			return "", err
		}
		overlay, err := json.Marshal(map[string]map[string]string{
			"Replace": {filepath.Join(root, "cmd", "invitebot", "zz_invitebench_profile.go"): hook},
		})
		if err != nil {
			return "", err
		}
		overlayPath := filepath.Join(dir, "overlay.json")
		if err := os.WriteFile(overlayPath, overlay, 0o600); err != nil {
			return "", err
		}
		args = append(args, "-overlay", overlayPath)
	}
	args = append(args, "./cmd/invitebot")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/invitebot: %w\n%s", err, out)
	}
	return bin, nil
}

// profileToggle starts (first call) or stops and writes (second call) the
// profiling build's CPU profile.
func (e *env) profileToggle() error {
	return e.bot.cmd.Process.Signal(syscall.SIGUSR1)
}

// awaitProfile waits until the profile at path is complete.
func awaitProfile(ctx context.Context, path string) error {
	deadline := time.Now().Add(profileWait)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("no CPU profile at %s after %v", path, profileWait)
}
