package decision

import (
	"bytes"
	"log/slog"
)

// This file filters the text/event-stream answer to one list request as
// its bytes arrive, for every transport that sees responses (ext_proc, the
// proxy): the events are cut from chunks that may end anywhere (sse.go),
// the one event that answers the list request goes through FilterResponse,
// and every other event goes on as it came, as soon as it is complete.

// ListEventStream filters the event stream answering one list request. It
// is used by one goroutine; each answer stream needs its own.
type ListEventStream struct {
	list *ListRequest // nil: a replayed stream (NewReplayEventStream)
	// filter filters one message; nil out drops it (replayed streams).
	filter func(msg []byte) ([]byte, ListOutcome)
	// max bounds the bytes of one event held while it is incomplete.
	max int
	log *slog.Logger

	sse      sseSplitter
	answered bool // the answer to the list request has gone by
	// dropping: an event past the bound was dropped and the rest of it,
	// up to its blank line, is not yet behind us.
	dropping bool
}

// NewListEventStream starts filtering the event stream answering lr.
// filter filters one JSON-RPC message (ItemFilter.FilterResponse for the
// caller, with its outcome logged: LogListOutcome); maxEvent bounds an
// incomplete event (past it the event is dropped and, if the answer has
// not gone by, an error answers the list request: fail closed).
func NewListEventStream(lr *ListRequest, maxEvent int, logger *slog.Logger, filter func(msg []byte) ([]byte, ListOutcome)) *ListEventStream {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ListEventStream{list: lr, filter: filter, max: maxEvent, log: logger}
}

// NewReplayEventStream starts filtering an event stream that may replay
// answers to earlier requests (a GET resuming a stream): filter
// (ItemFilter.FilterReplayed for the caller) filters every event's
// message, and one past maxEvent is dropped.
func NewReplayEventStream(maxEvent int, logger *slog.Logger, filter func(msg []byte) ([]byte, ListOutcome)) *ListEventStream {
	s := NewListEventStream(nil, maxEvent, logger, filter)
	s.answered = true // no list request to answer with an error
	return s
}

// Feed takes the next chunk of the stream (eof: the last one) and returns
// what goes on for it: its complete events, the answer filtered; an event
// cut by the chunk's end waits for the rest. changed is false when the
// chunk goes on exactly as it came (out is then nil).
func (s *ListEventStream) Feed(chunk []byte, eof bool) (out []byte, changed bool) {
	var buf []byte
	s.sse.feed(chunk, eof, func(ev []byte) {
		if s.dropping {
			s.dropping = false // the end of the event dropped below
			return
		}
		buf = append(buf, s.event(ev)...)
	})
	if len(s.sse.pending) > s.max {
		// An event that never ends: it is dropped, its rest too as it
		// comes, and it stands for an unreadable answer (fail closed).
		s.log.Warn("SSE event too large to filter; dropped", "list", s.list.String(), "limit", s.max)
		s.sse, s.dropping = sseSplitter{}, true
		if !s.answered {
			s.answered = true
			buf = append(buf, "data: "...)
			buf = append(buf, ListError(s.list, ErrListTooLarge)...)
			buf = append(buf, "\n\n"...)
		}
	}
	if len(s.sse.pending) == 0 && bytes.Equal(buf, chunk) {
		return nil, false
	}
	return buf, true
}

// Holding says whether bytes of an incomplete event are held, waiting for
// the rest of it.
func (s *ListEventStream) Holding() bool { return len(s.sse.pending) > 0 }

// event is what goes on for one event: itself, unless it is (or could be)
// the answer to the list request. The first answer is filtered; data that
// cannot be read strictly might be the answer to a lenient reader, so it is
// replaced by an error answer; after the answer, another answer or
// unreadable data is dropped.
func (s *ListEventStream) event(ev []byte) []byte {
	e := parseEvent(ev)
	if !e.hasData || len(bytes.TrimSpace(e.data)) == 0 {
		return ev // a priming event, or one with no message
	}
	msg, res := s.filter(e.data)
	if s.list == nil {
		switch {
		case msg == nil:
			return nil
		case bytes.Equal(msg, e.data):
			return ev
		}
		return e.render(msg)
	}
	if res.Malformed == nil && !res.Answer {
		return ev
	}
	if s.answered {
		return nil
	}
	s.answered = true
	if bytes.Equal(msg, e.data) {
		return ev
	}
	return e.render(msg)
}

// Messages of the errors that replace a list answer that cannot be
// filtered (ListError), shared by the transports.
const (
	ErrListTooLarge = "the list answer is too large to filter"
	ErrListEncoded  = "the list answer could not be read: its content coding is not supported"
)

// LogListOutcome logs what filtering one message of lr's answer (nil: of a
// replayed stream) did, when it is worth a line: an unreadable answer, an
// emptied list, items whose evaluation failed.
func LogListOutcome(log *slog.Logger, lr *ListRequest, res ListOutcome) {
	switch {
	case res.Malformed != nil:
		log.Warn("list answer unreadable; not passed on", "list", lr.String(), "error", res.Malformed)
	case res.Emptied != nil:
		log.Info("list answer emptied", "list", lr.String(), "why", res.Emptied.Error(), "items", res.Items)
	}
	for _, err := range res.Errors {
		log.Warn("visibility evaluation failed; item hidden", "list", lr.String(), "error", err)
	}
}
