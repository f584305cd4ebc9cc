package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// Server timeouts. Browsers and proxies are patient; slow or idle clients
// must not hold connections forever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	// writeTimeout leaves room for a registration, which waits on the XMPP
	// server (registerTimeout).
	writeTimeout   = registerTimeout + 15*time.Second
	idleTimeout    = 2 * time.Minute
	maxHeaderBytes = 16 << 10
	// ShutdownTimeout bounds the graceful shutdown: requests in flight
	// (a registration at most) may finish, then connections are closed.
	ShutdownTimeout = 10 * time.Second
)

// Serve listens on listen (host:port) and serves h until ctx ends, then
// shuts down gracefully within ShutdownTimeout. It returns nil after a
// clean shutdown and an error if it cannot listen or serving fails.
func Serve(ctx context.Context, listen string, h http.Handler, log *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", listen)
	if err != nil {
		return fmt.Errorf("http: listen: %w", err)
	}
	return ServeListener(ctx, ln, h, log)
}

// ServeListener is Serve on a listener the caller opened (tests use port
// 0). It closes ln.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// Requests outlive a cancelled ctx only as long as Shutdown allows.
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	log.Info("http server listening", slog.String("addr", ln.Addr().String()))

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("http: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		log.Warn("http shutdown timed out; closing connections", slog.Any("err", err))
		_ = srv.Close()
	}
	if serr := <-served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("http: serve: %w", serr)
	}
	if err != nil {
		return fmt.Errorf("http: shutdown: %w", err)
	}
	log.Info("http server stopped")
	return nil
}
