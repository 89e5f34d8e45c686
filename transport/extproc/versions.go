package extproc

import (
	"bytes"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/serverversions"
)

// WithVersions has the server learn, from each upstream's answers to
// server/discover and initialize, which MCP revisions it supports (per
// route: the mcp_server context), for the engine's -32022 answers; it
// returns s. The answer is read as it passes, never changed. Only the
// answers of a trusted stream (WithTrustedCallers) are learned from:
// anyone reaching the port could otherwise make the -32022 answers name
// versions the server does not support.
func (s *Server) WithVersions(l serverversions.Learner) *Server {
	s.versions = l
	return s
}

// versionsAnswer is the collector of the answer to the request so far
// read, when it is one server/discover or initialize request; nil
// otherwise.
func (st *streamState) versionsAnswer() *serverversions.Answer {
	if st.srv.versions == nil || !st.req.ResponseTrusted || st.list != nil || !mayAnswerVersions(st.req.Body) {
		return nil
	}
	body, err := mcp.Parse(st.req.Body)
	if err != nil || body.Batch || body.Messages[0].Kind != mcp.KindRequest || !decision.AnswersVersions(body.Messages[0].Method) {
		return nil
	}
	return &serverversions.Answer{Learner: st.srv.versions, Server: decision.ServerOf(&st.req)}
}

// mayAnswerVersions is a quick look for the method names before a parse.
func mayAnswerVersions(body []byte) bool {
	return bytes.Contains(body, []byte(`"server/discover"`)) || bytes.Contains(body, []byte(`"initialize"`))
}
