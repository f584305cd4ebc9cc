package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"durare.org/invitebot/homeserver"
)

// identifyTimeout bounds asking the server who it is after a link-up.
const identifyTimeout = 20 * time.Second

// serverSoftware is the server program the bot last found on the other
// end of its link; nil until it has been asked.
type serverSoftware = atomic.Pointer[homeserver.Software]

// identifyServer asks the server which program and version it runs, logs
// it when it is new (a server upgraded under a running bot shows up at the
// next link-up), and keeps it for /healthz. A failure is only logged: the
// bot works the same without knowing.
func (a *app) identifyServer() {
	ctx, cancel := context.WithTimeout(context.Background(), identifyTimeout)
	defer cancel()
	sw, err := homeserver.Identify(ctx, a.link, a.cfg.ComponentJID(), a.cfg.DomainJID())
	if err != nil {
		a.log.Warn("could not ask the server which program it runs", slog.Any("err", err))
		return
	}
	a.hs.Set(sw)
	if prev := a.software.Swap(&sw); prev == nil || *prev != sw {
		a.log.Info("the server is "+sw.String(),
			slog.String("server", sw.Name), slog.String("server_version", sw.Version))
	}
}

// ServerSoftware names the server program for /healthz, or "unknown"
// before the bot has asked.
func (h health) ServerSoftware() string {
	if sw := h.software.Load(); sw != nil {
		return sw.String()
	}
	return "unknown"
}
