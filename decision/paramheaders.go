package decision

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// MCP 2026-07-28 lets a tool mark arguments of its input schema with
// x-mcp-header: a client then mirrors each such argument of a tools/call
// into an Mcp-Param-{Name} header, for intermediaries to route on. A header
// that disagrees with its argument would let a router and the server act on
// different values, so mcpauthz compares them, as the MCP server does, when
// bundle data describes the tool's input schema
// (data.mcpauthz.tools[<name>].input_schema).

// paramHeaderPrefix begins the name of every Mcp-Param header, lowercase.
const paramHeaderPrefix = "mcp-param-"

// paramBinding is an argument a tool's input schema marks with x-mcp-header.
type paramBinding struct {
	path   []string // property names from the arguments object down
	header string   // the whole header name, lowercase (mcp-param-region)
}

// paramHeaders are the bindings of each tool that has any, by tool name.
type paramHeaders map[string][]paramBinding

// toolsPath is where bundle data describes tools.
var toolsPath = storage.MustParsePath("/mcpauthz/tools")

// readToolsDoc reads data.mcpauthz.tools as plain Go values (numbers as
// json.Number); nil when bundle data has none, or it is not an object.
func readToolsDoc(ctx context.Context, store storage.Store) (map[string]any, error) {
	doc, err := storage.ReadOne(ctx, store, toolsPath)
	if err != nil {
		if storage.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading data.mcpauthz.tools: %w", err)
	}
	// The store may hold policy values (ast) or plain Go values.
	switch d := doc.(type) {
	case *ast.Term:
		doc = d.Value
	}
	if v, ok := doc.(ast.Value); ok {
		if doc, err = ast.JSON(v); err != nil {
			return nil, fmt.Errorf("reading data.mcpauthz.tools: %w", err)
		}
	}
	tools, _ := doc.(map[string]any)
	return tools, nil
}

// readParamHeaders indexes the x-mcp-header annotations of the input
// schemas in data.mcpauthz.tools (readToolsDoc), so that a request reads
// no store. An annotation mcpauthz cannot use (not a token, on a
// non-primitive, twice) fails the activation, naming it.
func readParamHeaders(tools map[string]any) (paramHeaders, error) {
	var out paramHeaders
	for name, t := range tools {
		tool, _ := t.(map[string]any)
		schema, _ := tool["input_schema"].(map[string]any)
		if schema == nil {
			continue
		}
		var bs []paramBinding
		seen := map[string]bool{}
		if err := collectBindings(schema, nil, seen, &bs); err != nil {
			return nil, fmt.Errorf("data.mcpauthz.tools[%q].input_schema: %w", name, err)
		}
		if len(bs) > 0 {
			sort.Slice(bs, func(i, j int) bool { return bs[i].header < bs[j].header })
			if out == nil {
				out = paramHeaders{}
			}
			out[name] = bs
		}
	}
	return out, nil
}

func collectBindings(schema map[string]any, prefix []string, seen map[string]bool, out *[]paramBinding) error {
	props, _ := schema["properties"].(map[string]any)
	for prop, p := range props {
		ps, _ := p.(map[string]any)
		if ps == nil {
			continue
		}
		path := append(append([]string(nil), prefix...), prop)
		if h, ok := ps["x-mcp-header"]; ok {
			name, _ := h.(string)
			switch typ, _ := ps["type"].(string); {
			case name == "" || !isToken(name):
				return fmt.Errorf("property %s: x-mcp-header %v is not a header name", strings.Join(path, "."), h)
			case typ != "string" && typ != "integer" && typ != "boolean":
				return fmt.Errorf("property %s: x-mcp-header on type %q (only string, integer, boolean)", strings.Join(path, "."), typ)
			case seen[strings.ToLower(name)]:
				return fmt.Errorf("property %s: x-mcp-header %q is used twice", strings.Join(path, "."), name)
			}
			seen[strings.ToLower(name)] = true
			*out = append(*out, paramBinding{path: path, header: paramHeaderPrefix + strings.ToLower(name)})
		}
		if err := collectBindings(ps, path, seen, out); err != nil {
			return err
		}
	}
	return nil
}

// isToken reports whether s is an HTTP token (RFC 9110 tchar).
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return s != ""
}

// checkParamHeaders compares the Mcp-Param headers of a tools/call with
// its arguments: every such header must be well formed; with the tool's
// bindings known, each header present must equal its argument (integers
// compared as numbers) and, when required, each argument the body carries
// must have its header. It returns why not, or "".
func checkParamHeaders(r *Request, m *mcp.Message, known paramHeaders, required bool) string {
	for k, v := range r.Headers {
		if !strings.HasPrefix(k, paramHeaderPrefix) {
			continue
		}
		if _, ok := paramValue(v); !ok {
			return fmt.Sprintf("%s header %q is not a valid header value", k, v)
		}
	}
	if m.Tool == nil {
		return ""
	}
	for _, b := range known[m.Tool.Name] {
		arg := argument(m.Tool.Arguments, b.path)
		hv, present := r.Headers[b.header]
		if arg == nil {
			if present {
				return fmt.Sprintf("%s header sent for argument %s, which the body does not carry", b.header, strings.Join(b.path, "."))
			}
			continue
		}
		if !present {
			if required {
				return fmt.Sprintf("the %s header is required for argument %s", b.header, strings.Join(b.path, "."))
			}
			continue
		}
		dv, _ := paramValue(hv)
		if !sameArgument(dv, arg) {
			return fmt.Sprintf("%s header %q disagrees with argument %s", b.header, dv, strings.Join(b.path, "."))
		}
	}
	return ""
}

// paramValue decodes an Mcp-Param header value; a value that is not
// printable ASCII as sent, or whose base64 form does not decode, is not
// one a client could have sent.
func paramValue(v string) (string, bool) {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return "", false
		}
	}
	return headerValue(v)
}

// argument is the value at path in args; nil when absent or null.
func argument(args ast.Value, path []string) ast.Value {
	v := args
	for _, k := range path {
		obj, ok := v.(ast.Object)
		if !ok {
			return nil
		}
		t := obj.Get(ast.StringTerm(k))
		if t == nil {
			return nil
		}
		v = t.Value
	}
	if _, isNull := v.(ast.Null); isNull {
		return nil
	}
	return v
}

// sameArgument reports whether the decoded header h is the argument v:
// strings exactly, booleans as true/false, integers as numbers (42 is 42.0).
func sameArgument(h string, v ast.Value) bool {
	switch a := v.(type) {
	case ast.String:
		return h == string(a)
	case ast.Boolean:
		return h == strconv.FormatBool(bool(a))
	case ast.Number:
		af, ok := a.Float64()
		if !ok || af != math.Trunc(af) {
			return false
		}
		hf, err := strconv.ParseFloat(h, 64)
		return err == nil && hf == af
	}
	return false
}
