package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"

	opaversion "github.com/open-policy-agent/opa/v1/version"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// The command line is built on cobra, as OPA's own is: flags go before or
// after the arguments, `mcpauthz help CMD` and `CMD --help` print that
// command's help (exit 0), each command lists only its own flags, and
// `mcpauthz completion bash|zsh|fish` writes a completion script.

// usageError is a command line the program cannot make sense of (an unknown
// flag or command, an unexpected argument): exit code 2, with a pointer to
// the command's help.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// exitError ends a command with a given exit code (e.g. failed tests).
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

// run executes one command line and returns the process exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWithInput(ctx, args, os.Stdin, stdout, stderr)
}

// runWithInput is run with stdin as the standard input the commands read
// ("-" as a file): a test's, or the process's.
func runWithInput(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	root.SetIn(stdin)
	if len(args) == 0 {
		root.SetOut(stderr)
		_ = root.Usage()
		return 2
	}
	root.SetArgs(longFlagsWithTwoDashes(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, ee.msg)
		}
		return ee.code
	}
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "unknown command") {
		fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), err, cmd.CommandPath())
		return 2
	}
	// A failure to start may quote a URL with its credentials (a bundle
	// server's, an issuer's): stderr is a log too.
	fmt.Fprintf(stderr, "%s: %s\n", cmd.CommandPath(), redact.String(err.Error()))
	return 1
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "mcpauthz",
		Short: "mcpauthz: authorization decisions for MCP, with OPA Rego policies",
		Long: `mcpauthz: authorization decisions for MCP, with OPA Rego policies.

It runs beside Envoy as its external authorizer, and offers the tools a
policy author needs: eval a request, check and test bundles, mint
development tokens and API keys.`,
		Version:       versionString(),
		SilenceUsage:  true,
		SilenceErrors: true,
		// The root command itself takes no arguments; a word that is no
		// command is "unknown command" (cobra's legacy argument check).
	}
	root.SetVersionTemplate("{{.Version}}")
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newServeCmd(),
		newProxyCmd(),
		newEvalCmd(),
		newReplayCmd(),
		newCheckCmd(),
		newTestCmd(),
		newFmtCmd(),
		newTokenCmd(),
		newAPIKeyCmd(),
		newPinCmd(),
		newVersionCmd(),
	)
	root.InitDefaultCompletionCmd()
	return root
}

// noArgs refuses any positional argument, suggesting the flag it was
// probably meant for (suggest returns "" when it cannot tell).
func noArgs(suggest func(arg string) string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unexpected argument %q: %s takes no arguments, only flags", args[0], cmd.Name())
		if s := suggest(args[0]); s != "" {
			msg += fmt.Sprintf("; did you mean %s %s?", s, args[0])
		} else if names := flagNames(cmd.Flags()); names != "" {
			msg += " (" + names + ")"
		}
		return usageError{errors.New(msg)}
	}
}

// suggestConfig suggests --config for a YAML file.
func suggestConfig(arg string) string {
	if strings.HasSuffix(arg, ".yaml") || strings.HasSuffix(arg, ".yml") {
		return "--config"
	}
	return ""
}

// longFlagsWithTwoDashes rewrites "-name" and "-name=v" to "--name" when
// name is a long flag of some command: Go's flag package, which mcpauthz
// used before cobra, took long flags with one dash, and scripts may still
// write them so. Arguments after "--" stay as they are.
func longFlagsWithTwoDashes(root *cobra.Command, args []string) []string {
	long := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		visit := func(f *pflag.Flag) { long[f.Name] = true }
		c.Flags().VisitAll(visit)
		c.PersistentFlags().VisitAll(visit)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		if len(a) < 3 || a[0] != '-' || a[1] == '-' {
			continue
		}
		name, _, _ := strings.Cut(a[1:], "=")
		if len(name) > 1 && long[name] {
			out[i] = "-" + a
		}
	}
	return out
}

// buildCommit is set at build time with -ldflags "-X main.buildCommit=..."
// where the build has no VCS information (a container build without .git).
var buildCommit = ""

// versionInfo is what `mcpauthz version` prints.
type versionInfo struct {
	Version, Commit, Go, OPA string
}

func currentVersion() versionInfo {
	v := versionInfo{Version: version, Commit: buildCommit, Go: runtime.Version(), OPA: opaversion.Version}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v.Version = bi.Main.Version // go install ...@vX.Y.Z
		}
		var modified bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if v.Commit == "" {
					v.Commit = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
		if modified && v.Commit != "" && !strings.HasSuffix(v.Commit, "-dirty") {
			v.Commit += "-dirty"
		}
	}
	if v.Commit == "" {
		v.Commit = "unknown"
	}
	return v
}

func versionString() string {
	v := currentVersion()
	return fmt.Sprintf("mcpauthz %s\ncommit: %s\ngo:     %s\nopa:    %s\n", v.Version, v.Commit, v.Go, v.OPA)
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print the version, commit, Go and OPA versions",
		Args:  noArgs(func(string) string { return "" }),
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := io.WriteString(cmd.OutOrStdout(), versionString())
			return err
		},
	}
}

// flagNames lists a command's flags, for error messages.
func flagNames(fs *pflag.FlagSet) string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if !f.Hidden && f.Name != "help" {
			names = append(names, "--"+f.Name)
		}
	})
	sort.Strings(names)
	return strings.Join(names, ", ")
}
