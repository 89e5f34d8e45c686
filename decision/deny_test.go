package decision

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The deny table is the one declaration of every denial; these tests hold
// what else declares codes and shapes (the proto comment, the README's
// "Deny shapes" table, the metrics table of docs/operations.md) to it.

func TestDenyTableRows(t *testing.T) {
	all := AllCodes()
	for k := range numRefusals {
		row := denyTable[k]
		t.Run(strconv.Itoa(int(k)), func(t *testing.T) {
			if row.what == "" || row.code == "" || row.status < 200 || row.status > 599 {
				t.Fatalf("refusal %d has no row, or an incomplete one: %+v", k, row)
			}
			if !slices.Contains(all, row.code) {
				t.Errorf("%s: code %q is not in AllCodes", row.what, row.code)
			}
			if (row.body == rpcErrorShape) != (row.rpc != 0) {
				t.Errorf("%s: JSON-RPC code %d with body shape %d: an error body needs a code, and only it", row.what, row.rpc, row.body)
			}
			var d Decision
			dn := denial{kind: k, reason: "why", challenge: "Bearer x"}
			if row.body == batchShape {
				dn.entries = []answer{{kind: refuseRPCError}}
			}
			d.refuse(dn)
			if d.Allow || d.Code != string(row.code) || d.Status != row.status || d.Reason != "why" {
				t.Errorf("%s: refuse gave allow %v, code %q, status %d, reason %q", row.what, d.Allow, d.Code, d.Status, d.Reason)
			}
			if (row.body == noBody) != (len(d.Body) == 0) {
				t.Errorf("%s: body %q, want shape %d", row.what, d.Body, row.body)
			}
			if row.rpc != 0 && !strings.Contains(string(d.Body), fmt.Sprintf(`"code":%d`, row.rpc)) {
				t.Errorf("%s: body %s lacks JSON-RPC code %d", row.what, d.Body, row.rpc)
			}
		})
	}
}

// TestCodesDeclaredOnce: every Code* string constant of deny.go is a code
// of the table, and the metric help names each code once.
func TestCodesDeclaredOnce(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "deny.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var declared []Code
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) || !strings.HasPrefix(name.Name, "Code") {
					continue
				}
				if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					declared = append(declared, Code(s))
				}
			}
		}
	}
	all := AllCodes()
	slices.Sort(declared)
	sorted := slices.Sorted(slices.Values(all))
	if !slices.Equal(declared, sorted) {
		t.Errorf("Code constants %v, codes of the table %v: a code no refusal uses, or a refusal whose code is not declared", declared, sorted)
	}
	help := CodesHelp()
	for _, c := range all {
		if n := strings.Count(help, string(c)); n != 1 {
			t.Errorf("CodesHelp names %q %d times, want once: %s", c, n, help)
		}
	}
}

// TestProtoCodeComment: the comment of Decision.code in the Decision API's
// proto lists exactly the codes of the table.
func TestProtoCodeComment(t *testing.T) {
	src, err := os.ReadFile("../proto/mcpauthz/v1/decision.proto")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\nmessage Decision \{.*?((?:\n  //[^\n]*)+)\n  string code = 2;`).FindSubmatch(src)
	if m == nil {
		t.Fatal("decision.proto: no commented `string code = 2;` in message Decision")
	}
	comment := strings.ReplaceAll(string(m[1]), "\n  //", " ")
	_, list, ok := strings.Cut(comment, ":")
	if !ok {
		t.Fatalf("decision.proto: Decision.code comment %q does not list the codes after a colon", comment)
	}
	var listed []Code
	for _, w := range regexp.MustCompile(`[a-z_]+`).FindAllString(list, -1) {
		listed = append(listed, Code(w))
	}
	want := slices.Sorted(slices.Values(AllCodes()))
	slices.Sort(listed)
	if !slices.Equal(listed, want) {
		t.Errorf("decision.proto: Decision.code lists %v, the deny table has %v", listed, want)
	}
}

// readmeRows name the README "Deny shapes" row of each refusal by the
// start of its case cell, and suggest a row for one that has none.
var readmeRows = map[refusal]struct{ prefix, suggest string }{
	refuseUnreadable:        {prefix: "a CheckRequest mcpauthz cannot read"},
	refuseNoPolicy:          {prefix: "no policy loaded yet"},
	refuseBodyTooLarge:      {prefix: "truncated body"},
	refuseParseError:        {prefix: "malformed JSON"},
	refuseInvalidRequest:    {prefix: "malformed JSON"},
	refuseInvalidParams:     {prefix: "malformed JSON"},
	refuseHintMismatch:      {prefix: "Envoy MCP filter or `Mcp-Method`/`Mcp-Name`"},
	refuseUnauthenticated:   {prefix: "no token, or an invalid one"},
	refuseInsufficientScope: {prefix: "valid token without all of `decision.scopes`"},
	refuseNoReply:           {prefix: "denied notification or response"},
	refuseToolError:         {prefix: "other denial of `tools/call`"},
	refuseRPCError:          {prefix: "other denial of a request"},
	refuseBatch:             {prefix: "batch"},
	refuseInternalError:     {prefix: "a panic while deciding"},
	refuseUpstreamCredential: {prefix: "an allowed request whose upstream credential cannot be had",
		suggest: "| an allowed request whose upstream credential cannot be had (`upstream_credentials`: the token exchange failed, or the policy chose an entry that does not exist) | 503, no body, code `upstream_credential_unavailable` |"},
	refuseUnsupportedVersion: {prefix: "an MCP revision (`MCP-Protocol-Version` or `_meta`)"},
	refuseBatchRemoved:       {prefix: "a JSON-RPC batch in a request of 2025-06-18 or later"},
	refuseOrigin:             {prefix: "an `Origin` header that is neither"},
	refuseHiddenTool:         {prefix: "a `tools/call` of a tool the `visible` rule hides"},
	refusePinMismatch:        {prefix: "a `tools/call` of a tool whose definition, as its server last listed it"},
	refuseInvalidArguments:   {prefix: "a `tools/call` whose arguments do not validate"},
	refuseMethodNotFound:     {prefix: "a request of 2026-07-28 or later for a method its revision does not have"},
	refuseSessionNotFound:    {prefix: "a request whose `Mcp-Session-Id` is bound to another owner"},
	refuseRepeatedHeader:     {prefix: "a single-valued header"},
	refuseBodyNotAllowed:     {prefix: "a GET or DELETE with a body"},
	refuseMethodNotAllowed:   {prefix: "a GET or DELETE claiming MCP 2026-07-28"},
	refuseSessionsFull:       {prefix: "an allowed request that would bind a new session"},
	refuseStateUnavailable:   {prefix: "a request whose session owner cannot be looked up"},
	refuseDPoPProof:          {prefix: "a DPoP-bound token (`cnf.jkt`) whose DPoP proof is missing"},
	refuseDPoPNonce:          {prefix: "a DPoP-bound token whose otherwise valid proof has no server nonce"},
	refuseTokenBinding:       {prefix: "a valid token sent as its binding does not allow"},
	refuseInputRequired:      {prefix: "a call the policy allows once the caller's user confirms it"},
	refuseConfirmTool:        {prefix: "a `tools/call` the policy allows once confirmed"},
	refuseConfirmRPC:         {prefix: "any other request the policy allows once confirmed"},
}

// TestReadmeDenyShapes: each refusal has its row in the README's "Deny
// shapes" table, which gives its status and JSON-RPC code (and its code,
// when it names one).
func TestReadmeDenyShapes(t *testing.T) {
	src, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(src), "\n## Deny shapes\n")
	if !ok {
		t.Fatal("README.md has no \"## Deny shapes\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	type row struct{ what, response string }
	var rows []row
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) != 4 || strings.HasPrefix(cells[1], "---") {
			continue
		}
		rows = append(rows, row{strings.TrimSpace(cells[1]), strings.TrimSpace(cells[2])})
	}
	if len(rows) < 2 {
		t.Fatal("README.md: the Deny shapes table is empty")
	}
	namedCode := regexp.MustCompile("code `([a-z_]+)`")
	for k := range numRefusals {
		dr := denyTable[k]
		want, ok := readmeRows[k]
		if !ok {
			t.Errorf("refusal %q has no README row in readmeRows: add one to README.md's Deny shapes table and name it here", dr.what)
			continue
		}
		i := slices.IndexFunc(rows, func(r row) bool { return strings.HasPrefix(r.what, want.prefix) })
		if i < 0 {
			t.Errorf("README.md Deny shapes: no row for %q (%d, code %s); add:\n%s", dr.what, dr.status, dr.code, want.suggest)
			continue
		}
		resp := rows[i].response
		if !regexp.MustCompile(`\b` + strconv.Itoa(dr.status) + `\b`).MatchString(resp) {
			t.Errorf("README.md Deny shapes row %q says %q: it lacks status %d", rows[i].what, resp, dr.status)
		}
		if dr.rpc != 0 && !strings.Contains(resp, strconv.Itoa(dr.rpc)) {
			t.Errorf("README.md Deny shapes row %q says %q: it lacks JSON-RPC code %d", rows[i].what, resp, dr.rpc)
		}
		if dr.challenge && !strings.Contains(resp, "WWW-Authenticate") {
			t.Errorf("README.md Deny shapes row %q says %q: it lacks the WWW-Authenticate challenge", rows[i].what, resp)
		}
		if m := namedCode.FindStringSubmatch(resp); m != nil && m[1] != string(dr.code) {
			t.Errorf("README.md Deny shapes row %q names code %q, the table says %q", rows[i].what, m[1], dr.code)
		}
	}
}

// TestOperationsMetricCodes: docs/operations.md lists every code of
// mcpauthz_decisions_total.
func TestOperationsMetricCodes(t *testing.T) {
	src, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(l, "| `mcpauthz_decisions_total{code}`") {
			line = l
		}
	}
	if line == "" {
		t.Fatal("docs/operations.md has no `mcpauthz_decisions_total{code}` row")
	}
	for _, c := range AllCodes() {
		if !strings.Contains(line, "`"+string(c)+"`") {
			t.Errorf("docs/operations.md: the mcpauthz_decisions_total row lacks code `%s`", c)
		}
	}
}

// TestInternalErrorBytes pins the failsafe answer adapters send when they
// cannot answer otherwise.
func TestInternalErrorBytes(t *testing.T) {
	d := InternalError()
	const body = `{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error; the request was not authorized"}}`
	if d.Allow || d.Code != CodeInternalError || d.Reason != "internal error" || d.Status != 500 || string(d.Body) != body ||
		len(d.ResponseHeaders) != 1 || d.ResponseHeaders[0] != (Header{Name: "content-type", Value: "application/json"}) {
		t.Errorf("InternalError() = %+v, body %s", d, d.Body)
	}
}
