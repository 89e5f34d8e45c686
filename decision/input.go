package decision

import (
	"net/url"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/credleak"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// Interned keys of the policy input: building input is on the hot path, and
// these terms are shared by every request instead of allocated per request.
var (
	keyMCP             = ast.InternedTerm("mcp")
	keyToken           = ast.InternedTerm("token")
	keyHTTP            = ast.InternedTerm("http")
	keySource          = ast.InternedTerm("source")
	keyContext         = ast.InternedTerm("context")
	keyKind            = ast.InternedTerm("kind")
	keyMethod          = ast.InternedTerm("method")
	keyID              = ast.InternedTerm("id")
	keyParams          = ast.InternedTerm("params")
	keyTool            = ast.InternedTerm("tool")
	keyResource        = ast.InternedTerm("resource")
	keyPrompt          = ast.InternedTerm("prompt")
	keyName            = ast.InternedTerm("name")
	keyArguments       = ast.InternedTerm("arguments")
	keyURI             = ast.InternedTerm("uri")
	keySessionID       = ast.InternedTerm("session_id")
	keySessionOwner    = ast.InternedTerm("session_owner")
	keyConfirmation    = ast.StringTerm("confirmation")
	keyProtocolVersion = ast.InternedTerm("protocol_version")
	keyBatch           = ast.InternedTerm("batch")
	keyIndex           = ast.InternedTerm("index")
	keySize            = ast.InternedTerm("size")
	keyPath            = ast.InternedTerm("path")
	keyQuery           = ast.InternedTerm("query")
	keyQueryParams     = ast.InternedTerm("query_params")
	keyAccessTokenInQ  = ast.InternedTerm("access_token_in_query")
	keyHost            = ast.InternedTerm("host")
	keyHeaders         = ast.InternedTerm("headers")
	keyAddress         = ast.InternedTerm("address")
	keyPrincipal       = ast.InternedTerm("principal")
	keyMeta            = ast.InternedTerm("meta")
	keyClient          = ast.InternedTerm("client")
	keyClientCaps      = ast.InternedTerm("client_capabilities")
	keyVersion         = ast.InternedTerm("version")
	keyTitle           = ast.InternedTerm("title")

	kindTerms = map[mcp.Kind]*ast.Term{
		mcp.KindRequest:      ast.InternedTerm("request"),
		mcp.KindNotification: ast.InternedTerm("notification"),
		mcp.KindResponse:     ast.InternedTerm("response"),
	}
)

// splitPath splits a request target at the first '?' into path and raw
// query. It deliberately does no URL parsing or cleaning: "//admin" stays
// "//admin", so the policy sees what the upstream will see.
func splitPath(target string) (path, query string) {
	if i := strings.IndexByte(target, '?'); i >= 0 {
		return target[:i], target[i+1:]
	}
	return target, ""
}

// httpInput builds all of input.http. access_token_in_query in it tells
// the policy that a token came in the query string, which is never read as a
// credential and never forwarded. Credentials are erased from it (see
// Redacted).
func httpInput(r *Request) *ast.Term {
	return httpInputFor(r, allInput)
}

// httpInputFor builds the members of input.http that n names (all of them
// for allInput), nil when n is nil.
//
// Every credential is erased here, where the input is built, rather than
// where it is logged: the policy needs to know that a credential was sent
// (access_token_in_query, a cookie header) but never its value, and an
// input without secrets cannot leak them through any reader, present or
// future. The authorization header is left out altogether: its credential
// is input.token.
func httpInputFor(r *Request, n *inputNeeds) *ast.Term {
	if n == nil {
		return nil
	}
	path, query := splitPath(r.Path)
	// access_token_in_query comes from the one reading of a query that the
	// removal of the parameter uses too (credleak), on the query as sent.
	tokenInQuery := false
	if query != "" && n.sub("access_token_in_query") != nil {
		tokenInQuery, _ = credleak.AccessToken(query)
	}
	if query != "" && (n.sub("query") != nil || n.sub("query_params") != nil) {
		query = redactQuery(query)
	}
	items := make([][2]*ast.Term, 0, 7)
	if n.sub("method") != nil {
		items = append(items, ast.Item(keyMethod, methodTerm(r.Method)))
	}
	if n.sub("path") != nil {
		items = append(items, ast.Item(keyPath, ast.StringTerm(path)))
	}
	if n.sub("query") != nil {
		items = append(items, ast.Item(keyQuery, ast.StringTerm(query)))
	}
	if n.sub("host") != nil {
		// Hosts compare case-insensitively; policies see them lowercase.
		items = append(items, ast.Item(keyHost, ast.StringTerm(strings.ToLower(r.Host))))
	}
	if query != "" && n.sub("query_params") != nil {
		// Only the query is parsed, with the lenient form parser; a malformed
		// query yields what could be read, and the raw string stays in "query".
		// It is the erased query: credential parameters keep their name, with
		// Redacted as their value.
		vals, _ := url.ParseQuery(query)
		qp := make([][2]*ast.Term, 0, len(vals))
		for k, vs := range vals {
			arr := make([]*ast.Term, len(vs))
			for i, v := range vs {
				arr[i] = ast.StringTerm(v)
			}
			qp = append(qp, ast.Item(ast.StringTerm(k), ast.ArrayTerm(arr...)))
		}
		items = append(items, ast.Item(keyQueryParams, ast.ObjectTerm(qp...)))
	}
	if tokenInQuery && n.sub("access_token_in_query") != nil {
		items = append(items, ast.Item(keyAccessTokenInQ, ast.InternedTerm(true)))
	}
	if n.sub("headers") != nil {
		hs := make([][2]*ast.Term, 0, len(r.Headers))
		for k, v := range r.Headers {
			if k == "authorization" || strings.HasPrefix(k, ":") {
				continue
			}
			hs = append(hs, ast.Item(ast.InternedTerm(k), ast.StringTerm(redactHeader(k, v))))
		}
		items = append(items, ast.Item(keyHeaders, ast.ObjectTerm(hs...)))
	}
	return ast.ObjectTerm(items...)
}

func methodTerm(m string) *ast.Term {
	switch m {
	case "POST", "GET", "DELETE", "OPTIONS":
		return ast.InternedTerm(m)
	}
	return ast.StringTerm(m)
}

func sourceInput(r *Request) *ast.Term {
	return ast.ObjectTerm(
		ast.Item(keyAddress, ast.StringTerm(r.SourceAddress)),
		ast.Item(keyPrincipal, ast.StringTerm(r.SourcePrincipal)),
	)
}

func contextInput(c map[string]string) *ast.Term {
	items := make([][2]*ast.Term, 0, len(c))
	for k, v := range c {
		items = append(items, ast.Item(ast.StringTerm(k), ast.StringTerm(v)))
	}
	return ast.ObjectTerm(items...)
}

// contextCache remembers the input.context term of the last request: a
// route's context_extensions are the same on every request, so most
// requests reuse the term instead of building it.
type contextCache struct {
	m map[string]string
	t *ast.Term
}

// contextTerm returns input.context for c, reusing the last term when c
// holds the same entries. Terms are never modified once built, so sharing
// one among concurrent evaluations is safe.
func (e *Engine) contextTerm(c map[string]string) *ast.Term {
	if last := e.lastContext.Load(); last != nil && sameStrings(last.m, c) {
		return last.t
	}
	t := contextInput(c)
	e.lastContext.Store(&contextCache{m: c, t: t})
	return t
}

func sameStrings(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// mcpEnv is what every message of one body shares in input.mcp.
type mcpEnv struct {
	sessionID       string
	sessionOwner    string
	protocolVersion string
	batchSize       int // 0 when the body was not a batch
	// confirmation is input.mcp.confirmation of a retry that answered
	// mcpauthz's confirmation form (confirmflow.go); nil otherwise.
	confirmation *ast.Term
}

// methodTerms are the terms of the MCP method names, shared by every
// request: ast.InternedTerm interns only a fixed set of short strings, so
// "tools/call" would otherwise be two allocations per request.
var methodTerms = func() map[string]*ast.Term {
	names := []string{
		"initialize", "ping", "tools/list", "tools/call", "prompts/list", "prompts/get",
		"resources/list", "resources/read", "resources/templates/list", "resources/subscribe",
		"resources/unsubscribe", "completion/complete", "logging/setLevel", "sampling/createMessage",
		"roots/list", "elicitation/create", "notifications/initialized", "notifications/cancelled",
		"notifications/progress", "notifications/message", "notifications/roots/list_changed",
		"server/discover", "subscriptions/listen",
	}
	m := make(map[string]*ast.Term, len(names))
	for _, n := range names {
		m[n] = ast.StringTerm(n)
	}
	return m
}()

// versionTerms are the terms of the MCP revisions mcpauthz knows, shared
// by every request as methodTerms are.
var versionTerms = func() map[string]*ast.Term {
	m := make(map[string]*ast.Term, len(KnownProtocolVersions))
	for _, v := range KnownProtocolVersions {
		m[v] = ast.StringTerm(v)
	}
	return m
}()

func versionTerm(v string) *ast.Term {
	if t, ok := versionTerms[v]; ok {
		return t
	}
	return ast.StringTerm(v)
}

func mcpMethodTerm(m string) *ast.Term {
	if t, ok := methodTerms[m]; ok {
		return t
	}
	return ast.StringTerm(m)
}

// mcpInput builds the members of input.mcp that n names for one message
// (all of them for allInput): a member the policy cannot read is omitted,
// which the policy cannot tell from its being absent.
func mcpInput(m *mcp.Message, index int, env *mcpEnv, n *inputNeeds) *ast.Term {
	var arr [15][2]*ast.Term
	items := arr[:0]
	if n.sub("kind") != nil {
		items = append(items, ast.Item(keyKind, kindTerms[m.Kind]))
	}
	if m.Method != "" && n.sub("method") != nil {
		items = append(items, ast.Item(keyMethod, mcpMethodTerm(m.Method)))
	}
	if m.IDValue != nil && n.sub("id") != nil {
		items = append(items, ast.Item(keyID, ast.NewTerm(m.IDValue)))
	}
	if m.Params != nil && n.sub("params") != nil {
		items = append(items, ast.Item(keyParams, ast.NewTerm(m.Params)))
	}
	if m.Tool != nil && n.sub("tool") != nil {
		items = append(items, ast.Item(keyTool, namedTerm(m.Tool, n.sub("tool"))))
	}
	if m.Prompt != nil && n.sub("prompt") != nil {
		items = append(items, ast.Item(keyPrompt, namedTerm(m.Prompt, n.sub("prompt"))))
	}
	if m.Resource != nil && n.sub("resource") != nil {
		items = append(items, ast.Item(keyResource, ast.ObjectTerm(ast.Item(keyURI, ast.StringTerm(m.Resource.URI)))))
	}
	if env.sessionID != "" && n.sub("session_id") != nil {
		// The session id is a header's value: a credential sent as one
		// (a JWT as Mcp-Session-Id) is erased as in input.http.headers.
		items = append(items, ast.Item(keySessionID, ast.StringTerm(redactHeader("mcp-session-id", env.sessionID))))
	}
	if env.sessionOwner != "" && n.sub("session_owner") != nil {
		items = append(items, ast.Item(keySessionOwner, ast.StringTerm(env.sessionOwner)))
	}
	if env.confirmation != nil && n.sub("confirmation") != nil {
		items = append(items, ast.Item(keyConfirmation, env.confirmation))
	}
	if env.protocolVersion != "" && n.sub("protocol_version") != nil {
		items = append(items, ast.Item(keyProtocolVersion, versionTerm(env.protocolVersion)))
	}
	if m.Meta != nil && n.sub("meta") != nil {
		items = append(items, ast.Item(keyMeta, ast.NewTerm(m.Meta)))
	}
	if m.ClientInfo != nil && n.sub("client") != nil {
		items = append(items, ast.Item(keyClient, clientTerm(m.ClientInfo)))
	}
	if m.ClientCapabilities != nil && n.sub("client_capabilities") != nil {
		items = append(items, ast.Item(keyClientCaps, ast.NewTerm(m.ClientCapabilities)))
	}
	if env.batchSize > 0 && n.sub("batch") != nil {
		items = append(items, ast.Item(keyBatch, ast.ObjectTerm(
			ast.Item(keyIndex, ast.InternedTerm(index)),
			ast.Item(keySize, ast.InternedTerm(env.batchSize)),
		)))
	}
	return ast.ObjectTerm(items...)
}

// clientTerm builds input.mcp.client from _meta's clientInfo: its name,
// version and title, those of them that are strings.
func clientTerm(info ast.Object) *ast.Term {
	var arr [3][2]*ast.Term
	items := arr[:0]
	for _, k := range [...]*ast.Term{keyName, keyVersion, keyTitle} {
		if v := info.Get(k); v != nil {
			if _, ok := v.Value.(ast.String); ok {
				items = append(items, ast.Item(k, v))
			}
		}
	}
	return ast.ObjectTerm(items...)
}

// namedTerm builds input.mcp.tool or input.mcp.prompt: the members n names.
func namedTerm(nm *mcp.Named, n *inputNeeds) *ast.Term {
	var arr [2][2]*ast.Term
	items := arr[:0]
	if n.sub("name") != nil {
		items = append(items, ast.Item(keyName, ast.StringTerm(nm.Name)))
	}
	if nm.Arguments != nil && n.sub("arguments") != nil {
		items = append(items, ast.Item(keyArguments, ast.NewTerm(nm.Arguments)))
	}
	return ast.ObjectTerm(items...)
}

// sharedInput is the part of the input that every message of a body shares.
type sharedInput struct {
	token, http, source, context *ast.Term
}

// input assembles the whole policy input; mcpTerm is nil for GET and DELETE.
func (s *sharedInput) input(mcpTerm, item *ast.Term) ast.Value {
	// A member the policy cannot read is left nil by the engine: omitted.
	var arr [6][2]*ast.Term
	items := arr[:0]
	for _, it := range [...][2]*ast.Term{{keyMCP, mcpTerm}, {keyToken, s.token}, {keyHTTP, s.http}, {keySource, s.source}, {keyContext, s.context}, {keyItem, item}} {
		if it[1] != nil {
			items = append(items, it)
		}
	}
	return ast.NewObject(items...)
}

// Keys of the decision object the engine reads.
var (
	keyAllow   = ast.InternedTerm("allow")
	keyCode    = ast.InternedTerm("code")
	keyMessage = ast.InternedTerm("message")
)
