package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/spf13/cobra"
)

type fmtFlags struct {
	check bool
	diff  bool
}

func newFmtCmd() *cobra.Command {
	var f fmtFlags
	cmd := &cobra.Command{
		Use:   "fmt PATH... [flags]",
		Short: "format .rego files with OPA's formatter (opa fmt); --check only reports",
		Long: `Format the .rego files at PATH (files, or directories walked recursively)
with OPA's formatter, in Rego v1, rewriting each file that changes and
naming it. With --check nothing is written: the files that need formatting
are named and the exit code is 1 when there is any.`,
		Example: "  mcpauthz fmt policies/\n  mcpauthz fmt --check policies/ examples/bundles/",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError{errors.New("name at least one .rego file or directory")}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmdFmt(&f, args, cmd.OutOrStdout())
		},
	}
	cmd.Flags().BoolVar(&f.check, "check", false, "write nothing; name the files that need formatting and exit 1 if any")
	cmd.Flags().BoolVarP(&f.diff, "diff", "d", false, "with --check, also print each file as it would be formatted")
	return cmd
}

func cmdFmt(f *fmtFlags, paths []string, stdout io.Writer) error {
	files, err := regoFiles(paths)
	if err != nil {
		return err
	}
	var errs []string
	var unformatted []string
	for _, p := range files {
		src, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		out, err := format.SourceWithOpts(p, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, strings.TrimSpace(err.Error()))
			continue
		}
		if bytes.Equal(src, out) {
			continue
		}
		unformatted = append(unformatted, p)
		if f.check {
			fmt.Fprintln(stdout, p)
			if f.diff {
				fmt.Fprintf(stdout, "--- %s formatted:\n%s", p, out)
			}
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if err := os.WriteFile(p, out, info.Mode().Perm()); err != nil {
			errs = append(errs, err.Error())
			continue
		}
		fmt.Fprintln(stdout, p)
	}
	if len(errs) > 0 {
		return exitError{code: 1, msg: strings.Join(errs, "\n")}
	}
	if f.check && len(unformatted) > 0 {
		return exitError{code: 1, msg: fmt.Sprintf("%d file(s) need formatting: run mcpauthz fmt %s", len(unformatted), strings.Join(paths, " "))}
	}
	return nil
}

// regoFiles lists the .rego files at paths, directories walked, in order.
func regoFiles(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !info.IsDir() {
			out = append(out, p)
			continue
		}
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !d.IsDir() && strings.HasSuffix(path, ".rego") {
				out = append(out, path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(out)
	return out, nil
}
