package decision

import (
	"bytes"
	"context"
	"log/slog"
)

// ResultStream judges the answer to a request holding calls the result
// rule judges, as its bytes arrive (the proxy, ext_proc): what the answer
// is comes from its bytes (sniffAnswer), as for lists. A JSON answer is
// held whole, up to the bound, and judged at its end; an event stream's
// events are cut from chunks that may end anywhere, each event going on
// as soon as it is complete and judged, so only the event answering a
// call is held, and only until it is complete. It is used by one
// goroutine.
type ResultStream struct {
	ctx   context.Context
	calls *ResultCalls
	max   int
	log   *slog.Logger

	mode     answerMode
	head     []byte
	body     []byte
	sse      sseSplitter
	dropping bool
}

// NewResultStream starts judging the answer for rc. maxBytes bounds a
// JSON answer, and an incomplete event (limits.max_result_bytes): past
// it the calls not yet answered get errors (fail closed). The engine's
// ResultObserver is told every outcome (decision log, metrics).
func NewResultStream(ctx context.Context, rc *ResultCalls, maxBytes int, logger *slog.Logger) *ResultStream {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ResultStream{ctx: ctx, calls: rc, max: maxBytes, log: logger}
}

// DefaultMaxResultBytes is the default of limits.max_result_bytes: the
// most of one answer held to be judged by the result rule.
const DefaultMaxResultBytes = 4 << 20

// ErrResultTooLarge is why an answer past limits.max_result_bytes is withheld.
const ErrResultTooLarge = "the result is larger than limits.max_result_bytes"

// Feed takes the next chunk of the answer (eof: the last one) and returns
// what goes on for it; changed is false when the chunk goes on exactly as
// it came (out is then nil).
func (s *ResultStream) Feed(chunk []byte, eof bool) (out []byte, changed bool) {
	fromHead := false
	if s.mode == sniffing {
		fromHead = true
		s.head = append(s.head, chunk...)
		mode, skip := sniffAnswer(s.head, eof)
		if mode == sniffing {
			return nil, true
		}
		s.mode, chunk = mode, s.head[skip:]
		if skip > 0 {
			chunk = bytes.Clone(chunk)
		}
		s.head = nil
	}
	if s.mode == jsonAnswer || s.mode == jsonTooLarge {
		return s.feedJSON(chunk, eof), true
	}
	var buf []byte
	s.sse.feed(chunk, eof, func(ev []byte) {
		if s.dropping {
			s.dropping = false
			return
		}
		buf = append(buf, s.event(ev)...)
	})
	if len(s.sse.pending) > s.max {
		s.log.Warn("SSE event too large to judge by the result rule; withheld", "decision_id", s.calls.decisionID, "limit", s.max)
		s.sse, s.dropping = sseSplitter{}, true
		buf = s.appendFailure(buf, ErrResultTooLarge)
	}
	if !fromHead && len(s.sse.pending) == 0 && bytes.Equal(buf, chunk) {
		return nil, false
	}
	return buf, true
}

// appendFailure appends an event answering the pending calls with errors.
func (s *ResultStream) appendFailure(buf []byte, why string) []byte {
	errs := s.calls.FailPending(why)
	if errs == nil {
		return buf
	}
	s.report([]ResultOutcome{{Judged: true, Outcome: ResultFailed, Reason: why}})
	buf = append(buf, "data: "...)
	buf = append(buf, errs...)
	return append(buf, "\n\n"...)
}

func (s *ResultStream) feedJSON(chunk []byte, eof bool) []byte {
	if s.mode == jsonAnswer {
		s.body = append(s.body, chunk...)
		if len(s.body) > s.max {
			s.log.Warn("result too large to judge by the result rule; withheld", "decision_id", s.calls.decisionID, "limit", s.max)
			s.body, s.mode = nil, jsonTooLarge
		}
	}
	if !eof {
		return nil
	}
	if s.mode == jsonTooLarge {
		errs := s.calls.FailPending(ErrResultTooLarge)
		s.report([]ResultOutcome{{Judged: true, Outcome: ResultFailed, Reason: ErrResultTooLarge}})
		return errs
	}
	msg, outs := s.calls.Judge(s.ctx, s.body)
	s.body = nil
	s.report(outs)
	return msg
}

// event is what goes on for one event: itself, unless its message
// answers a call: then what the result rule made of it.
func (s *ResultStream) event(ev []byte) []byte {
	e := parseEvent(ev)
	if !e.hasData || len(bytes.TrimSpace(e.data)) == 0 {
		return ev
	}
	if len(e.data) > s.max {
		// A complete event past the bound is judged as one that never
		// ends: it stands for the answers not yet given.
		s.log.Warn("SSE event too large to judge by the result rule; withheld", "decision_id", s.calls.decisionID, "limit", s.max)
		return s.appendFailure(nil, ErrResultTooLarge)
	}
	msg, outs := s.calls.Judge(s.ctx, e.data)
	s.report(outs)
	return e.replaced(ev, msg)
}

func (s *ResultStream) report(outs []ResultOutcome) {
	for i := range outs {
		o := &outs[i]
		if o.Err != nil {
			s.log.Warn("result rule could not judge a result; withheld", "decision_id", s.calls.decisionID, "method", o.Method, "error", o.Err)
		}
		s.calls.e.observeResult(s.ctx, s.calls.d, o)
	}
}
