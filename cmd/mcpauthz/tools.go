package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// policyToolOptions are the bundle options of check and test: the same
// schema, sandbox, queries and activation as the server, from the given
// paths.
func policyToolOptions(fs *flag.FlagSet, args []string, stderr io.Writer) (bundles.Options, decision.Rules, *bool, error) {
	configPath := fs.String("config", "", "config `file` (for policy.package and policy.type_check)")
	verbose := fs.Bool("v", false, "verbose: print every test")
	if err := fs.Parse(args); err != nil {
		return bundles.Options{}, decision.Rules{}, nil, err
	}
	if fs.NArg() == 0 {
		return bundles.Options{}, decision.Rules{}, nil, errors.New("name at least one bundle PATH")
	}
	cfg, err := LoadConfig(*configPath)
	if err != nil {
		return bundles.Options{}, decision.Rules{}, nil, err
	}
	rules, err := decision.RulesIn(cfg.Policy.Package)
	if err != nil {
		return bundles.Options{}, decision.Rules{}, nil, err
	}
	sources := make([]bundles.Source, 0, fs.NArg())
	for _, p := range fs.Args() {
		sources = append(sources, bundles.DirSource(p))
	}
	log := newLogger(stderr, LogConfig{Level: "warn", Format: "text"})
	opts := bundleOptions(&cfg, sources, rules.Queries(), log, nil)
	return opts, rules, verbose, nil
}

func cmdCheck(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts, rules, _, err := policyToolOptions(fs, args, stderr)
	if err != nil {
		return err
	}
	if err := bundles.Check(ctx, fs.Args(), opts, rules.Activate); err != nil {
		return exitError{code: 1, msg: err.Error()}
	}
	fmt.Fprintf(stdout, "ok: %s compiled\n", strings.Join(fs.Args(), ", "))
	return nil
}

func cmdTest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	opts, rules, verbose, err := policyToolOptions(fs, args, stderr)
	if err != nil {
		return err
	}
	_, failed, err := bundles.Test(ctx, fs.Args(), stdout, *verbose, opts, rules.Activate)
	if err != nil {
		return exitError{code: 2, msg: err.Error()}
	}
	if failed > 0 {
		return exitError{code: 2}
	}
	return nil
}

func cmdToken(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "token subject (required)")
	scope := fs.String("scope", "", "space-separated scopes")
	aud := fs.String("aud", "", "audience: the resource URI (default resource.uri of --config, else https://mcp.example.com/mcp)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime")
	key := fs.String("key", "", "development key `file` (default: $MCPAUTHZ_DEV_KEY or the user config dir)")
	configPath := fs.String("config", "", "config `file` (for resource.uri and tokens.dev_key_file)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *sub == "" {
		return errors.New("--sub is required")
	}
	cfg, err := LoadConfig(*configPath)
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

func cmdAPIKey(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "create" {
		return errors.New("usage: mcpauthz apikey create --sub SUBJECT [--scope \"a b\"] [--team T] [--expires 720h]")
	}
	fs := flag.NewFlagSet("apikey create", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sub := fs.String("sub", "", "subject the key stands for (required)")
	scope := fs.String("scope", "", "space-separated scopes")
	team := fs.String("team", "", "team")
	expires := fs.Duration("expires", 0, "lifetime (0: never expires)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
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
	return nil
}
