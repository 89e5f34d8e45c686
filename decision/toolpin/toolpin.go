// Package toolpin pins MCP tool definitions against tool poisoning and
// "rug pulls" (a server that silently changes what a tool says it does):
// the digest of a tool's definition, computed the same way by the list
// filter (decision) and by `mcpauthz pin`, and the bundle data document
// that pins a server's tools.
//
// A tool's digest is the lowercase hex SHA-256 of the RFC 8785 (JCS)
// canonical JSON of an object holding the tool's "name", "description",
// "inputSchema" and "annotations" members exactly as the server sent them;
// a member the server did not send is left out (one it sent as null stays
// null). Other members ("title", "outputSchema", "icons", "_meta") are not
// covered.
package toolpin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/mcpauthz/mcpauthz/internal/jsonenc"
)

// definitionMembers are the members of a tool its digest covers, in
// canonical (sorted) order.
var definitionMembers = [...]string{"annotations", "description", "inputSchema", "name"}

// Digest returns the digest of tool, a tools/list entry as Parse reads it.
func Digest(tool map[string]any) (string, error) {
	def := make(map[string]any, len(definitionMembers))
	for _, k := range definitionMembers {
		if v, ok := tool[k]; ok {
			def[k] = v
		}
	}
	canon, err := Canonical(nil, def)
	if err != nil {
		return "", fmt.Errorf("tool definition: %w", err)
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// DigestJSON returns the digest of raw, one tools/list entry as sent:
// Digest of what Parse reads, written straight from raw (the list
// filter digests every pinned tool of every answer).
func DigestJSON(raw []byte) (string, error) {
	sc, err := newScanner(raw)
	if err != nil {
		return "", err
	}
	if sc.next() != '{' {
		return "", errors.New("tool is not a JSON object")
	}
	// The covered members' canonical values, in definitionMembers order,
	// which is also the order of their names.
	var (
		vals  [len(definitionMembers)][]byte
		names []string
	)
	err = sc.members(0, func(name []byte) error {
		for _, n := range names {
			if n == string(name) {
				return fmt.Errorf("JSON object has two members named %q", n)
			}
		}
		names = append(names, string(name))
		for i, k := range definitionMembers {
			if k == string(name) {
				v, err := sc.canonical(nil, 1)
				vals[i] = v
				return err
			}
		}
		return sc.skip(1)
	})
	if err == nil {
		err = sc.end()
	}
	if err != nil {
		return "", err
	}
	def := make([]byte, 0, 256)
	def = append(def, '{')
	for i, v := range vals {
		if v == nil {
			continue
		}
		if len(def) > 1 {
			def = append(def, ',')
		}
		def = jsonenc.AppendString(def, definitionMembers[i])
		def = append(append(def, ':'), v...)
	}
	def = append(def, '}')
	sum := sha256.Sum256(def)
	return hex.EncodeToString(sum[:]), nil
}

// ValidDigest reports whether s is a digest as Digest writes it: 64
// lowercase hex digits.
func ValidDigest(s string) bool {
	if len(s) != sha256.Size*2 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Tools reads the tools of a saved tools/list answer: a JSON-RPC
// response, its result object, a JSON array of either (the pages of a
// paginated list, in order), or a text/event-stream holding the
// response(s) (the end of the data ends its last event). Each tool must be an object with a non-empty string name;
// a name listed twice is an error. A JSON-RPC error answer is an error.
func Tools(data []byte) ([]map[string]any, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, errors.New("the tools/list answer is empty")
	}
	var msgs []any
	if c := trimmed[0]; c == '{' || c == '[' {
		v, err := Parse(trimmed)
		if err != nil {
			return nil, fmt.Errorf("reading the tools/list answer: %w", err)
		}
		if arr, ok := v.([]any); ok {
			msgs = arr
		} else {
			msgs = []any{v}
		}
	} else {
		// A stream: its events' data are JSON-RPC messages; the server
		// may send notifications and requests before the answer. The end
		// of a saved stream ends its last event.
		for i, ev := range EventData(append(bytes.Clone(data), "\n\n"...)) {
			v, err := Parse(ev)
			if err != nil {
				return nil, fmt.Errorf("reading event %d of the tools/list stream: %w", i, err)
			}
			if obj, ok := v.(map[string]any); ok && (obj["result"] != nil || obj["error"] != nil) {
				msgs = append(msgs, v)
			}
		}
		if len(msgs) == 0 {
			return nil, errors.New("the tools/list stream holds no JSON-RPC response")
		}
	}
	var tools []map[string]any
	seen := map[string]bool{}
	for i, m := range msgs {
		page, err := pageTools(m)
		if err != nil {
			if len(msgs) > 1 {
				err = fmt.Errorf("page %d: %w", i, err)
			}
			return nil, err
		}
		for _, t := range page {
			name := t["name"].(string)
			if seen[name] {
				return nil, fmt.Errorf("tool %q is listed twice", name)
			}
			seen[name] = true
			tools = append(tools, t)
		}
	}
	return tools, nil
}

// pageTools reads the tools of one response or result.
func pageTools(m any) ([]map[string]any, error) {
	obj, ok := m.(map[string]any)
	if !ok {
		return nil, errors.New("the tools/list answer is not a JSON object")
	}
	if e, ok := obj["error"]; ok {
		b, _ := json.Marshal(e)
		return nil, fmt.Errorf("the server answered tools/list with an error: %s", b)
	}
	if r, ok := obj["result"]; ok {
		if obj, ok = r.(map[string]any); !ok {
			return nil, errors.New("the tools/list result is not a JSON object")
		}
	}
	list, ok := obj["tools"].([]any)
	if !ok {
		return nil, errors.New(`the tools/list result has no "tools" array`)
	}
	out := make([]map[string]any, len(list))
	for i, t := range list {
		tool, ok := t.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("tool %d is not a JSON object", i)
		}
		if name, _ := tool["name"].(string); name == "" {
			return nil, fmt.Errorf("tool %d has no name", i)
		}
		out[i] = tool
	}
	return out, nil
}

// Pin is one tool's entry in bundle data (data.mcpauthz.tools[<name>]).
type Pin struct {
	// SHA256 is the tool's digest.
	SHA256 string `json:"sha256"`
	// InputSchema is the tool's inputSchema, against which mcpauthz
	// validates the arguments of its calls; nil leaves it out.
	InputSchema any `json:"input_schema,omitempty"`
}

// Document returns the bundle data document that pins tools, indented
// with its members sorted: {"mcpauthz": {"tools": {<name>: Pin}}}. With
// withSchemas, each pin carries the tool's inputSchema too.
func Document(tools []map[string]any, withSchemas bool) ([]byte, error) {
	pins := make(map[string]Pin, len(tools))
	for _, t := range tools {
		name, _ := t["name"].(string)
		d, err := Digest(t)
		if err != nil {
			return nil, fmt.Errorf("tool %q: %w", name, err)
		}
		p := Pin{SHA256: d}
		if withSchemas {
			p.InputSchema = t["inputSchema"]
		}
		pins[name] = p
	}
	doc := map[string]any{"mcpauthz": map[string]any{"tools": pins}}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Names returns the names of tools, sorted.
func Names(tools []map[string]any) []string {
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i], _ = t["name"].(string)
	}
	sort.Strings(names)
	return names
}
