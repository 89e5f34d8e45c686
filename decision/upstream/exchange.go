package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/internal/gencache"
)

// RFC 8693 names.
const (
	grantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
	// TokenTypeAccessToken is the type of the subject token (the caller's
	// access token) and the default requested type.
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
)

const (
	defaultExchangeCacheSize = 10_000
	// defaultExchangedTTL is how long a token whose answer has no
	// expires_in is kept.
	defaultExchangedTTL = time.Minute
	// renewBefore is how long before its expiry an exchanged token is
	// exchanged again, so that no request carries one about to lapse.
	renewBefore      = 30 * time.Second
	maxTokenResponse = 1 << 20
)

// Exchange configures an RFC 8693 token exchange at the authorization
// server: the caller's access token is the subject token, and the token
// issued in exchange goes upstream as "authorization: Bearer <token>".
type Exchange struct {
	// TokenURL is the authorization server's token endpoint.
	TokenURL string
	// ClientID and ClientSecret authenticate mcpauthz to it with HTTP
	// Basic (client_secret_basic, RFC 6749 §2.3.1), unless PrivateKeyJWT
	// is set.
	ClientID, ClientSecret string
	// PrivateKeyJWT, when set, authenticates with a JWT signed by the
	// client's key instead of a secret (private_key_jwt).
	PrivateKeyJWT *PrivateKeyJWT
	// Audience and Scope say what the new token is for (the MCP server's
	// identifier, the scopes it needs); "" sends none.
	Audience, Scope string
	// RequestedTokenType is the type asked for; default an access token.
	RequestedTokenType string
}

// exchanger runs the exchanges of one entry and caches their tokens per
// caller, audience and scope until shortly before they expire; concurrent
// requests of one caller share one exchange.
type exchanger struct {
	cfg    Exchange
	client *http.Client
	now    func() time.Time
	cache  *gencache.Cache[cacheKey, exchanged]
	flight singleflight.Group
}

// cacheKey names a caller: the issuer and subject of the verified token
// (a subject is only unique within its issuer), or the token itself when
// it has no subject. Audience and scope are the entry's, fixed per
// exchanger.
type cacheKey struct {
	issuer, subject, token string
}

// exchanged is a token issued in exchange, as the header that carries it
// (built once: a cache hit allocates nothing), and when to stop using it.
type exchanged struct {
	headers []decision.Header
	until   time.Time
}

func newExchanger(x *Exchange, opts *Options) (*exchanger, error) {
	if err := checkURL(x.TokenURL); err != nil {
		return nil, err
	}
	if x.ClientID == "" {
		return nil, errors.New("token_exchange.client_id is required")
	}
	if x.PrivateKeyJWT != nil {
		if x.ClientSecret != "" {
			return nil, errors.New("a client secret and private_key_jwt are exclusive")
		}
		if err := x.PrivateKeyJWT.check(); err != nil {
			return nil, fmt.Errorf("private_key_jwt: %w", err)
		}
	}
	cfg := *x
	if cfg.RequestedTokenType == "" {
		cfg.RequestedTokenType = TokenTypeAccessToken
	}
	size := opts.CacheSize
	if size <= 0 {
		size = defaultExchangeCacheSize
	}
	return &exchanger{
		cfg:    cfg,
		client: opts.HTTPClient,
		now:    opts.Now,
		cache:  gencache.New[cacheKey, exchanged](size),
	}, nil
}

// headers returns the authorization header of r's caller's exchanged
// token, from the cache or from one exchange shared by the concurrent
// requests of that caller.
func (x *exchanger) headers(ctx context.Context, r *decision.UpstreamRequest) ([]decision.Header, error) {
	if r.Raw == "" {
		return nil, errors.New("the request carries no bearer token to exchange")
	}
	k := cacheKey{token: r.Raw}
	if t := r.Token; t != nil && t.Valid && t.Subject != "" {
		k = cacheKey{issuer: t.Issuer, subject: t.Subject}
	}
	now := x.now()
	if e, ok := x.cache.Get(k); ok && now.Before(e.until) {
		return e.headers, nil
	}
	flightKey := k.issuer + "\x00" + k.subject + "\x00" + k.token
	ch := x.flight.DoChan(flightKey, func() (any, error) {
		// The exchange outlives a caller that gives up: others wait for it.
		e, err := x.exchange(context.WithoutCancel(ctx), r.Raw)
		if err == nil {
			x.cache.Put(k, e)
		}
		return e, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(exchanged).headers, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// tokenResponse is the part of a token endpoint's answer we read.
type tokenResponse struct {
	AccessToken     string      `json:"access_token"`
	IssuedTokenType string      `json:"issued_token_type"`
	TokenType       string      `json:"token_type"`
	ExpiresIn       json.Number `json:"expires_in"`
	Error           string      `json:"error"`
	ErrorDesc       string      `json:"error_description"`
}

// exchange asks the token endpoint for a token in exchange for subject.
func (x *exchanger) exchange(ctx context.Context, subject string) (exchanged, error) {
	form := url.Values{
		"grant_type":           {grantTokenExchange},
		"subject_token":        {subject},
		"subject_token_type":   {TokenTypeAccessToken},
		"requested_token_type": {x.cfg.RequestedTokenType},
	}
	if x.cfg.Audience != "" {
		form.Set("audience", x.cfg.Audience)
	}
	if x.cfg.Scope != "" {
		form.Set("scope", x.cfg.Scope)
	}
	sent := x.now()
	if pk := x.cfg.PrivateKeyJWT; pk != nil {
		assertion, err := pk.assertion(x.cfg.ClientID, x.cfg.TokenURL, sent)
		if err != nil {
			return exchanged{}, fmt.Errorf("signing the client assertion: %w", err)
		}
		form.Set("client_id", x.cfg.ClientID)
		form.Set("client_assertion_type", clientAssertionJWT)
		form.Set("client_assertion", assertion)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, x.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return exchanged{}, fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if x.cfg.PrivateKeyJWT == nil {
		// RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
		req.SetBasicAuth(url.QueryEscape(x.cfg.ClientID), url.QueryEscape(x.cfg.ClientSecret))
	}
	resp, err := x.client.Do(req)
	if err != nil {
		return exchanged{}, fmt.Errorf("calling %s: %w", x.cfg.TokenURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponse))
	if err != nil {
		return exchanged{}, fmt.Errorf("reading the answer of %s: %w", x.cfg.TokenURL, err)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK {
		if jsonErr == nil && tr.Error != "" {
			return exchanged{}, fmt.Errorf("%s answered %d %s: %s", x.cfg.TokenURL, resp.StatusCode, tr.Error, tr.ErrorDesc)
		}
		return exchanged{}, fmt.Errorf("%s answered %d", x.cfg.TokenURL, resp.StatusCode)
	}
	if jsonErr != nil {
		return exchanged{}, fmt.Errorf("the answer of %s is not JSON: %w", x.cfg.TokenURL, jsonErr)
	}
	return x.accept(&tr, sent)
}

// accept checks a successful answer and says how long its token is used.
func (x *exchanger) accept(tr *tokenResponse, sent time.Time) (exchanged, error) {
	if tr.AccessToken == "" || !isToken68(tr.AccessToken) {
		return exchanged{}, errors.New("the answer has no usable access_token")
	}
	if tr.IssuedTokenType != "" && tr.IssuedTokenType != x.cfg.RequestedTokenType {
		return exchanged{}, fmt.Errorf("issued_token_type %q is not the requested %q", tr.IssuedTokenType, x.cfg.RequestedTokenType)
	}
	// The token goes out as a Bearer credential: RFC 8693 §2.2.1 says
	// token_type N_A for tokens that are not access tokens.
	if !strings.EqualFold(tr.TokenType, "bearer") {
		return exchanged{}, fmt.Errorf("token_type %q is not Bearer", tr.TokenType)
	}
	ttl := defaultExchangedTTL
	if tr.ExpiresIn != "" {
		secs, err := tr.ExpiresIn.Int64()
		if err != nil || secs <= 0 {
			return exchanged{}, fmt.Errorf("expires_in %q is not a positive number of seconds", tr.ExpiresIn)
		}
		ttl = time.Duration(secs) * time.Second
	}
	// Counted from when the request was sent, and renewed before the end:
	// a short-lived token is used for half its life.
	return exchanged{
		headers: []decision.Header{{Name: "authorization", Value: "Bearer " + tr.AccessToken}},
		until:   sent.Add(ttl - min(renewBefore, ttl/2)),
	}, nil
}

// isToken68 reports whether s may follow "Bearer " (RFC 7235 token68).
func isToken68(s string) bool {
	i := 0
	for i < len(s) && (isAlnum(s[i]) || strings.IndexByte("-._~+/", s[i]) >= 0) {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
