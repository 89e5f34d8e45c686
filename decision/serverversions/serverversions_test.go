package serverversions

import (
	"slices"
	"testing"
)

// TestLearnAnswer: what each answer teaches, in the order the answers
// come (one Memory per case).
func TestLearnAnswer(t *testing.T) {
	discover := func(vs string) string {
		return `{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":[` + vs + `],"capabilities":{}}}`
	}
	initialize := func(v string) string {
		return `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"` + v + `","capabilities":{}}}`
	}
	tests := map[string]struct {
		answers []string
		want    []string
	}{
		"discover_json": {answers: []string{discover(`"2026-07-28","2025-11-25"`)}, want: []string{"2025-11-25", "2026-07-28"}},
		"discover_event_stream": {
			answers: []string{"event: message\r\nid: 1\r\ndata: " + discover(`"2026-07-28"`) + "\r\n\r\n"},
			want:    []string{"2026-07-28"},
		},
		"event_stream_notification_first": {
			answers: []string{"data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{}}\n\ndata: " + initialize("2025-06-18") + "\n\n"},
			want:    []string{"2025-06-18"},
		},
		"discover_again_replaces": {
			answers: []string{discover(`"2025-11-25","2026-07-28"`), discover(`"2026-07-28"`)},
			want:    []string{"2026-07-28"},
		},
		"initialize_adds": {
			answers: []string{discover(`"2026-07-28"`), initialize("2025-06-18"), initialize("2025-06-18")},
			want:    []string{"2025-06-18", "2026-07-28"},
		},
		"error_answer_teaches_nothing": {
			answers: []string{discover(`"2026-07-28"`), `{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"no"}}`},
			want:    []string{"2026-07-28"},
		},
		"unreadable_teaches_nothing": {answers: []string{`{"jsonrpc":`, "data: [1,2\n\n", ""}, want: nil},
		"empty_list_teaches_nothing": {answers: []string{discover(``)}, want: nil},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var m Memory
			for _, a := range tt.answers {
				m.LearnAnswer("files", []byte(a))
			}
			if got := m.Versions("files"); !slices.Equal(got, tt.want) {
				t.Errorf("Versions = %q, want %q", got, tt.want)
			}
			if got := m.Versions("other"); got != nil {
				t.Errorf("another server's Versions = %q, want none", got)
			}
		})
	}
}

// TestIntersect: the accepted revisions the server supports, in the
// accepted order; all accepted when the server never said or supports
// none of them.
func TestIntersect(t *testing.T) {
	accepted := []string{"2025-06-18", "2025-11-25", "2026-07-28"}
	tests := map[string]struct {
		supported, want []string
	}{
		"never_said":   {nil, accepted},
		"some":         {[]string{"2026-07-28", "2025-06-18", "2099-01-01"}, []string{"2025-06-18", "2026-07-28"}},
		"none_of_them": {[]string{"2024-11-05"}, accepted},
		"all":          {accepted, accepted},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Intersect(accepted, tt.supported); !slices.Equal(got, tt.want) {
				t.Errorf("Intersect = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBounded: a server past MaxServers is not remembered.
func TestBounded(t *testing.T) {
	var m Memory
	for i := range MaxServers + 1 {
		m.LearnAnswer(string(rune('a'+i%26))+string(rune(i)), []byte(`{"result":{"protocolVersion":"2025-06-18"}}`))
	}
	if len(m.m) != MaxServers {
		t.Errorf("%d servers remembered, want %d", len(m.m), MaxServers)
	}
}

// FuzzLearnAnswer: any answer bytes are read without a panic, and what is
// learned is a sorted list without duplicates.
func FuzzLearnAnswer(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"supportedVersions":["2026-07-28","2025-11-25"]}}`))
	f.Add([]byte("event: message\ndata: {\"result\":{\"protocolVersion\":\"2025-06-18\"}}\n\n"))
	f.Add([]byte("data: {\"result\":\ndata: {}}\n\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		var m Memory
		m.LearnAnswer("", answer)
		got := m.Versions("")
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) || len(got) > maxVersions {
			t.Fatalf("learned %q from %q", got, answer)
		}
	})
}
