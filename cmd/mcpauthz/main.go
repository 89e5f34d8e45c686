// Command mcpauthz is a policy-as-code authorization service for the Model
// Context Protocol: an Envoy ext_authz server that decides MCP JSON-RPC
// requests with OPA Rego policies.
//
// This package only wires: configuration, logging, start and graceful stop.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `mcpauthz: authorization decisions for MCP, with OPA Rego policies

Usage:
  mcpauthz serve   [--config FILE] [--grpc-addr ADDR] [--http-addr ADDR] [--bundle PATH]... [--log-level LEVEL]
  mcpauthz eval    [--config FILE] [--bundle PATH]... --request REQ.json
  mcpauthz check   PATH...               compile bundles, print file:line errors
  mcpauthz test    [-v] PATH...          run the bundles' _test.rego files
  mcpauthz token   --sub SUBJECT [--scope "a b"] [--aud URI] [--ttl 1h]   mint a development token
  mcpauthz apikey  create --sub SUBJECT [--scope "a b"] [--team T] [--expires 720h]
  mcpauthz version
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one subcommand and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = cmdServe(ctx, args[1:], stderr)
	case "eval":
		err = cmdEval(ctx, args[1:], stdout, stderr)
	case "check":
		err = cmdCheck(ctx, args[1:], stdout, stderr)
	case "test":
		err = cmdTest(ctx, args[1:], stdout, stderr)
	case "token":
		err = cmdToken(args[1:], stdout, stderr)
	case "apikey":
		err = cmdAPIKey(args[1:], stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "mcpauthz", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "mcpauthz: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 2
		}
		var ee exitError
		if errors.As(err, &ee) {
			if ee.msg != "" {
				fmt.Fprintln(stderr, ee.msg)
			}
			return ee.code
		}
		fmt.Fprintf(stderr, "mcpauthz %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// exitError ends a command with a given exit code (e.g. failed tests).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// newLogger builds the service logger from the log config.
func newLogger(w io.Writer, cfg LogConfig) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
