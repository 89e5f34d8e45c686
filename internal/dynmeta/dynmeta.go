// Package dynmeta is the metadata a decision leaves beside its answer for
// the proxy in front (Envoy's dynamic metadata, agentgateway's ExtMcp
// result metadata): the decision id, method, tool, subject, bundle revision
// and code, under the keys access logs and CEL expressions read to join
// the decision log. The transports that send it (transport/extauthz,
// transport/extmcp) share this one definition; they may not import each
// other.
package dynmeta

import (
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
)

// Keys are the metadata keys, in the order Fields fills them.
var Keys = [n]string{"decision_id", "method", "tool", "subject", "revision", "code"}

const n = 6

// Block holds the metadata of one answer as a protobuf Struct, its values
// allocated together with it (one allocation instead of thirteen).
type Block struct {
	s    structpb.Struct
	v    [n]structpb.Value
	kind [n]structpb.Value_StringValue
}

// Fill sets the metadata of d and returns the Struct, whose Fields map has
// room for extra entries beyond the six (rate_limit.<name>).
func (b *Block) Fill(d *decision.Decision, extra int) *structpb.Struct {
	vals := [n]string{d.ID, d.Method, d.Tool, d.Subject, d.Revision, d.Code}
	b.s.Fields = make(map[string]*structpb.Value, n+extra)
	for i := range b.v {
		b.kind[i].StringValue = vals[i]
		b.v[i].Kind = &b.kind[i]
		b.s.Fields[Keys[i]] = &b.v[i]
	}
	return &b.s
}
