package toolpin

import "bytes"

// EventData returns the data of each event of a text/event-stream, in
// order (the WHATWG rules: lines end with CRLF, LF or CR; "data" lines are
// joined with LF, one space after the colon dropped; a blank line ends an
// event; comments and other fields are ignored; an event with no data
// line, or one the stream cuts before its blank line, yields nothing).
func EventData(stream []byte) [][]byte {
	var (
		out     [][]byte
		data    []byte
		hasData bool
	)
	for len(stream) > 0 {
		i := bytes.IndexAny(stream, "\r\n")
		if i < 0 {
			break // an unterminated last line belongs to no complete event
		}
		line := stream[:i]
		if stream[i] == '\r' && i+1 < len(stream) && stream[i+1] == '\n' {
			i++
		}
		stream = stream[i+1:]
		if len(line) == 0 {
			if hasData {
				out = append(out, bytes.TrimSuffix(data, []byte{'\n'}))
			}
			data, hasData = nil, false
			continue
		}
		field, value, found := bytes.Cut(line, []byte{':'})
		if !found {
			value = nil
		} else if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
		if string(field) == "data" {
			data = append(append(data, value...), '\n')
			hasData = true
		}
	}
	return out
}
