package proxy

import (
	"net/http"
	"net/textproto"
	"strings"
	"sync"
)

// A proxy forwards what it decided: the request is normalised before the
// engine sees it, and what the engine sees is what goes upstream. Go's
// ReverseProxy would otherwise drop the hop-by-hop headers (and every
// header Connection names) after the decision: a client could then have a
// request decided with a header the upstream never gets (docs/security.md,
// "The proxy").

// hopByHop are the headers that belong to one connection (RFC 9110,
// section 7.6.1, and the older ones Go's ReverseProxy also drops): never
// forwarded, so never decided on.
var hopByHop = [...]string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// normalize removes from r what is not forwarded: the headers its
// Connection header names, the hop-by-hop headers, the trailers and the
// headers the decision sets upstream (identity headers the client must
// not be able to send: stripped says which).
func normalize(r *http.Request, stripped func(canonical string) bool) {
	h := r.Header
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	for name := range h {
		if stripped(name) {
			delete(h, name)
		}
	}
	// Trailers come after the body the decision was made on, and could
	// carry a credential (a second Authorization): they are never read
	// and never forwarded.
	r.Trailer = nil
}

// identityHeaders are the request headers the client may not send: those
// of upstream.strip_request_headers and every header a decision has set
// upstream (decision.headers, e.g. x-mcp-subject), which the engine
// learns only from the decisions it makes.
type identityHeaders struct {
	fixed map[string]bool // canonical names, read-only
	mu    sync.RWMutex
	seen  map[string]bool // canonical names decisions set
}

// maxLearned bounds the header names remembered from decisions: a policy
// sets a handful; a policy that names headers after its input must list
// them in upstream.strip_request_headers.
const maxLearned = 256

func newIdentityHeaders(names []string) *identityHeaders {
	ih := &identityHeaders{fixed: make(map[string]bool, len(names)), seen: map[string]bool{}}
	for _, n := range names {
		ih.fixed[http.CanonicalHeaderKey(n)] = true
	}
	return ih
}

// has reports whether the client may not send the header (canonical name).
func (ih *identityHeaders) has(name string) bool {
	if ih.fixed[name] {
		return true
	}
	ih.mu.RLock()
	defer ih.mu.RUnlock()
	return ih.seen[name]
}

// learn remembers the names of the headers a decision set upstream.
func (ih *identityHeaders) learn(names func(yield func(string) bool)) {
	for n := range names {
		c := http.CanonicalHeaderKey(n)
		if ih.has(c) {
			continue
		}
		ih.mu.Lock()
		if len(ih.seen) < maxLearned {
			ih.seen[c] = true
		}
		ih.mu.Unlock()
	}
}
