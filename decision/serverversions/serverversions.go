// Package serverversions remembers which MCP revisions each upstream
// server supports, as its own answers say: the supportedVersions of a
// server/discover result (2026-07-28), and the protocolVersion an
// initialize result settled on. The engine lists them (within
// mcp.protocol_versions) in the -32022 answer to a request of a revision
// mcpauthz refuses, so that answer names only versions that work on the
// path (issue 20 item 3); the transports that carry answers (mcpauthz
// proxy, ext_proc) tell it what they saw.
package serverversions

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
)

// MaxServers bounds how many servers are remembered: a server past it is
// not (its requests' -32022 answers list mcp.protocol_versions).
const MaxServers = 4096

// MaxAnswer bounds what is kept of an answer read for its versions: a
// discover or initialize result is small, and a larger answer teaches
// nothing.
const MaxAnswer = 64 << 10

// Learner learns which revisions a server supports from its answer to
// server/discover or initialize; *Memory is one.
type Learner interface {
	LearnAnswer(server string, answer []byte)
}

// Answer collects an answer as a transport passes it on, chunk by chunk,
// and hands it to Learner at its end (up to MaxAnswer; a larger one is
// dropped). The zero value with Learner set is ready.
type Answer struct {
	Learner Learner
	Server  string
	kept    []byte
	done    bool
}

// Feed adds one chunk of the answer; eof says it is the last.
func (a *Answer) Feed(chunk []byte, eof bool) {
	if a.done {
		return
	}
	if len(a.kept)+len(chunk) > MaxAnswer {
		a.kept, a.done = nil, true
		return
	}
	a.kept = append(a.kept, chunk...)
	if eof {
		a.done = true
		a.Learner.LearnAnswer(a.Server, a.kept)
	}
}

// maxVersions bounds the versions kept of one answer.
const maxVersions = 32

// Memory is the versions each server supports, by server (the route's
// mcp_server context, "" for none). The zero value is empty and ready;
// it is safe for concurrent use.
type Memory struct {
	mu sync.RWMutex
	m  map[string][]string
}

// Versions returns the revisions server is known to support, oldest
// first; nil when it never said. The slice must not be changed.
func (m *Memory) Versions(server string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.m[server]
}

// LearnAnswer reads what server answered a server/discover or initialize
// request, a JSON body or an event stream (the answer is the event whose
// data is a JSON-RPC result), and remembers the revisions it supports: a
// discover result's supportedVersions replace what was known (a server
// that answers again is believed again); an initialize result's
// protocolVersion is added to it. An answer it cannot read changes
// nothing.
func (m *Memory) LearnAnswer(server string, answer []byte) {
	for _, msg := range messages(answer) {
		var res struct {
			Result *struct {
				SupportedVersions []string `json:"supportedVersions"`
				ProtocolVersion   string   `json:"protocolVersion"`
			} `json:"result"`
		}
		if json.Unmarshal(msg, &res) != nil || res.Result == nil {
			continue
		}
		switch r := res.Result; {
		case len(r.SupportedVersions) > 0:
			m.learn(server, r.SupportedVersions, true)
		case r.ProtocolVersion != "":
			m.learn(server, []string{r.ProtocolVersion}, false)
		}
	}
}

// learn sets (replace) or adds to server's versions.
func (m *Memory) learn(server string, versions []string, replace bool) {
	vs := make([]string, 0, len(versions))
	for _, v := range versions {
		if v != "" && len(vs) < maxVersions && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, known := m.m[server]
	if !known && len(m.m) >= MaxServers {
		return
	}
	if !replace {
		for _, v := range old {
			if !slices.Contains(vs, v) && len(vs) < maxVersions {
				vs = append(vs, v)
			}
		}
	}
	slices.Sort(vs) // revisions are dates: oldest first
	if m.m == nil {
		m.m = map[string][]string{}
	}
	m.m[server] = vs
}

// messages returns the JSON messages of an answer: the body itself when
// it is JSON, else the data of each event of an event stream.
func messages(answer []byte) [][]byte {
	trimmed := bytes.TrimSpace(answer)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		return [][]byte{trimmed}
	}
	var out [][]byte
	var data []byte
	flush := func() {
		if len(data) > 0 {
			out = append(out, data)
		}
		data = nil
	}
	for line := range bytes.Lines(answer) {
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			flush()
			continue
		}
		if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
			v = bytes.TrimPrefix(v, []byte(" "))
			if data != nil {
				data = append(data, '\n')
			}
			data = append(data, v...)
		}
	}
	flush()
	return out
}

// Intersect returns the revisions of accepted that server is known to
// support, in accepted's order; accepted itself when server never said or
// supports none of them (the answer must name at least one).
func Intersect(accepted, supported []string) []string {
	if len(supported) == 0 {
		return accepted
	}
	var out []string
	for _, v := range accepted {
		if slices.Contains(supported, v) {
			out = append(out, v)
		}
	}
	if len(out) == 0 {
		return accepted
	}
	return out
}
