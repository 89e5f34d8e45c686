// Package upstream gives an allowed request the credential it carries to
// the MCP server behind mcpauthz. MCP forbids passing the client's token
// through, yet the server often needs one: an entry either exchanges the
// caller's token for one issued to the server (OAuth 2.0 Token Exchange,
// RFC 8693) or sets a static header read from a file.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
)

// None is the policy's decision.upstream_credential that sends no
// credential upstream, whatever entry matches.
const None = "none"

// Entry is one upstream credential.
type Entry struct {
	// Name is how a policy chooses the entry (decision.upstream_credential).
	Name string
	// Context selects the requests the entry serves without a choice by
	// the policy: every key must equal the request's context extension of
	// that name (e.g. {"mcp_server": "files"}). Empty matches every request.
	Context map[string]string
	// Exchange or Static is how the credential is made; exactly one.
	Exchange *Exchange
	Static   *Static
}

// Static sets one header to a fixed value.
type Static struct {
	// Header is the lowercase header name; Value its value.
	Header, Value string
}

// Options configures Credentials.
type Options struct {
	Entries []Entry
	// HTTPClient calls token endpoints; default a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// CacheSize bounds the exchanged tokens kept per entry; default 10,000.
	CacheSize int
	Logger    *slog.Logger
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

// Credentials chooses the upstream credential of each allowed request and
// makes it. It is safe for concurrent use.
type Credentials struct {
	entries []*entry
	byName  map[string]*entry
	log     *slog.Logger
}

var _ decision.UpstreamCredentials = (*Credentials)(nil)

// entry is one configured Entry, ready to use.
type entry struct {
	Entry
	static   []decision.Header // the static header, built once; read-only
	exchange *exchanger        // nil for a static entry
}

// New checks opts and builds Credentials.
func New(opts Options) (*Credentials, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	c := &Credentials{byName: map[string]*entry{}, log: opts.Logger}
	for i, e := range opts.Entries {
		en, err := newEntry(e, &opts)
		if err != nil {
			return nil, fmt.Errorf("upstream credential %d (%q): %w", i, e.Name, err)
		}
		c.entries = append(c.entries, en)
		c.byName[e.Name] = en
	}
	return c, nil
}

func newEntry(e Entry, opts *Options) (*entry, error) {
	switch {
	case e.Name == "":
		return nil, errors.New("a name is required")
	case e.Name == None:
		return nil, fmt.Errorf("%q is the policy's way of choosing no credential", None)
	case (e.Exchange == nil) == (e.Static == nil):
		return nil, errors.New("set exactly one of token_exchange and static")
	}
	en := &entry{Entry: e}
	if s := e.Static; s != nil {
		if !validHeaderName(s.Header) {
			return nil, fmt.Errorf("static header %q is not a lowercase HTTP header name", s.Header)
		}
		if s.Value == "" || strings.ContainsAny(s.Value, "\r\n\x00") {
			return nil, errors.New("the static value is empty or has a control character")
		}
		en.static = []decision.Header{{Name: s.Header, Value: s.Value}}
		return en, nil
	}
	x, err := newExchanger(e.Exchange, opts)
	if err != nil {
		return nil, err
	}
	en.exchange = x
	return en, nil
}

// Upstream returns the header that carries the upstream credential of an
// allowed request: the entry the policy chose by name, or else the first
// whose Context matches; none when the policy said "none" or no entry
// applies. An exchange that fails is an error, and the request is denied.
// The headers returned are shared and must not be changed.
func (c *Credentials) Upstream(ctx context.Context, r *decision.UpstreamRequest) ([]decision.Header, error) {
	en, err := c.choose(r)
	if en == nil || err != nil {
		return nil, err
	}
	if en.exchange == nil {
		return en.static, nil
	}
	hs, err := en.exchange.headers(ctx, r)
	if err != nil {
		c.log.Warn("token exchange failed; denying", "credential", en.Name, "error", err)
		return nil, fmt.Errorf("token exchange for %q failed: %w", en.Name, err)
	}
	return hs, nil
}

// choose picks the entry for r.
func (c *Credentials) choose(r *decision.UpstreamRequest) (*entry, error) {
	switch r.Choice {
	case None:
		return nil, nil
	case "":
		for _, en := range c.entries {
			if matches(en.Context, r.Context) {
				return en, nil
			}
		}
		return nil, nil
	}
	en, ok := c.byName[r.Choice]
	if !ok {
		return nil, fmt.Errorf("the policy chose upstream credential %q, which is not configured", r.Choice)
	}
	return en, nil
}

// matches reports whether every key of want has its value in got.
func matches(want, got map[string]string) bool {
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is a lowercase RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// checkURL refuses a token endpoint that is not an absolute http(s) URL.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("token_url %q is not an http(s) URL", raw)
	}
	return nil
}
