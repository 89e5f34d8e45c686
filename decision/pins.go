package decision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/toolpin"
)

// Tool pinning, against tool poisoning and "rug pulls" (a server that
// silently changes what a tool says it does or takes). Bundle data may pin
// a tool, data.mcpauthz.tools[<name>]:
//
//   - sha256: the digest of its definition (toolpin.Digest: name,
//     description, inputSchema and annotations, as RFC 8785 canonical
//     JSON). A tools/list answer whose entry for the tool has another
//     digest loses that entry (whoever the caller), the observer is told
//     (PinObserver: a metric and a decision log event), and calls of the
//     tool on that server are refused as if it did not exist (-32602)
//     until the server lists it as pinned again.
//   - input_schema: the JSON Schema (2020-12 unless it says otherwise) its
//     arguments must satisfy. A tools/call the policy allowed whose
//     arguments do not validate is refused with -32602 and the
//     validation error as reason.
//
// Both are prepared when the bundle is activated (a pinned schema that
// does not compile fails the load); a policy without pins costs a call
// one nil check.
//
// The call side never sees the list, so the engine remembers, per server
// (input.context.mcp_server, "" when the route names none) and pinned
// tool, the digest of the definition last listed through it (pinMemory).
// A call is judged by that digest against the pin of the policy current
// when it is decided, so a bundle that re-pins a tool to its new
// definition lets calls through again without a new listing. A tool never
// listed through mcpauthz is not refused for its digest: pinning needs a
// transport on the response path (the proxy, ext_proc, ExtMcp), and only
// answers it trusts to come from the server (Request.ResponseTrusted)
// change what is remembered; input_schema works on every path.

// toolPin is what bundle data pins of one tool.
type toolPin struct {
	digest string             // sha256; "" when the definition is not pinned
	schema *jsonschema.Schema // the compiled input_schema; nil when none
}

// toolPins are the pins of bundle data, by tool name.
type toolPins map[string]*toolPin

// noLoader refuses every schema outside the bundle: a pinned schema may
// not make activation read a file or the network.
type noLoader struct{}

func (noLoader) Load(u string) (any, error) {
	return nil, fmt.Errorf("%s is not in the bundle: a pinned schema cannot load other documents", u)
}

// readToolPins compiles the pins of data.mcpauthz.tools (as readToolsDoc
// returns it). A digest that is not 64 lowercase hex digits, or a schema
// that does not compile, fails the activation, naming the tool.
func readToolPins(tools map[string]any) (toolPins, error) {
	var (
		pins toolPins
		c    *jsonschema.Compiler
	)
	for name, t := range tools {
		tool, _ := t.(map[string]any)
		p := &toolPin{}
		if d, ok := tool["sha256"]; ok {
			s, _ := d.(string)
			if !toolpin.ValidDigest(s) {
				return nil, fmt.Errorf("data.mcpauthz.tools[%q].sha256: %v is not a SHA-256 digest in 64 lowercase hex digits (as `mcpauthz pin` prints it)", name, d)
			}
			p.digest = s
		}
		if schema, ok := tool["input_schema"]; ok {
			if c == nil {
				c = jsonschema.NewCompiler()
				c.DefaultDraft(jsonschema.Draft2020)
				c.UseLoader(noLoader{})
			}
			loc := "https://mcpauthz.invalid/tools/" + url.PathEscape(name) + "/input_schema.json"
			if err := c.AddResource(loc, schema); err != nil {
				return nil, fmt.Errorf("data.mcpauthz.tools[%q].input_schema: %w", name, err)
			}
			var err error
			if p.schema, err = c.Compile(loc); err != nil {
				return nil, fmt.Errorf("data.mcpauthz.tools[%q].input_schema does not compile: %w", name, err)
			}
		}
		if p.digest == "" && p.schema == nil {
			continue
		}
		if pins == nil {
			pins = toolPins{}
		}
		pins[name] = p
	}
	return pins, nil
}

// PinMismatch is a listed tool whose definition did not match its pin: it
// was removed from the list, and its calls on that server are refused.
type PinMismatch struct {
	// ID identifies the event, like a decision id.
	ID string
	// Tool is the tool's name; Server the route's input.context.mcp_server.
	Tool, Server string
	// Pinned is the digest bundle data pins; Listed the digest of the
	// definition the server listed ("" when it has none: a number JSON
	// cannot hold as a double).
	Pinned, Listed string
	// Revision is the policy revision whose pin it is.
	Revision string
}

// Reason says what happened, for logs.
func (m *PinMismatch) Reason() string {
	listed := m.Listed
	if listed == "" {
		listed = "none"
	}
	return fmt.Sprintf("tool %q listed by server %q does not match its pin: its definition has sha256 %s, data.mcpauthz.tools pins %s; it is hidden and its calls are refused",
		m.Tool, m.Server, listed, m.Pinned)
}

// pinKey names a tool on one server.
type pinKey struct{ server, tool string }

// maxPinMemory bounds pinMemory: one entry per server and pinned tool,
// far more than a deployment has.
const maxPinMemory = 1 << 16

// pinMemory holds the digest of the definition of each pinned tool as
// last listed, per server. It is safe for concurrent use; a call of a
// pinned tool reads it under a read lock. When full, a tool it could not
// remember counts as mismatched (fail closed).
type pinMemory struct {
	mu   sync.RWMutex
	m    map[pinKey]string
	full atomic.Bool
}

// ToolListings is an engine's memory of the definitions of pinned tools
// as their servers last listed them (Options.ToolListings). The zero
// value is empty and ready.
type ToolListings struct{ pinMemory }

// listed records digest as the definition of tool last listed by server.
func (pm *pinMemory) listed(server, tool, digest string) {
	k := pinKey{server, tool}
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if pm.m == nil {
		pm.m = map[pinKey]string{}
	}
	if _, ok := pm.m[k]; !ok && len(pm.m) >= maxPinMemory {
		pm.full.Store(true)
		return
	}
	pm.m[k] = digest
}

// lastListed returns the digest of the definition of tool last listed by
// server; known is false when it was never listed (or could not be
// remembered: full).
func (pm *pinMemory) lastListed(server, tool string) (digest string, known, full bool) {
	pm.mu.RLock()
	digest, known = pm.m[pinKey{server, tool}]
	pm.mu.RUnlock()
	return digest, known, !known && pm.full.Load()
}

// serverOf is the server a request goes to, for pinMemory.
func serverOf(r *Request) string { return r.Context["mcp_server"] }

// pinRefusal is a tools/call the policy allowed that its tool's pin
// refuses.
type pinRefusal struct {
	kind    refusal // refusePinMismatch or refuseInvalidArguments
	message string  // the JSON-RPC error's message
}

// checkPins refuses a tools/call the policy allowed when its tool's last
// listed definition does not match its pin, or when its arguments do not
// validate against the pinned input schema. It runs after the policy
// decided o (and after hideCall).
func (e *Engine) checkPins(pol *Policy, r *Request, o *outcome) {
	if pol.pins == nil {
		return
	}
	m := o.msg
	if m.Kind != mcp.KindRequest || m.Method != "tools/call" || m.Tool == nil || o.hidden || o.res.err != nil || !o.res.allow {
		return
	}
	name := m.Tool.Name
	pin := pol.pins[name]
	if pin == nil {
		return
	}
	if pin.digest != "" {
		server := serverOf(r)
		listed, known, full := e.pins.lastListed(server, name)
		switch {
		case known && listed != pin.digest:
			mm := PinMismatch{Tool: name, Server: server, Pinned: pin.digest, Listed: listed}
			e.refusePin(o, refusePinMismatch, "Unknown tool: "+name, mm.Reason())
			return
		case full:
			e.refusePin(o, refusePinMismatch, "Unknown tool: "+name,
				fmt.Sprintf("tool %q: too many pinned tools listed to remember this one's definition; refused until it is listed again", name))
			return
		}
	}
	if pin.schema != nil {
		args, err := argumentsValue(m.Tool.Arguments)
		if err == nil {
			err = pin.schema.Validate(args)
		}
		if err != nil {
			msg := fmt.Sprintf("Invalid arguments for tool %s: %s", name, validationMessage(err))
			e.refusePin(o, refuseInvalidArguments, msg, msg)
		}
	}
}

func (e *Engine) refusePin(o *outcome, kind refusal, message, reason string) {
	o.pin = &pinRefusal{kind: kind, message: message}
	o.res = policyResult{reason: reason, scopes: o.res.scopes}
}

// argumentsValue is a tools/call's arguments as the schema validator
// reads JSON (maps, slices, json.Number): absent arguments are an empty
// object, as the server reads them.
func argumentsValue(args ast.Value) (any, error) {
	if args == nil {
		return map[string]any{}, nil
	}
	return ast.JSON(args)
}

// validationMessage is a validation error on one line: each failing
// location and why ("at '/replicas': got string, want integer").
func validationMessage(err error) string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	var parts []string
	for _, u := range ve.BasicOutput().Errors {
		if u.Error == nil {
			continue
		}
		loc := u.InstanceLocation
		if loc == "" {
			loc = "/"
		}
		parts = append(parts, fmt.Sprintf("at '%s': %s", loc, u.Error.String()))
	}
	if len(parts) == 0 {
		return strings.ReplaceAll(err.Error(), "\n", "; ")
	}
	return strings.Join(parts, "; ")
}

// checkListedPins judges the tools of a list answer against their pins:
// hide[i] is set for each pinned tool whose definition (raws[i]) has
// another digest. When the answer is trusted (Request.ResponseTrusted:
// the proxy, an authenticated ext_proc or ExtMcp caller), each pinned
// tool's digest is remembered for its calls (pinMemory), and each mismatch
// is told to the observer and logged; an untrusted answer changes nothing
// but itself.
func (f *ItemFilter) checkListedPins(ctx context.Context, pol *Policy, r *Request, items []Item, raws []json.RawMessage, readable []bool) (hide []bool, mismatches []PinMismatch) {
	if pol.pins == nil {
		return nil, nil
	}
	e := f.e
	server := serverOf(r)
	for i := range items {
		it := &items[i]
		if it.Kind != ItemTool || !readable[i] {
			continue
		}
		pin := pol.pins[it.Name]
		if pin == nil || pin.digest == "" {
			continue
		}
		listed, err := toolpin.DigestJSON(raws[i])
		if err != nil {
			listed = "" // no canonical form: it matches no pin
		}
		if r.ResponseTrusted {
			e.pins.listed(server, it.Name, listed)
		}
		if listed == pin.digest {
			continue
		}
		if hide == nil {
			hide = make([]bool, len(items))
		}
		hide[i] = true
		if !r.ResponseTrusted {
			// Hidden from this answer, but neither remembered nor told:
			// whoever sent it is not known to speak for the server.
			continue
		}
		mm := PinMismatch{ID: e.newID(), Tool: it.Name, Server: server, Pinned: pin.digest, Listed: listed, Revision: pol.Snapshot.Revision}
		mismatches = append(mismatches, mm)
		e.log.Warn("listed tool does not match its pin; hidden", "event_id", mm.ID, "tool", mm.Tool, "server", mm.Server,
			"listed_sha256", mm.Listed, "pinned_sha256", mm.Pinned, "revision", mm.Revision)
		e.observePin(ctx, r, &mm)
	}
	return hide, mismatches
}
