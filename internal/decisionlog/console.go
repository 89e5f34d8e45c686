package decisionlog

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Console formats: ConsoleJSON writes OPA's events (for machines),
// ConsoleText one line per decision (for people).
const (
	ConsoleJSON = "json"
	ConsoleText = "text"
)

// writeText writes the event e of ev as one line for a person watching a
// console while developing a policy:
//
//	DENY 403 policy_denied id=… method=tools/call tool=get-env subject=alice reason="…"
//
// The line is built from the event as logged (after the mask rules); the
// subject, read from the decision rather than from the input, is left out
// when mask rules apply, since they may be what hides it.
func (l *Log) writeText(ev *event, e *opaEvent, masking bool) {
	var b strings.Builder
	switch {
	case ev.pin != nil:
		m := ev.pin
		fmt.Fprintf(&b, "PIN MISMATCH id=%s tool=%s server=%s pinned=%s listed=%s", m.ID, textValue(m.Tool), textValue(m.Server), m.Pinned, m.Listed)
	case ev.result != nil:
		o := ev.result
		fmt.Fprintf(&b, "RESULT %s id=%s method=%s", o.Outcome, ev.d.ID, o.Method)
		for _, n := range o.Counts.Names() {
			fmt.Fprintf(&b, " redacted.%s=%d", textValue(n), o.Counts[n])
		}
		if r, ok := e.Result["reason"].(string); ok {
			fmt.Fprintf(&b, " reason=%s", textValue(r))
		}
	default:
		d := ev.d
		verdict := "ALLOW"
		if allow, _ := e.Result["allow"].(bool); !allow {
			verdict = fmt.Sprintf("DENY %v", e.Result["status"])
		}
		if ev.shadow != nil {
			verdict = "SHADOW " + verdict
		}
		if e.DryRun {
			verdict += " (dry run: allowed)"
		}
		fmt.Fprintf(&b, "%s %v id=%s", verdict, e.Result["code"], d.ID)
		for _, kv := range [...]struct{ k, v string }{{"method", d.Method}, {"tool", d.Tool}} {
			if kv.v != "" {
				b.WriteString(" " + kv.k + "=" + textValue(kv.v))
			}
		}
		if d.Subject != "" && !masking {
			b.WriteString(" subject=" + textValue(d.Subject))
		}
		if r, _ := e.Result["reason"].(string); r != "" {
			b.WriteString(" reason=" + strconv.Quote(r))
		}
		if ev.shadow != nil {
			if r, _ := e.ShadowResult["reason"].(string); r != "" {
				b.WriteString(" shadow_reason=" + strconv.Quote(r))
			}
			fmt.Fprintf(&b, " shadow_code=%v", e.ShadowResult["code"])
		}
	}
	b.WriteByte('\n')
	if _, err := io.WriteString(l.text, b.String()); err != nil {
		l.writeFailed(err)
	}
}

// textValue writes a value bare when it is one plain word, quoted
// otherwise, so a line always splits into its fields.
func textValue(s string) string {
	for _, r := range s {
		if r <= ' ' || r == '"' || r == '=' || r > '~' {
			return strconv.Quote(s)
		}
	}
	if s == "" {
		return `""`
	}
	return s
}
