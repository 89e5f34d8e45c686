package decisionlog_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
)

// recordedLog is the decision log of three real decisions (an allowed
// call, an argument denial, a 401) as the file sink writes it, and what
// each decision recorded.
func recordedLog(t *testing.T) ([]byte, []decisionlog.Result, []string) {
	t.Helper()
	var out syncBuffer
	dl, err := decisionlog.New(decisionlog.Options{Writer: &out})
	if err != nil {
		t.Fatal(err)
	}
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", func(o *decision.Options) { o.Observer = dl })
	cred := token.Claimed(map[string]any{"sub": "alice", "scope": "mcp:tools files:read", "exp": float64(time.Now().Add(time.Hour).Unix())})
	var results []decisionlog.Result
	var ids []string
	for i, c := range []struct {
		path string
		cred token.Credential
	}{{"/data/a", cred}, {"/etc/passwd", cred}, {"/data/a", token.Credential{Kind: token.NoCredential}}} {
		d := e.Decide(context.Background(), &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
			Headers:    map[string]string{"content-type": "application/json"},
			Body:       fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"read_file","arguments":{"path":%q}}}`, i, c.path),
			Credential: c.cred})
		results = append(results, decisionlog.ResultOf(d))
		ids = append(ids, d.ID)
	}
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	return out.b.Bytes(), results, ids
}

// TestReadEvents: events read back from the file sink's lines, from an
// upload's gzip JSON array and from a mixture have the decision ids and
// results the decisions had, and their inputs.
func TestReadEvents(t *testing.T) {
	lines, results, ids := recordedLog(t)
	var arr bytes.Buffer
	arr.WriteByte('[')
	for i, l := range bytes.Split(bytes.TrimSpace(lines), []byte("\n")) {
		if i > 0 {
			arr.WriteByte(',')
		}
		arr.Write(l)
	}
	arr.WriteByte(']')
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(arr.Bytes())
	_ = zw.Close()
	first := bytes.SplitAfter(lines, []byte("\n"))[0]
	inputs := map[string][]byte{
		"lines":        lines,
		"array":        arr.Bytes(),
		"gzip_array":   gz.Bytes(),
		"line_then_ar": append(append([]byte{}, first...), arr.Bytes()...),
	}
	for name, in := range inputs {
		t.Run(name, func(t *testing.T) {
			var gotIDs []string
			var gotResults []decisionlog.Result
			err := decisionlog.ReadEvents(bytes.NewReader(in), func(i int, ev *decisionlog.Recorded) error {
				if len(ev.Input) == 0 || !json.Valid(ev.Input) {
					t.Errorf("event %d has no input", i)
				}
				gotIDs = append(gotIDs, ev.DecisionID)
				gotResults = append(gotResults, ev.Result)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			wantIDs, wantResults := ids, results
			if name == "line_then_ar" {
				wantIDs, wantResults = append(ids[:1:1], ids...), append(results[:1:1], results...)
			}
			if diff := cmp.Diff(wantIDs, gotIDs); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			for i := range wantResults {
				if i >= len(gotResults) || !wantResults[i].Equal(gotResults[i]) {
					t.Errorf("results %+v, want %+v", gotResults, wantResults)
					break
				}
			}
		})
	}
}

// TestReadEventsErrors: what is not a decision log is an error naming
// where it stopped, never an empty success.
func TestReadEventsErrors(t *testing.T) {
	tests := map[string]struct{ in, want string }{
		"not_json":        {`{"decision_id": "a"} nope`, "after 1 events"},
		"no_decision_id":  {`{"result": {"allow": true}}`, "event 0: no decision_id"},
		"array_of_number": {`[1]`, "event 0"},
		"bad_result":      {`{"decision_id": "a", "result": {"allow": "yes"}}`, "event 0"},
		"truncated_gzip":  {"\x1f\x8b\x08\x00", "gzip"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := decisionlog.ReadEvents(strings.NewReader(tc.in), func(int, *decisionlog.Recorded) error { return nil })
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
}

// FuzzReadEvents: any bytes are read without a panic, and the events read
// from them, written back one per line, read back the same.
func FuzzReadEvents(f *testing.F) {
	f.Add([]byte(`{"decision_id":"a","input":{"mcp":{"method":"ping"}},"result":{"allow":true,"code":"allowed"}}` + "\n"))
	f.Add([]byte(`[{"decision_id":"a","result":{"allow":false,"code":"policy_denied","status":200,"scopes":["x"]}},{"decision_id":"b","shadow":true}]`))
	f.Add([]byte(`{"decision_id":"a","erased":["/input/x"],"masked":["/input/y"],"dry_run":true}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var evs []*decisionlog.Recorded
		if err := decisionlog.ReadEvents(bytes.NewReader(data), func(_ int, ev *decisionlog.Recorded) error {
			evs = append(evs, ev)
			return nil
		}); err != nil {
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		for _, ev := range evs {
			if err := enc.Encode(ev); err != nil {
				t.Fatalf("re-encoding %+v: %v", ev, err)
			}
		}
		n := 0
		if err := decisionlog.ReadEvents(&buf, func(i int, ev *decisionlog.Recorded) error {
			if ev.DecisionID != evs[i].DecisionID || !ev.Result.Equal(evs[i].Result) || ev.Shadow != evs[i].Shadow {
				t.Errorf("event %d read back as %+v, was %+v", i, ev, evs[i])
			}
			n++
			return nil
		}); err != nil || n != len(evs) {
			t.Fatalf("reading back %d events: %d, %v", len(evs), n, err)
		}
	})
}

// TestResultRateLimit: an allowed decision's rate_limit is in its event's
// result and read back, so that replay tells a changed rate_limit apart.
func TestResultRateLimit(t *testing.T) {
	var buf bytes.Buffer
	dl, err := decisionlog.New(decisionlog.Options{Writer: &buf})
	if err != nil {
		t.Fatal(err)
	}
	d := &decision.Decision{ID: "d1", Allow: true, Code: decision.CodeAllowed,
		RateLimit: []decision.RateLimitEntry{{Name: "subject", Value: "alice"}, {Name: "tool", Value: "query"}}}
	dl.Observe(context.Background(), nil, d, ast.NewObject(), time.Millisecond)
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"rate_limit":{"subject":"alice","tool":"query"}`) {
		t.Fatalf("the event does not record the rate_limit: %s", buf.String())
	}
	var got []decisionlog.Result
	if err := decisionlog.ReadEvents(&buf, func(_ int, ev *decisionlog.Recorded) error {
		got = append(got, ev.Result)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := decisionlog.ResultOf(d)
	if len(got) != 1 || !got[0].Equal(want) {
		t.Fatalf("read back %+v, want %+v", got, want)
	}
	other := decisionlog.ResultOf(&decision.Decision{Allow: true, Code: decision.CodeAllowed,
		RateLimit: []decision.RateLimitEntry{{Name: "subject", Value: "alice"}}})
	if want.Equal(other) {
		t.Error("results with different rate limits are equal")
	}
}
