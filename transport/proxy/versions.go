package proxy

import (
	"io"
	"net/http"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/serverversions"
)

// learnVersions has the answer to a server/discover or initialize request
// read for the revisions the upstream supports as it goes to the caller,
// unchanged and unhindered; they are learned at its end (Options.Versions).
func (h *Handler) learnVersions(resp *http.Response, x *exchange) {
	if h.opts.Versions == nil || !decision.AnswersVersions(x.d.Method) || resp.StatusCode != http.StatusOK {
		return
	}
	resp.Body = &versionTee{src: resp.Body, answer: serverversions.Answer{Learner: h.opts.Versions, Server: decision.ServerOf(x.req)}}
}

// versionTee is an answer's body that hands what it gives on to the
// answer's collector.
type versionTee struct {
	src    io.ReadCloser
	answer serverversions.Answer
}

func (v *versionTee) Read(p []byte) (int, error) {
	n, err := v.src.Read(p)
	v.answer.Feed(p[:n], err == io.EOF)
	return n, err
}

func (v *versionTee) Close() error { return v.src.Close() }
