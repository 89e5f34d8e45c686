package decision

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/internal/benchgrowth"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// The growth benchmarks (BenchmarkGrowth*) measure one decision as the
// work grows: the policy (tools in data, rules), the arguments and the
// batch. Each size is a sub-benchmark whose last name element is
// "name=size", which `make bench-growth` reads to print the growth factor
// between sizes (docs/performance.md, "Costs as the work grows"). Under
// -short (the once-through benchmark run of make test) the largest sizes,
// slow to set up, are left out.

// writeBundle writes a policy bundle (authz.rego and data.json) into a new
// temporary directory.
func writeBundle(b *testing.B, rego string, data any) string {
	b.Helper()
	dir := b.TempDir()
	doc, err := json.Marshal(data)
	if err != nil {
		b.Fatal(err)
	}
	for name, body := range map[string][]byte{"authz.rego": []byte(rego), "data.json": doc} {
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o600); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

// growthCall is the n-th request of the workload turned into a tools/call
// of tool with the given JSON arguments.
func growthCall(env *benchEnv, n int, tool, args string) *Request {
	w := workload.New(workload.ToolsCall, n, env.tokens[n%len(env.tokens)])
	body := []byte(`{"jsonrpc":"2.0","id":` + strconv.Itoa(n) + `,"method":"tools/call","params":{"name":"` + tool + `","arguments":` + args + `}}`)
	return growthRequest(w, body)
}

// growthRequest is w with body as its body.
func growthRequest(w *workload.Request, body []byte) *Request {
	h := make(map[string]string, len(w.Headers))
	for k, v := range w.Headers {
		h[k] = v
	}
	h["content-length"] = strconv.Itoa(len(body))
	return &Request{Method: w.Method, Path: w.Path, Host: w.Host, Headers: h, Body: body, Context: w.Context,
		SourceAddress: "10.0.0.7:51234"}
}

// mustAllow decides each request once (verifying its token, as in steady
// state) and fails unless it is allowed.
func mustAllow(b *testing.B, e *Engine, reqs []*Request) {
	b.Helper()
	for i, r := range reqs {
		if d := e.Decide(context.Background(), r); !d.Allow {
			b.Fatalf("request %d: %s: %s %v", i, d.Code, d.Reason, d.Errors)
		}
	}
}

// toolsPolicy allows a tools/call of a tool the route lists in data: in
// an array (`in`, a scan) or as the keys of an object (a lookup).
const toolsPolicy = `package mcp.authz

default decision := {"allow": false, "reason": "denied by policy"}

decision := {"allow": true} if {
	input.mcp.method == "tools/call"
	input.token.valid
	"mcp:tools" in input.token.scopes
	%s
}
`

// BenchmarkGrowthPolicyTools is an allowed tools/call against a policy
// whose route lists N tools in data, the called tool cycling over all of
// them: as an array tested with `in` (array), and as an object's keys
// (set).
func BenchmarkGrowthPolicyTools(b *testing.B) {
	for _, shape := range []string{"array", "set"} {
		for _, n := range benchgrowth.Sizes(100, 10, 100, 1000, 10000) {
			b.Run(fmt.Sprintf("%s/tools=%d", shape, n), func(b *testing.B) {
				names := make([]string, n)
				set := make(map[string]bool, n)
				for i := range names {
					names[i] = "tool_" + strconv.Itoa(i)
					set[names[i]] = true
				}
				var tools any = names
				test := `input.mcp.tool.name in data.mcpauthz.config.server_tools[input.context.mcp_server]`
				if shape == "set" {
					tools = set
					test = `data.mcpauthz.config.server_tools[input.context.mcp_server][input.mcp.tool.name]`
				}
				dir := writeBundle(b, fmt.Sprintf(toolsPolicy, test),
					map[string]any{"mcpauthz": map[string]any{"config": map[string]any{"server_tools": map[string]any{"files": tools}}}})
				env := newBenchEnvAt(b, dir, nil)
				reqs := make([]*Request, min(benchVariants, max(n, 64)))
				for i := range reqs {
					reqs[i] = growthCall(env, i, names[i%n], `{"path":"/data/a.csv"}`)
				}
				mustAllow(b, env.e, reqs)
				benchDecide(b, env.e, reqs)
			})
		}
	}
}

// BenchmarkGrowthPinnedTools is the cost of N tools pinned in data
// (data.mcpauthz.tools: a digest and an input schema each), the route
// allowing all of them (as an object's keys). call: an allowed tools/call
// of each tool in turn, its arguments validated against its pinned
// schema; activate: compiling and activating the bundle (every schema
// compiled), once per policy snapshot.
func BenchmarkGrowthPinnedTools(b *testing.B) {
	for _, n := range benchgrowth.Sizes(100, 10, 100, 1000, 10000) {
		names := make([]string, n)
		allow := make(map[string]bool, n)
		pins := make(map[string]any, n)
		for i := range names {
			names[i] = "tool_" + strconv.Itoa(i)
			allow[names[i]] = true
			pins[names[i]] = map[string]any{
				"sha256": fmt.Sprintf("%064x", i),
				"input_schema": map[string]any{"type": "object", "required": []string{"path"}, "additionalProperties": false,
					"properties": map[string]any{
						"path": map[string]any{"type": "string", "pattern": fmt.Sprintf("^/data/%d/", i)},
						"mode": map[string]any{"enum": []string{"r", "w"}},
					}},
			}
		}
		dir := writeBundle(b, fmt.Sprintf(toolsPolicy, `data.mcpauthz.config.server_tools[input.context.mcp_server][input.mcp.tool.name]`),
			map[string]any{"mcpauthz": map[string]any{"tools": pins, "config": map[string]any{"server_tools": map[string]any{"files": allow}}}})
		b.Run(fmt.Sprintf("call/tools=%d", n), func(b *testing.B) {
			env := newBenchEnvAt(b, dir, nil)
			reqs := make([]*Request, min(benchVariants, max(n, 64)))
			for i := range reqs {
				t := i % n
				reqs[i] = growthCall(env, i, names[t], fmt.Sprintf(`{"path":"/data/%d/r-%d.csv","mode":"r"}`, t, i))
			}
			mustAllow(b, env.e, reqs)
			// The pins are checked: arguments outside the schema are refused.
			if d := env.e.Decide(context.Background(), growthCall(env, 0, names[0], `{"path":"/etc/passwd"}`)); d.Allow || d.Code != CodeInvalidArguments {
				b.Fatalf("arguments outside the pinned schema: allow %v, code %s", d.Allow, d.Code)
			}
			benchDecide(b, env.e, reqs)
		})
		b.Run(fmt.Sprintf("activate/tools=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				compileBench(b, dir, "")
			}
		})
	}
}

// BenchmarkGrowthPolicyRules is an allowed tools/call against a policy of
// N decision rules, one per tool, each opening with an equality on the
// tool's name (which OPA's rule index uses) and testing its argument.
func BenchmarkGrowthPolicyRules(b *testing.B) {
	for _, n := range benchgrowth.Sizes(100, 10, 100, 1000, 10000) {
		b.Run(fmt.Sprintf("rules=%d", n), func(b *testing.B) {
			var rego strings.Builder
			rego.WriteString("package mcp.authz\n\ndefault decision := {\"allow\": false, \"reason\": \"denied by policy\"}\n")
			for i := range n {
				fmt.Fprintf(&rego, "\ndecision := {\"allow\": true} if {\n\tinput.mcp.tool.name == \"tool_%d\"\n\tinput.token.valid\n\tstartswith(input.mcp.tool.arguments.path, \"/data/%d/\")\n}\n", i, i)
			}
			env := newBenchEnvAt(b, writeBundle(b, rego.String(), map[string]any{}), nil)
			reqs := make([]*Request, min(benchVariants, max(n, 64)))
			for i := range reqs {
				t := i % n
				reqs[i] = growthCall(env, i, "tool_"+strconv.Itoa(t), fmt.Sprintf(`{"path":"/data/%d/r-%d.csv"}`, t, i))
			}
			mustAllow(b, env.e, reqs)
			benchDecide(b, env.e, reqs)
		})
	}
}

// BenchmarkGrowthArguments is an allowed read_file call on the reference
// policy whose arguments carry, beside the path, N bytes: one string
// (string), or fields of about 24 bytes each, in objects of 1,000
// (fields). The body limit is
// raised to 2 MiB for the largest.
func BenchmarkGrowthArguments(b *testing.B) {
	env := newBenchEnv(b, func(o *Options) { o.MaxBodyBytes = 2 << 20 })
	for _, shape := range []string{"string", "fields"} {
		for _, n := range benchgrowth.Sizes(10<<10, 100, 1<<10, 10<<10, 100<<10, 1<<20) {
			b.Run(fmt.Sprintf("%s/bytes=%d", shape, n), func(b *testing.B) {
				reqs := make([]*Request, 16)
				for i := range reqs {
					reqs[i] = growthCall(env, i, "read_file", growthArgs(shape, n, i))
				}
				mustAllow(b, env.e, reqs)
				b.SetBytes(int64(n))
				benchDecide(b, env.e, reqs)
			})
		}
	}
}

// growthArgs is a read_file arguments object with about n more bytes.
func growthArgs(shape string, n, i int) string {
	var s strings.Builder
	fmt.Fprintf(&s, `{"path":"/data/reports/q3-%d.csv"`, i)
	switch shape {
	case "string":
		s.WriteString(`,"content":"`)
		s.WriteString(strings.Repeat(string(rune('a'+i%26)), n))
		s.WriteByte('"')
	case "fields":
		// In objects of 1,000 fields at most: the parser takes up to
		// mcp.MaxMembers per object.
		for f := 0; f*24 < n; f++ {
			if f%1000 == 0 {
				if f > 0 {
					s.WriteByte('}')
				}
				fmt.Fprintf(&s, `,"g%d":{`, f/1000)
			} else {
				s.WriteByte(',')
			}
			fmt.Fprintf(&s, `"k%07d":"v%010d"`, f, f+i)
		}
		s.WriteByte('}')
	}
	s.WriteByte('}')
	return s.String()
}

// BenchmarkGrowthBatch is an allowed JSON-RPC batch of N read_file calls
// in a 2025-03-26 request (the last revision with batches), on the
// reference policy: each element is decided.
func BenchmarkGrowthBatch(b *testing.B) {
	env := newBenchEnv(b, nil)
	for _, n := range benchgrowth.Sizes(100, 1, 10, 100, 1000) {
		b.Run(fmt.Sprintf("elements=%d", n), func(b *testing.B) {
			reqs := make([]*Request, 16)
			for i := range reqs {
				var body strings.Builder
				body.WriteByte('[')
				for el := range n {
					if el > 0 {
						body.WriteByte(',')
					}
					body.Write(workload.Body(workload.ToolsCall, i*n+el))
				}
				body.WriteByte(']')
				w := workload.New(workload.ToolsCall, i, env.tokens[i%len(env.tokens)])
				reqs[i] = growthRequest(w, []byte(body.String()))
				reqs[i].Headers["mcp-protocol-version"] = "2025-03-26"
			}
			mustAllow(b, env.e, reqs)
			benchDecide(b, env.e, reqs)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/element")
		})
	}
}
