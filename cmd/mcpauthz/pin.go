package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpauthz/mcpauthz/decision/toolpin"
)

// pinFlags are pin's flags.
type pinFlags struct {
	upstream, from string
	headers        []string
	schemas        bool
	timeout        time.Duration
}

func newPinCmd() *cobra.Command {
	var f pinFlags
	cmd := &cobra.Command{
		Use:   "pin (--upstream URL [--header 'Name: value']... | --from FILE) [--schemas]",
		Short: "print the bundle data that pins an MCP server's tools",
		Long: `Print the bundle data document that pins the tools of an MCP server:
{"mcpauthz": {"tools": {<name>: {"sha256": ...}}}}, to commit into a
bundle's data.json. mcpauthz then hides a listed tool whose definition no
longer has that digest and refuses its calls (see "Tool pinning" in
docs/policies.md for what the digest covers).

--upstream lists the tools of a running server over Streamable HTTP
(initialize, then tools/list page by page, with the MCP Go SDK's client);
--header adds a header to every request (repeat it). --from reads a saved
tools/list answer instead: the JSON-RPC response, its result, a JSON array
of pages, or the text/event-stream it came in; "-" reads standard input.
--schemas adds each tool's inputSchema as input_schema, against which
mcpauthz validates the arguments of its calls.`,
		Example: `  mcpauthz pin --upstream http://localhost:3001/mcp --header 'Authorization: Bearer ...' > pins.json
  mcpauthz pin --from tools-list.json --schemas`,
		Args: noArgs(func(string) string { return "--from" }),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdPin(cmd.Context(), &f, cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.upstream, "upstream", "", "`URL` of the MCP server's Streamable HTTP endpoint")
	fs.StringArrayVar(&f.headers, "header", nil, "header sent to --upstream, as 'Name: value' (repeatable)")
	fs.StringVar(&f.from, "from", "", "saved tools/list answer `file` (\"-\": standard input)")
	fs.BoolVar(&f.schemas, "schemas", false, "pin each tool's inputSchema too (input_schema: arguments are validated against it)")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "time allowed for --upstream")
	return cmd
}

func cmdPin(ctx context.Context, f *pinFlags, stdin io.Reader, stdout io.Writer) error {
	if (f.upstream == "") == (f.from == "") {
		return usageError{errors.New("give --upstream URL or --from FILE (one of them)")}
	}
	if f.from != "" && len(f.headers) > 0 {
		return usageError{errors.New("--header goes with --upstream")}
	}
	var (
		tools []map[string]any
		err   error
	)
	if f.from != "" {
		var data []byte
		if f.from == "-" {
			data, err = io.ReadAll(stdin)
		} else {
			data, err = os.ReadFile(f.from)
		}
		if err != nil {
			return fmt.Errorf("reading the tools/list answer: %w", err)
		}
		if tools, err = toolpin.Tools(data); err != nil {
			return fmt.Errorf("%s: %w", f.from, err)
		}
	} else {
		h, err := toolpin.ParseHeaders(f.headers)
		if err != nil {
			return usageError{err}
		}
		ctx, cancel := context.WithTimeout(ctx, f.timeout)
		defer cancel()
		if tools, err = toolpin.Fetch(ctx, f.upstream, h, nil); err != nil {
			return err
		}
	}
	doc, err := toolpin.Document(tools, f.schemas)
	if err != nil {
		return err
	}
	_, err = stdout.Write(doc)
	return err
}
