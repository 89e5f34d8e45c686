// Command mcpauthz is a policy-as-code authorization service for the Model
// Context Protocol: an Envoy ext_authz server that decides MCP JSON-RPC
// requests with OPA Rego policies.
//
// This package only wires: configuration, logging, start and graceful stop.
package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newLogger builds the service logger from the log config.
func newLogger(w io.Writer, cfg LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	// Every line passes through the credential erasure (redact.LogAttr):
	// a token in an error, a URL with user info, a JWT a client sent as
	// a session id is never written.
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: redact.LogAttr}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	// JSON would print a time.Duration as integer nanoseconds; write it
	// as text ("1.5s"), as the text format and the configuration do.
	opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return redact.LogAttr(groups, a)
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
