package authzen

import (
	"bytes"
	"reflect"
	"testing"

	segjson "github.com/segmentio/encoding/json"
)

// FuzzDecode: a body decode accepts fills the request exactly as a reader
// that matches member names case-sensitively fills it (segmentio's
// encoding/json with case-insensitive matching off), so no member reaches
// a field another reader would leave empty.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"subject":{"type":"user","id":"alice"},"action":{"name":"tools/call"},"resource":{"type":"tool","id":"read_file"},"context":{"path":"/data/x"}}`,
		`{"subject":{"type":"user","id":"alice"},"evaluations":[{"resource":{"type":"tool","id":"a"}},{"action":{"name":"ping"}}],"options":{"evaluations_semantic":"execute_all"}}`,
		`{"resource":{"id":"delete_all","ID":"echo"}}`,
		`{"resource":{"ID":"echo"}}`,
		`{"context":{"path":"/etc/passwd","path":"/data/x"}}`,
		"{\"context\":{\"path\":\"/data/\xff\"}}",
		`{"subject":{"properties":{"token":"a","token":"b"}}}`,
		`{"context":{"a":99.99999999999999999999}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var ours EvaluationsRequest
		if decode(body, &ours) != nil {
			return
		}
		var theirs EvaluationsRequest
		d := segjson.NewDecoder(bytes.NewReader(body))
		d.DontMatchCaseInsensitiveStructFields()
		if err := d.Decode(&theirs); err != nil {
			return // a stricter reader refusing is no second reading
		}
		if !reflect.DeepEqual(ours, theirs) {
			t.Fatalf("encoding/json reads %+v, a case-sensitive reader %+v\nbody: %q", ours, theirs, body)
		}
	})
}
