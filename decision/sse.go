package decision

import "bytes"

// sseSplitter cuts a text/event-stream into events as its bytes arrive, in
// chunks that may end anywhere: inside a line, inside "data:", between the
// \r and \n of a line ending. An event is its lines up to and including
// the blank line that ends it; lines end with \r\n, \n or \r (the SSE
// grammar), so a chunk that ends in \r waits for the next byte.
type sseSplitter struct {
	pending []byte // the bytes of the event not yet complete
	scanned int    // how far pending has been scanned for line ends
	lineAt  int    // where the line being scanned starts
}

// feed adds p and calls event with every event it completes, in order
// (the slices are valid only during the call). At eof the rest, if any, is
// given as a last event without its blank line.
func (s *sseSplitter) feed(p []byte, eof bool, event func([]byte)) {
	s.pending = append(s.pending, p...)
	start := 0
	for i := s.scanned; i < len(s.pending); i++ {
		c := s.pending[i]
		if c != '\n' && c != '\r' {
			continue
		}
		end := i + 1
		if c == '\r' {
			if i+1 == len(s.pending) && !eof {
				s.scanned = i // decide \r or \r\n with the next byte
				s.compact(start)
				return
			}
			if i+1 < len(s.pending) && s.pending[i+1] == '\n' {
				end++
			}
		}
		blank := i == s.lineAt
		i = end - 1
		s.lineAt = end
		if blank {
			event(s.pending[start:end])
			start = end
		}
	}
	s.scanned = len(s.pending)
	if eof && start < len(s.pending) {
		event(s.pending[start:])
		start = len(s.pending)
	}
	s.compact(start)
}

// compact drops the bytes already given as events.
func (s *sseSplitter) compact(start int) {
	if start == 0 {
		return
	}
	n := copy(s.pending, s.pending[start:])
	s.pending = s.pending[:n]
	s.scanned -= start
	s.lineAt -= start
}

// sseEvent is one event read: its data (the data lines joined with \n),
// whether it had any, and its lines other than data, kept as sent.
type sseEvent struct {
	data    []byte
	hasData bool
	others  [][]byte // whole lines with their endings: id, event, retry, comments
	blank   []byte   // the blank line that ended the event ("" at eof)
}

// parseEvent reads the lines of one event as the SSE grammar says.
func parseEvent(ev []byte) sseEvent {
	var out sseEvent
	var data bytes.Buffer
	for len(ev) > 0 {
		line, rest, ending := cutLine(ev)
		ev = rest
		whole := line
		if ending > 0 {
			whole = line[:len(line)+ending]
		}
		if len(line) == 0 {
			out.blank = whole
			continue
		}
		name, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			name, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if string(name) == "data" {
			if out.hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			out.hasData = true
			continue
		}
		out.others = append(out.others, whole)
	}
	out.data = data.Bytes()
	return out
}

// cutLine returns the first line of b (without its ending, but with the
// ending's length so the caller can take it), and the rest.
func cutLine(b []byte) (line, rest []byte, ending int) {
	i := bytes.IndexAny(b, "\r\n")
	if i < 0 {
		return b, nil, 0
	}
	n := 1
	if b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n' {
		n = 2
	}
	return b[: i : i+n], b[i+n:], n
}

// replaced is what goes on for event ev (e parsed from it) whose message
// a filter turned into msg: nothing for nil, ev itself when msg is its
// data, else the event rendered with msg.
func (e *sseEvent) replaced(ev, msg []byte) []byte {
	switch {
	case msg == nil:
		return nil
	case bytes.Equal(msg, e.data):
		return ev
	}
	return e.render(msg)
}

// render writes the event back with data as its only data line: the other
// lines keep their place before it, and the ending is kept.
func (e *sseEvent) render(data []byte) []byte {
	var b bytes.Buffer
	for _, l := range e.others {
		b.Write(l)
	}
	b.WriteString("data: ")
	b.Write(data)
	b.WriteByte('\n')
	if e.blank != nil {
		b.Write(e.blank)
	}
	return b.Bytes()
}
