package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/listplan"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// policyToolFlags are the flags of check and test.
type policyToolFlags struct {
	config  string
	sets    []string
	verbose bool
	watch   bool
	test    bundles.TestOptions
}

// policyToolOptions are the bundle options of check and test: the same
// schema, sandbox, queries and activation as the server, from the given
// paths, or, with none, from the bundles of --config. It also returns what
// was loaded, for the messages.
func policyToolOptions(f *policyToolFlags, paths []string, stderr io.Writer) (bundles.Options, decision.Rules, string, error) {
	if len(paths) == 0 && f.config == "" {
		return bundles.Options{}, decision.Rules{}, "", errors.New("name at least one bundle PATH, or --config FILE to use the configuration's bundles")
	}
	for _, p := range paths {
		if err := notAConfig(p, " (with no PATH, --config uses the configuration's bundles)"); err != nil {
			return bundles.Options{}, decision.Rules{}, "", err
		}
	}
	cfg, err := LoadConfigWith(f.config, f.sets)
	if err != nil {
		return bundles.Options{}, decision.Rules{}, "", err
	}
	rules, err := decision.RulesIn(cfg.Policy.Package)
	if err != nil {
		return bundles.Options{}, decision.Rules{}, "", err
	}
	log := newLogger(stderr, LogConfig{Level: "warn", Format: "text"})
	var sources []bundles.Source
	what := strings.Join(paths, ", ")
	if len(paths) == 0 {
		// The bundles serve would load: the configuration's, or the
		// embedded default policy.
		if sources, err = bundleSources(&cfg, log); err != nil {
			return bundles.Options{}, decision.Rules{}, "", err
		}
		names := make([]string, len(sources))
		for i, s := range sources {
			names[i] = s.Name()
		}
		what = strings.Join(names, ", ") + " (the bundles of " + f.config + ")"
	} else {
		for _, p := range paths {
			sources = append(sources, bundles.DirSource(p))
		}
	}
	opts := bundleOptions(&cfg, sources, rules.Queries(), log, nil)
	return opts, rules, what, nil
}

// notAConfig refuses a bundle path that is a YAML file: a configuration
// given where a bundle (a directory or a .tar.gz) goes, which would
// otherwise fail as "not a directory or a .tar.gz file". note ends the
// message.
func notAConfig(path, note string) error {
	if suggestConfig(path) == "" {
		return nil
	}
	if info, err := os.Stat(path); err != nil || info.IsDir() {
		return nil
	}
	return usageError{fmt.Errorf("%s is a file, not a bundle (a directory or a .tar.gz); if it is a configuration, did you mean --config %s?%s", path, path, note)}
}

func newCheckCmd() *cobra.Command {
	var f policyToolFlags
	cmd := &cobra.Command{
		Use:     "check [PATH...] [flags]",
		Short:   "compile bundles as the server does; print file:line errors",
		Example: "  mcpauthz check policies/ examples/bundles/parameter-rules\n  mcpauthz check --config examples/config/dev.yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmdCheck(cmd.Context(), &f, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&f.config, "config", "", "config `file` (for policy.package and policy.type_check; with no PATH, its bundles are checked)")
	registerSet(cmd.Flags(), &f.sets)
	return cmd
}

func cmdCheck(ctx context.Context, f *policyToolFlags, paths []string, stdout, stderr io.Writer) error {
	opts, rules, what, err := policyToolOptions(f, paths, stderr)
	if err != nil {
		return err
	}
	var plan listplan.Report
	activate := func(s *bundles.Snapshot) (*decision.Policy, error) {
		p, err := rules.Activate(s)
		if err == nil {
			plan = rules.ListPlan(ctx, s)
		}
		return p, err
	}
	if err := bundles.Check(ctx, nil, opts, activate); err != nil {
		return exitError{code: 1, msg: err.Error()}
	}
	fmt.Fprintf(stdout, "ok: %s compiled\n", what)
	for _, line := range plan.Lines() {
		fmt.Fprintln(stdout, line)
	}
	return nil
}

func newTestCmd() *cobra.Command {
	var f policyToolFlags
	cmd := &cobra.Command{
		Use:     "test PATH... [flags]",
		Short:   "run the bundles' _test.rego files (exit 2 when a test fails)",
		Example: "  mcpauthz test policies/ -v",
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmdTest(cmd.Context(), &f, args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.config, "config", "", "config `file` (for policy.package and policy.type_check)")
	registerSet(fs, &f.sets)
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "print every test, and the trace of each failure")
	fs.StringVarP(&f.test.Run, "run", "r", "", "run only the tests whose name (data.pkg.test_x) matches this `regex`")
	fs.StringVarP(&f.test.Format, "format", "f", "pretty", "output `format`: pretty or json")
	fs.BoolVarP(&f.test.Coverage, "coverage", "c", false, "report which policy lines the tests evaluated")
	fs.Float64Var(&f.test.Threshold, "threshold", 0, "fail (exit 2) when coverage is below this `percent`; turns on --coverage")
	fs.DurationVarP(&f.test.Timeout, "timeout", "t", 0, "time allowed for each test (default 5s, as opa test)")
	fs.BoolVarP(&f.watch, "watch", "w", false, "run the tests again whenever a file of the bundles changes (until interrupted)")
	return cmd
}

func cmdTest(ctx context.Context, f *policyToolFlags, paths []string, stdout, stderr io.Writer) error {
	opts, rules, _, err := policyToolOptions(f, paths, stderr)
	if err != nil {
		return err
	}
	to := f.test
	to.Verbose = f.verbose
	if f.watch && len(paths) == 0 {
		return usageError{errors.New("--watch needs the bundle PATHs to watch")}
	}
	if f.watch {
		return watchTests(ctx, paths, stdout, stderr, func() {
			if _, err := bundles.TestWith(ctx, nil, stdout, to, opts, rules.Activate); err != nil {
				fmt.Fprintln(stdout, err)
			}
		})
	}
	sum, err := bundles.TestWith(ctx, nil, stdout, to, opts, rules.Activate)
	if err != nil {
		return exitError{code: 2, msg: err.Error()}
	}
	if sum.Failed > 0 {
		return exitError{code: 2}
	}
	if sum.BelowThreshold {
		return exitError{code: 2, msg: fmt.Sprintf("coverage %.1f%% is below --threshold %.1f%%", sum.Coverage, to.Threshold)}
	}
	return nil
}

type tokenFlags struct {
	sub, scope, aud, key, config string
	sets                         []string
	ttl                          time.Duration
}

func newTokenCmd() *cobra.Command {
	var f tokenFlags
	cmd := &cobra.Command{
		Use:     "token --sub SUBJECT [flags]",
		Short:   "mint a development token (trusted only with tokens.dev: true)",
		Example: `  mcpauthz token --sub alice --scope "mcp:tools"`,
		Args:    noArgs(func(string) string { return "--sub" }),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdToken(&f, cmd.OutOrStdout())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.sub, "sub", "", "token subject (required)")
	fs.StringVar(&f.scope, "scope", "", "space-separated scopes")
	fs.StringVar(&f.aud, "aud", "", "audience: the resource URI (default resource.uri of --config, else https://mcp.example.com/mcp)")
	fs.DurationVar(&f.ttl, "ttl", time.Hour, "lifetime")
	fs.StringVar(&f.key, "key", "", "development key `file` (default: $MCPAUTHZ_DEV_KEY or the user config dir)")
	fs.StringVar(&f.config, "config", "", "config `file` (for resource.uri and tokens.dev_key_file)")
	registerSet(fs, &f.sets)
	return cmd
}

func cmdToken(f *tokenFlags, stdout io.Writer) error {
	sub, scope, aud, ttl, key, configPath := &f.sub, &f.scope, &f.aud, &f.ttl, &f.key, &f.config
	if *sub == "" {
		return errors.New("--sub is required")
	}
	cfg, err := LoadConfigWith(*configPath, f.sets)
	if err != nil {
		return err
	}
	audience := *aud
	if audience == "" {
		audience = cfg.Tokens.Audience
	}
	if audience == "" {
		audience = cfg.Resource.URI
	}
	keyPath := *key
	if keyPath == "" {
		keyPath = cfg.Tokens.DevKeyFile
	}
	tok, err := token.MintDev(token.DevOptions{
		KeyPath: keyPath, Subject: *sub, Audience: audience,
		Scopes: strings.Fields(*scope), TTL: *ttl,
	})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

type apiKeyFlags struct {
	sub, scope, team string
	expires          time.Duration
}

func newAPIKeyCmd() *cobra.Command {
	parent := &cobra.Command{
		Use:   "apikey",
		Short: "manage API keys (mcpauthz apikey create)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New(`name a subcommand: mcpauthz apikey create --sub SUBJECT [--scope "a b"] [--team T] [--expires 720h]`)}
		},
	}
	var f apiKeyFlags
	create := &cobra.Command{
		Use:     "create --sub SUBJECT [flags]",
		Short:   "create an API key and print the bundle data entry for it",
		Example: `  mcpauthz apikey create --sub ci-bot --scope "mcp:tools" --team platform`,
		Args:    noArgs(func(string) string { return "--sub" }),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdAPIKey(&f, cmd.OutOrStdout())
		},
	}
	fs := create.Flags()
	fs.StringVar(&f.sub, "sub", "", "subject the key stands for (required)")
	fs.StringVar(&f.scope, "scope", "", "space-separated scopes")
	fs.StringVar(&f.team, "team", "", "team")
	fs.DurationVar(&f.expires, "expires", 0, "lifetime (0: never expires)")
	parent.AddCommand(create)
	return parent
}

func cmdAPIKey(f *apiKeyFlags, stdout io.Writer) error {
	sub, scope, team, expires := &f.sub, &f.scope, &f.team, &f.expires
	if *sub == "" {
		return errors.New("--sub is required")
	}
	var exp time.Time
	if *expires > 0 {
		exp = time.Now().Add(*expires).UTC().Truncate(time.Second)
	}
	key, hash, entry, err := token.GenerateAPIKey(*sub, strings.Fields(*scope), *team, exp)
	if err != nil {
		return err
	}
	doc := map[string]any{"mcpauthz": map[string]any{"api_keys": map[string]any{hash: entry}}}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "API key (shown once; give it to %s, store it nowhere else):\n  %s\n\n", *sub, key)
	fmt.Fprintf(stdout, "Add this entry to your bundle's data (data.mcpauthz.api_keys); only the SHA-256 hash is stored:\n%s\n", b)
	fmt.Fprintf(stdout, "\nMerge it into the data.json (or data.yaml) at the root of the bundle, or save the inner object\n"+
		"(the hash and its entry) as mcpauthz/api_keys/data.json in the bundle. OPA reads data only from files\n"+
		"named data.json and data.yaml: any other file name is ignored and the key will not work.\n")
	return nil
}
