package config

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
)

// Defaults for the log keys an admin may leave out.
const (
	DefaultLogLevel  = "info"
	DefaultLogFormat = "text"
)

// LogConfig selects log verbosity and encoding.
type LogConfig struct {
	// Level is debug, info, warn or error.
	Level string `mapstructure:"level"`
	// Format is text, json or journal: text with each line's syslog
	// priority in front ("<6>") and no time, for journald (sd-daemon(3)).
	// Under systemd, with standard error going to the journal, text is
	// written as journal.
	Format string `mapstructure:"format"`
}

// logLevels maps the accepted log.level values to slog levels.
var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// logFormats lists the accepted log.format values.
var logFormats = []string{"text", "json", "journal"}

func (l *LogConfig) validate() []error {
	var errs []error
	level := strings.ToLower(l.Level)
	if _, ok := logLevels[level]; ok {
		l.Level = level
	} else {
		errs = append(errs, fmt.Errorf("log.level: %q is not one of debug, info, warn, error", l.Level))
	}
	format := strings.ToLower(l.Format)
	if slices.Contains(logFormats, format) {
		l.Format = format
	} else {
		errs = append(errs, fmt.Errorf("log.format: %q is not one of %s", l.Format, strings.Join(logFormats, ", ")))
	}
	return errs
}

// SlogLevel returns the slog level named by log.level, info if unknown.
func (c *Config) SlogLevel() slog.Level {
	if l, ok := logLevels[strings.ToLower(c.Log.Level)]; ok {
		return l
	}
	return slog.LevelInfo
}
