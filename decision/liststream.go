package decision

import (
	"bytes"
	"log/slog"
)

// This file filters the answer to a request holding list requests (or a
// GET's stream) as its bytes arrive, for every transport that sees
// responses (ext_proc, the proxy). What the answer is comes from its bytes,
// never from its content-type (clients read a body whose content-type
// merely contains application/json as JSON, and may differ on a repeated
// or odd one): a body whose first byte past a byte order mark and white
// space is { or [ is JSON, held whole and filtered at its end; anything
// else is an event stream, whose events are cut from chunks that may end
// anywhere (sse.go), each event's message going through FilterResponse,
// and every event going on as soon as it is complete.

// ListEventStream filters the event stream answering a request that
// holds list requests (or a GET's stream). It is used by one goroutine;
// each answer stream needs its own.
type ListEventStream struct {
	list *ListRequest
	// filter filters one message; nil out drops it.
	filter func(msg []byte) ([]byte, ListOutcome)
	// max bounds the bytes of one event held while it is incomplete.
	max int
	log *slog.Logger

	// mode is what the answer was found to be; head holds its first
	// bytes until that is known, body a JSON answer until its end.
	mode answerMode
	head []byte
	body []byte

	sse sseSplitter
	// answered[i]: list request i has been answered (or answered with
	// an error).
	answered []bool
	// dropping: an event past the bound was dropped and the rest of it,
	// up to its blank line, is not yet behind us.
	dropping bool
}

// NewListEventStream starts filtering the event stream answering lr.
// filter filters the message of one event (ItemFilter.FilterResponse for
// the caller, with its outcome logged: LogListOutcome); maxEvent bounds an
// incomplete event (past it the event is dropped and the list requests not
// yet answered get an error answer: fail closed).
func NewListEventStream(lr *ListRequest, maxEvent int, logger *slog.Logger, filter func(msg []byte) ([]byte, ListOutcome)) *ListEventStream {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ListEventStream{list: lr, filter: filter, max: maxEvent, log: logger, answered: make([]bool, len(lr.Calls))}
}

// NewReplayEventStream starts filtering a GET's event stream, which may
// replay answers to earlier requests (a stream resumed with
// Last-Event-ID): filter (ItemFilter.FilterReplayed for the caller)
// filters every event's message, and one past maxEvent is dropped.
func NewReplayEventStream(maxEvent int, logger *slog.Logger, filter func(msg []byte) ([]byte, ListOutcome)) *ListEventStream {
	return NewListEventStream(&ListRequest{Replay: true}, maxEvent, logger, filter)
}

// Feed takes the next chunk of the stream (eof: the last one) and returns
// what goes on for it: its complete events, the answers filtered; an event
// cut by the chunk's end waits for the rest. changed is false when the
// chunk goes on exactly as it came (out is then nil).
func (s *ListEventStream) Feed(chunk []byte, eof bool) (out []byte, changed bool) {
	fromHead := false // chunk is what was held, not the caller's
	if s.mode == sniffing {
		fromHead = true
		s.head = append(s.head, chunk...)
		mode, skip := sniffAnswer(s.head, eof)
		if mode == sniffing {
			return nil, true // held until its first byte that counts
		}
		s.mode, chunk = mode, s.head[skip:]
		if skip > 0 {
			chunk = bytes.Clone(chunk) // a byte order mark: dropped
		}
		s.head = nil
	}
	if s.mode == jsonAnswer {
		return s.feedJSON(chunk, eof), true
	}
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
		if errs := ListErrors(s.list, s.answered, ErrListTooLarge); errs != nil {
			for i := range s.answered {
				s.answered[i] = true
			}
			buf = append(buf, "data: "...)
			buf = append(buf, errs...)
			buf = append(buf, "\n\n"...)
		}
	}
	if !fromHead && len(s.sse.pending) == 0 && bytes.Equal(buf, chunk) {
		return nil, false
	}
	return buf, true
}

// Holding says whether bytes of an incomplete event (or of a JSON
// answer) are held, waiting for the rest.
func (s *ListEventStream) Holding() bool {
	return len(s.sse.pending) > 0 || len(s.head) > 0 || s.mode == jsonAnswer
}

// allAnswered reports whether each of the list requests was answered
// already.
func (s *ListEventStream) allAnswered(calls []int) bool {
	for _, i := range calls {
		if !s.answered[i] {
			return false
		}
	}
	return true
}

// answerMode is what an answer was found to be.
type answerMode uint8

const (
	sniffing     answerMode = iota // not known yet
	eventsAnswer                   // an event stream
	jsonAnswer                     // one JSON value (a message or a batch)
	jsonTooLarge                   // a JSON answer past the bound: an error at its end
)

// utf8BOM is the byte order mark an event stream may start with, which
// its readers drop (as fetch's body readers do before JSON).
var utf8BOM = []byte("\xef\xbb\xbf")

// sniffAnswer reads the first bytes of an answer: JSON when its first
// byte past a byte order mark and white space is { or [, else an event
// stream; skip is the length of the byte order mark to drop. sniffing:
// more bytes are needed (only a mark, or white space, so far).
func sniffAnswer(head []byte, eof bool) (_ answerMode, skip int) {
	if bytes.HasPrefix(head, utf8BOM) {
		skip = len(utf8BOM)
	} else if len(head) < len(utf8BOM) && bytes.HasPrefix(utf8BOM, head) && !eof {
		return sniffing, 0
	}
	for _, c := range head[skip:] {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{', '[':
			return jsonAnswer, skip
		}
		return eventsAnswer, skip
	}
	if eof {
		return eventsAnswer, skip // white space only: nothing to filter
	}
	return sniffing, 0
}

// feedJSON holds a JSON answer until its end, then gives it filtered:
// what cannot be read, or is past the bound, is replaced by errors for
// the list requests.
func (s *ListEventStream) feedJSON(chunk []byte, eof bool) []byte {
	if s.mode == jsonAnswer {
		s.body = append(s.body, chunk...)
		if len(s.body) > s.max {
			s.log.Warn("list answer too large to filter; replaced by an error", "list", s.list.String(), "limit", s.max)
			s.body, s.mode = nil, jsonTooLarge
		}
	}
	if !eof {
		return nil
	}
	if s.mode == jsonTooLarge {
		return ListErrors(s.list, s.answered, ErrListTooLarge)
	}
	msg, res := s.filter(s.body)
	s.body = nil
	if res.Malformed != nil && !s.list.Replay {
		msg = ListErrors(s.list, nil, "the list answer could not be read: "+res.Malformed.Error())
	}
	return msg
}

// event is what goes on for one event: itself, unless its message is (or
// holds, or could be read as) a list answer, which goes on filtered, or
// as an error answering the list requests. Data that cannot be read
// strictly stands for the answers not yet given (an error for each; once
// all are given, it is dropped): a lenient reader might find a list in it.
// A second answer to the same list requests is dropped.
func (s *ListEventStream) event(ev []byte) []byte {
	e := parseEvent(ev)
	if !e.hasData || len(bytes.TrimSpace(e.data)) == 0 {
		return ev // a priming event, or one with no message
	}
	msg, res := s.filter(e.data)
	switch {
	case res.Malformed != nil && !s.list.Replay:
		msg = ListErrors(s.list, s.answered, "the list answer could not be read: "+res.Malformed.Error())
	case len(res.Answered) > 0 && s.allAnswered(res.Answered):
		return nil // a second answer (or one after the error that stood for it)
	}
	for _, i := range res.Answered {
		s.answered[i] = true
	}
	return e.replaced(ev, msg)
}

// Messages of the errors that replace a list answer that cannot be
// filtered (ListError), shared by the transports.
const (
	ErrListTooLarge = "the list answer is too large to filter"
	ErrListEncoded  = "the list answer could not be read: its content coding is not supported"
)

// LogListOutcome logs what filtering one message of lr's answer did, when
// it is worth a line: an unreadable answer, an emptied list, items whose
// evaluation failed (the list was answered with an error).
func LogListOutcome(log *slog.Logger, lr *ListRequest, res ListOutcome) {
	switch {
	case res.Malformed != nil:
		log.Warn("list answer unreadable; not passed on", "list", lr.String(), "error", res.Malformed)
	case res.Emptied != nil:
		log.Info("list answer emptied", "list", lr.String(), "why", res.Emptied.Error(), "items", res.Items)
	}
	for _, err := range res.Errors {
		log.Warn("visibility evaluation failed; list answered with an error", "list", lr.String(), "error", err)
	}
}
