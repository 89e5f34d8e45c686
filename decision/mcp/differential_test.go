package mcp_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	goast "go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	sdkjsonrpc "github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/open-policy-agent/opa/v1/ast"
	segjson "github.com/segmentio/encoding/json"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

var updateHostile = flag.Bool("update-hostile", false,
	"rewrite testdata/hostile and the named seeds of testdata/fuzz/FuzzDifferential from hostileBodies")

// call is a tools/call request with the given params.
func call(params string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
}

// args is a tools/call of read_file with the given arguments.
func args(a string) string { return call(`{"name":"read_file","arguments":` + a + `}`) }

// nestedArgs is an arguments object n objects deep, itself included.
func nestedArgs(n int) string {
	return strings.Repeat(`{"a":`, n) + `"/etc/shadow"` + strings.Repeat(`}`, n)
}

// hostileBodies are the bodies every reader must agree on whenever mcpauthz
// accepts them: one or more per way a JSON reader can be made to see
// something else than the policy saw, beside ordinary messages of each MCP
// method. TestHostileCorpus keeps testdata/hostile (read by jsonparse.mjs)
// and the seeds of testdata/fuzz/FuzzDifferential equal to this table.
var hostileBodies = map[string]string{
	// Ordinary messages: every reader must accept them and agree.
	"valid_tools_call":               args(`{"path":"/srv/data/report.txt","limit":10,"opts":{"follow":false,"tags":["a",null,1.5]}}`),
	"valid_tools_call_no_arguments":  call(`{"name":"list_files"}`),
	"valid_tools_call_meta":          call(`{"_meta":{"progressToken":"p1"},"name":"echo","arguments":{"text":"hi"}}`),
	"valid_tools_list":               `{"jsonrpc":"2.0","id":3,"method":"tools/list","params":{"cursor":"c1"}}`,
	"valid_resources_read":           `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///srv/data/report.txt"}}`,
	"valid_resources_subscribe":      `{"jsonrpc":"2.0","id":"s","method":"resources/subscribe","params":{"uri":"file:///srv/data/"}}`,
	"valid_resources_unsubscribe":    `{"jsonrpc":"2.0","id":"u","method":"resources/unsubscribe","params":{"uri":"file:///srv/data/"}}`,
	"valid_prompts_get":              `{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"summarize","arguments":{"style":"short"}}}`,
	"valid_initialize":               `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-03-26","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
	"valid_notification_initialized": `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
	"valid_response_result":          `{"jsonrpc":"2.0","id":5,"result":{"content":[]}}`,
	"valid_response_error":           `{"jsonrpc":"2.0","id":6,"error":{"code":-32601,"message":"no"}}`,
	"valid_whitespace":               " \r\n\t{ \"jsonrpc\" : \"2.0\" ,\n\"id\" : 1 , \"method\" :\t\"tools/call\" , \"params\" : { \"name\" : \"read_file\" , \"arguments\" : { } } }\n",
	"valid_unicode":                  call(`{"name":"überprüfen","arguments":{"städte":"\u00fc\ud83d\ude00😀","\u00e9":"é"}}`),
	"valid_escapes":                  `{"jsonrpc":"2.0","id":1,"method":"tools\/call","params":{"n\u0061me":"read_file","arguments":{"p":"a\"b\\c\/d\b\f\n\r\t\u0000\u001f"}}}`,
	"valid_replacement_char":         call(`{"name":"read_file\ufffd"}`),
	"valid_batch":                    `[` + call(`{"name":"read_file","arguments":{"path":"/srv/ok"}}`) + `,{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"file:///srv/ok"}}]`,
	"valid_batch_single":             `[` + call(`{"name":"read_file"}`) + `]`,
	"valid_proto_keys":               args(`{"__proto__":{"admin":true},"constructor":{"prototype":{"admin":true}},"toString":1}`),

	// Member names that differ only in case: encoding/json matches struct
	// fields case-insensitively and keeps the last match.
	"case_name_then_Name":           call(`{"name":"read_file","Name":"delete_file"}`),
	"case_NAME_then_name":           call(`{"NAME":"delete_file","name":"read_file"}`),
	"case_name_then_nAmE":           `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"summarize","nAmE":"exfiltrate"}}`,
	"case_uri_then_URI":             `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///srv/ok","URI":"file:///etc/shadow"}}`,
	"case_arguments_then_Arguments": call(`{"name":"read_file","arguments":{"path":"/srv/ok"},"Arguments":{"path":"/etc/shadow"}}`),
	"case_path_then_Path":           args(`{"path":"/srv/ok","Path":"/etc/shadow"}`),
	"case_nested_path_then_PATH":    args(`{"opts":{"path":"/srv/ok","PATH":"/etc/shadow"}}`),
	"case_params_then_Params":       `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"},"Params":{"name":"delete_file"}}`,
	"case_method_then_METHOD":       `{"jsonrpc":"2.0","id":1,"method":"tools/list","METHOD":"tools/call","params":{"name":"delete_file"}}`,
	"case_Method_on_response":       `{"jsonrpc":"2.0","id":1,"result":{},"Method":"tools/call","params":{"name":"delete_file"}}`,
	"case_jsonrpc_then_JSONRPC":     `{"jsonrpc":"2.0","JSONRPC":"1.0","id":1,"method":"tools/list"}`,
	"case_id_then_ID":               `{"jsonrpc":"2.0","id":1,"ID":2,"method":"tools/list"}`,
	"case_meta_then_META":           call(`{"name":"read_file","_meta":{"a":1},"_META":{"a":2}}`),

	// Names equal under Unicode simple case folding: ſ (U+017F) folds to s,
	// the Kelvin sign K (U+212A) to k; encoding/json folds both.
	"fold_long_s_params":        `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"},"paramſ":{"name":"delete_file"}}`,
	"fold_long_s_params_escape": `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"},"param\u017f":{"name":"delete_file"}}`,
	"fold_long_s_arguments":     call(`{"name":"read_file","arguments":{"path":"/srv/ok"},"argumentſ":{"path":"/etc/shadow"}}`),
	"fold_long_s_jsonrpc":       `{"jsonrpc":"2.0","jſonrpc":"1.0","id":1,"method":"tools/list"}`,
	"fold_kelvin_key":           args(`{"kind":"soft","` + "\u212a" + `ind":"hard"}`),
	"fold_kelvin_key_escape":    args(`{"kind":"soft","\u212aind":"hard"}`),

	// A lone variant of an argument name is no duplicate, and mcpauthz
	// accepts it: the policy sees "Path" or "\u212aind", while a Go tool
	// decoding its arguments with encoding/json into a field tagged "path"
	// or "kind" reads the value as that field. No reader here knows a tool's
	// argument names, so nothing fails; see naiveFields.
	"lone_Path":               args(`{"Path":"/etc/shadow"}`),
	"lone_kelvin_kind":        args(`{"` + "\u212a" + `ind":"hard"}`),
	"lone_kelvin_kind_escape": args(`{"\u212aind":"hard"}`),
	"lone_long_s_size":        args(`{"\u017fize":9}`),

	// The same member name twice, at each level.
	"dup_envelope_method":     `{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"tools/call","params":{"name":"delete_file"}}`,
	"dup_envelope_params":     `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"},"params":{"name":"delete_file"}}`,
	"dup_envelope_jsonrpc":    `{"jsonrpc":"1.0","jsonrpc":"2.0","id":1,"method":"tools/list"}`,
	"dup_envelope_id":         `{"jsonrpc":"2.0","id":1,"id":"x","method":"tools/list"}`,
	"dup_params_name":         call(`{"name":"read_file","name":"delete_file"}`),
	"dup_params_uri":          `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///srv/ok","uri":"file:///etc/shadow"}}`,
	"dup_params_arguments":    call(`{"name":"read_file","arguments":{"path":"/srv/ok"},"arguments":{"path":"/etc/shadow"}}`),
	"dup_argument_key":        args(`{"path":"/srv/ok","path":"/etc/shadow"}`),
	"dup_nested_key":          args(`{"filter":{"owner":"me","owner":"*"}}`),
	"dup_in_array":            args(`{"items":[{"id":1,"id":2}]}`),
	"dup_escaped_name":        call(`{"name":"read_file","n\u0061me":"delete_file"}`),
	"dup_escaped_method":      `{"jsonrpc":"2.0","id":1,"method":"tools/list","\u006d\u0065\u0074\u0068\u006f\u0064":"tools/call","params":{"name":"delete_file"}}`,
	"dup_many_members":        args(`{` + members(20) + `,"k3":"again"}`),
	"dup_batch_second":        `[` + call(`{"name":"read_file"}`) + `,` + call(`{"name":"read_file","name":"delete_file"}`) + `]`,
	"dup_prompt_argument_key": `{"jsonrpc":"2.0","id":"p","method":"prompts/get","params":{"name":"summarize","arguments":{"style":"short","style":"leak"}}}`,

	// Control characters and NUL in member names.
	"ctrl_trailing_nul_then_name": call(`{"name\u0000":"delete_file","name":"read_file"}`),
	"ctrl_name_then_trailing_nul": call(`{"name":"read_file","name\u0000":"delete_file"}`),
	"ctrl_newline_in_key":         args(`{"path\n":"/etc/shadow","path":"/srv/ok"}`),
	"ctrl_unit_separator_in_key":  args(`{"pa\u001fth":"/etc/shadow","path":"/srv/ok"}`),
	"ctrl_nul_in_method_key":      `{"jsonrpc":"2.0","id":1,"method":"tools/list","method\u0000":"tools/call","params":{"name":"delete_file"}}`,
	"ctrl_tab_in_params_key":      `{"jsonrpc":"2.0","id":1,"method":"tools/call","params\t":{"name":"delete_file"},"params":{"name":"read_file"}}`,

	// Bytes that are not UTF-8. Go readers replace each bad byte with
	// U+FFFD; a WHATWG decoder (Node) replaces a truncated sequence once.
	"utf8_invalid_byte_in_name":    call("{\"name\":\"read_file\xff\"}"),
	"utf8_truncated_in_name":       call("{\"name\":\"read_file\xe2\x82\"}"),
	"utf8_truncated_in_argument":   args("{\"path\":\"/srv/\xf0\x9f\x98\"}"),
	"utf8_overlong_slash":          args("{\"path\":\"/srv/..\xc0\xaf..\xc0\xafetc/shadow\"}"),
	"utf8_encoded_surrogate":       args("{\"path\":\"/srv/\xed\xa0\x80\"}"),
	"utf8_above_max":               args("{\"path\":\"/srv/\xf4\x90\x80\x80\"}"),
	"utf8_invalid_in_argument_key": args("{\"path\xff\":\"/etc/shadow\",\"path\":\"/srv/ok\"}"),
	"utf8_invalid_in_uri":          "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"resources/read\",\"params\":{\"uri\":\"file:///srv/\xe2\x82\"}}",
	"utf8_invalid_in_method":       "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\xff\",\"params\":{\"name\":\"read_file\"}}",
	"utf8_bom":                     "\xef\xbb\xbf" + call(`{"name":"read_file"}`),

	// Surrogate escapes: a pair is one character; a lone one becomes U+FFFD
	// in Go, stays a lone UTF-16 unit in JavaScript.
	"surrogate_pair":              call(`{"name":"read_file\ud83d\ude00","arguments":{"\ud83d\ude00":"\ud83d\ude00"}}`),
	"surrogate_lone_high_name":    call(`{"name":"read_file\ud800"}`),
	"surrogate_lone_low_name":     call(`{"name":"read_file\udc00"}`),
	"surrogate_high_then_letter":  call(`{"name":"read_file\ud800\u0041"}`),
	"surrogate_reversed_pair":     call(`{"name":"read_file\udc00\ud800"}`),
	"surrogate_lone_in_key":       args(`{"pa\ud800th":"/etc/shadow","path":"/srv/ok"}`),
	"surrogate_lone_in_argument":  args(`{"path":"/srv/\udfff"}`),
	"surrogate_lone_in_uri":       `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///srv/\ud800"}}`,
	"surrogate_lone_vs_fffd_keys": args(`{"a\ufffd":"one","a\ud800":"two"}`),

	// Numbers every reader holds differently: beyond int64, beyond float64
	// precision and range, negative zero, exponents.
	"num_big_integer":     args(`{"n":123456789012345678901234567890}`),
	"num_beyond_2_53":     args(`{"n":9007199254740993}`),
	"num_forms":           args(`{"a":1.0,"b":1E2,"c":-0,"d":0.1e-5,"e":-12.5e+3}`),
	"num_float_overflow":  args(`{"n":1e400}`),
	"num_float_underflow": args(`{"n":1e-400}`),
	"num_huge_exponent":   args(`{"n":1e99999999}`),
	"num_big_id":          `{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/call","params":{"name":"read_file"}}`,
	// Request methods sent as notifications: refused (a JSON-RPC server
	// runs a notification; issue 28 row 9).
	"notification_tools_call":     `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/shadow"}}}`,
	"notification_resources_read": `{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"file:///etc/shadow"}}`,
	"notification_prompts_get":    `{"jsonrpc":"2.0","method":"prompts/get","params":{"name":"p"}}`,
	"notification_tools_list":     `{"jsonrpc":"2.0","method":"tools/list"}`,
	"notification_in_batch":       `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_file"}}]`,

	// The number rule: refused unless the literal is the shortest form of
	// the double JavaScript reads (Rego compares 99.99999999999999999999
	// with 100 exactly; Node sums 100).
	"num_rounds_to_100":      call(`{"name":"get-sum","arguments":{"a":99.99999999999999999999,"b":1}}`),
	"num_id_not_double":      `{"jsonrpc":"2.0","id":7.00000000000000000001,"method":"tools/list"}`,
	"num_exact_binary_value": args(`{"n":0.1000000000000000055511151231257827021181583404541015625}`),
	"num_subnormal_rounded":  args(`{"n":4.9e-324}`),
	"num_in_result":          `{"jsonrpc":"2.0","id":1,"result":{"n":9007199254740993}}`,
	"num_shortest_forms":     args(`{"a":0.30000000000000004,"b":9007199254740992,"c":5e-324,"d":1.7976931348623157e308,"e":1e21,"f":100.0}`),

	// Nesting at and beyond mcp.MaxDepth (envelope 1, params 2, arguments
	// 3), and variants deep down.
	"deep_at_limit":     args(nestedArgs(mcp.MaxDepth - 2)),
	"deep_over_limit":   args(nestedArgs(mcp.MaxDepth - 1)),
	"deep_case_variant": args(`{"a":{"b":{"c":{"path":"/srv/ok","Path":"/etc/shadow"}}}}`),
	"deep_duplicate":    args(`{"a":{"b":{"c":{"path":"/srv/ok","path":"/etc/shadow"}}}}`),

	// Batches holding the above, and a second message after the first.
	"batch_case_variant":      `[` + call(`{"name":"read_file"}`) + `,` + call(`{"name":"read_file","Name":"delete_file"}`) + `]`,
	"batch_fold_params":       `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file"},"paramſ":{"name":"delete_file"}}]`,
	"batch_invalid_utf8":      "[" + call("{\"name\":\"read_file\xe2\x82\"}") + "]",
	"batch_lone_surrogate":    `[` + call(`{"name":"read_file\ud800"}`) + `]`,
	"batch_method_variant":    `[{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call","params":{"name":"delete_file"}}]`,
	"batch_mixed_valid_dup":   `[{"jsonrpc":"2.0","method":"notifications/initialized"},` + args(`{"path":"/srv/ok","path":"/etc/shadow"}`) + `]`,
	"trailing_second_message": call(`{"name":"read_file"}`) + call(`{"name":"delete_file"}`),
}

// members is n distinct members "k0":0 ... of an object, without braces.
func members(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	return b.String()
}

// hostileFile is the name of a hostile body's file in testdata/hostile:
// .bin when it is not UTF-8, so editors and diff tools leave it alone.
func hostileFile(name, body string) string {
	if utf8.ValidString(body) {
		return name + ".json"
	}
	return name + ".bin"
}

// corpusFile is a body in the format of Go's fuzzing corpus files.
func corpusFile(body []byte) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", body)
}

// readCorpusFile returns the body held in a one-[]byte Go fuzzing corpus
// file.
func readCorpusFile(data []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(data, []byte("go test fuzz v1\n"))
	if !ok {
		return nil, errors.New("not a go test fuzz v1 file")
	}
	lit, ok := bytes.CutPrefix(bytes.TrimSpace(rest), []byte("[]byte("))
	if !ok || !bytes.HasSuffix(lit, []byte(")")) {
		return nil, errors.New("not a single []byte value")
	}
	s, err := strconv.Unquote(string(lit[:len(lit)-1]))
	return []byte(s), err
}

// TestHostileCorpus keeps the files made from hostileBodies equal to it
// (rewrite them with -update-hostile) and reports how many of the bodies
// mcpauthz accepts.
func TestHostileCorpus(t *testing.T) {
	hostileDir := filepath.Join("testdata", "hostile")
	fuzzDir := filepath.Join("testdata", "fuzz", "FuzzDifferential")
	want := map[string]bool{}
	accepted := 0
	for _, name := range slices.Sorted(maps.Keys(hostileBodies)) {
		body := hostileBodies[name]
		file := hostileFile(name, body)
		want[file] = true
		if _, err := mcp.Parse([]byte(body)); err == nil {
			accepted++
		}
		if *updateHostile {
			for _, dir := range []string{hostileDir, fuzzDir} {
				if err := os.MkdirAll(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(hostileDir, file), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(fuzzDir, name), corpusFile([]byte(body)), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(filepath.Join(hostileDir, file))
		if err != nil || string(got) != body {
			t.Errorf("%s differs from hostileBodies[%q] (err %v); run go test -run TestHostileCorpus -update-hostile", file, name, err)
		}
		got, err = os.ReadFile(filepath.Join(fuzzDir, name))
		if err == nil {
			got, err = readCorpusFile(got)
		}
		if err != nil || string(got) != body {
			t.Errorf("fuzz seed %s differs from hostileBodies[%q] (err %v); run go test -run TestHostileCorpus -update-hostile", name, name, err)
		}
	}
	// A file whose entry left the table would go on being read by Node.
	entries, err := os.ReadDir(hostileDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !want[e.Name()] {
			if *updateHostile {
				if err := os.Remove(filepath.Join(hostileDir, e.Name())); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("testdata/hostile/%s is not in hostileBodies", e.Name())
		}
	}
	t.Logf("%d hostile bodies: mcpauthz accepts %d, refuses %d", len(hostileBodies), accepted, len(hostileBodies)-accepted)
}

// FuzzDifferential reads every body mcpauthz accepts with two other Go
// readers and requires them to see the same method and the same target
// (tool or prompt name and arguments, resource URI) in every message:
//
//   - the MCP Go SDK, along the path its server takes (sdkRead);
//   - encoding/json into structs tagged like the MCP types, as a Go server
//     written without the SDK would (naiveRead).
//
// A batch is read element by element by both (the SDK's server reads
// batches for protocol versions before 2025-06-18) and compared message by
// message. A reader that refuses a body we accept is no bypass (the server
// would refuse it too); it is logged, for requests only, and not a failure.
func FuzzDifferential(f *testing.F) {
	for _, name := range slices.Sorted(maps.Keys(hostileBodies)) {
		f.Add([]byte(hostileBodies[name]))
	}
	inputs, _ := filepath.Glob(filepath.Join("testdata", "bodies", "*.json"))
	for _, in := range inputs {
		raw, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := mcp.Parse(data)
		if err != nil {
			return
		}
		ours := make([]reading, len(body.Messages))
		for i, m := range body.Messages {
			ours[i] = ourReading(t, m)
		}
		for _, r := range []struct {
			who  string
			read func([]byte) ([]reading, error)
			same func(ours, theirs json.Number) bool
		}{
			{"go-sdk", sdkRead, exactNumbers},
			{"encoding/json", naiveRead, exactNumbers},
			// The same reading with numbers as float64, as most servers
			// hold them: the number rule makes each the value the policy saw.
			{"encoding/json into float64", naiveRead, sameDouble},
		} {
			theirs, err := r.read(data)
			if err != nil {
				if hasRequest(body) {
					t.Logf("%s refuses a body mcpauthz accepts: %v", r.who, err)
				}
				continue
			}
			if len(theirs) != len(ours) {
				t.Fatalf("%s reads %d messages, mcpauthz %d\nbody: %q", r.who, len(theirs), len(ours), data)
			}
			for i := range ours {
				if theirs[i].refused != nil {
					if body.Messages[i].Kind == mcp.KindRequest {
						t.Logf("%s refuses message %d: %v", r.who, i, theirs[i].refused)
					}
					continue
				}
				if d := diffReading(ours[i], theirs[i], r.same); d != "" {
					t.Fatalf("message %d: %s reads it differently: %s\nbody: %q", i, r.who, d, data)
				}
			}
		}
	})
}

// hasRequest reports whether body holds a request (a message with an id
// that asks for something).
func hasRequest(body mcp.Body) bool {
	for _, m := range body.Messages {
		if m.Kind == mcp.KindRequest {
			return true
		}
	}
	return false
}

// reading is what a reader takes one message to ask for: the fields an
// authorization decision rests on.
type reading struct {
	method    string
	name      string // params.name of tools/call and prompts/get
	uri       string // params.uri of resources/read, subscribe, unsubscribe
	arguments any    // params.arguments of tools/call and prompts/get, numbers as json.Number; nil when absent
	// fields are the top-level arguments as a Go tool reads them into a
	// struct, by argument name; nil when not checked.
	fields map[string]any
	// refused is why the reader refuses this message alone (its params do
	// not fit the reader's types); the other fields are then unset.
	refused error
}

// Methods whose target the readings hold.
func namesTarget(method string) bool { return method == "tools/call" || method == "prompts/get" }
func uriTarget(method string) bool {
	return method == "resources/read" || method == "resources/subscribe" || method == "resources/unsubscribe"
}

// ourReading is mcpauthz's reading of m.
func ourReading(t *testing.T, m mcp.Message) reading {
	r := reading{method: m.Method}
	var target *mcp.Named
	switch {
	case m.Tool != nil:
		target = m.Tool
	case m.Prompt != nil:
		target = m.Prompt
	case m.Resource != nil:
		r.uri = m.Resource.URI
	}
	if target != nil {
		r.name = target.Name
		if target.Arguments != nil {
			v, err := ast.JSON(target.Arguments)
			if err != nil {
				t.Fatalf("arguments %v: %v", target.Arguments, err)
			}
			r.arguments = v
		}
	}
	return r
}

// sdkRead reads body the way the MCP Go SDK's Streamable HTTP server does
// (go-sdk v1.8.0, mcp/streamable.go servePOST):
//
//   - mcp.readBatch: the body is first unmarshaled as []json.RawMessage and
//     each element decoded with jsonrpc2.DecodeMessage; if it is not an
//     array, the whole body is one jsonrpc2.DecodeMessage. Batches are read,
//     as the SDK does for protocol versions before 2025-06-18.
//   - jsonrpc.DecodeMessage (public; it is jsonrpc2.DecodeMessage) gives the
//     method and the raw params.
//   - methodInfo.unmarshalParams unmarshals the params into a pointer to the
//     method's params type: mcp.CallToolParamsRaw for tools/call
//     (CallToolRequest is ServerRequest[*CallToolParamsRaw]),
//     mcp.GetPromptParams, mcp.ReadResourceParams, mcp.SubscribeParams,
//     mcp.UnsubscribeParams (mirrored here as sdkCallToolParamsRaw, ...).
//   - a typed tool handler (mcp.AddTool) unmarshals the raw arguments into a
//     map[string]any (applySchema) before its input struct.
//
// Every unmarshal there is the SDK's internal/json.Unmarshal, which this
// package cannot import: github.com/segmentio/encoding/json with
// DontMatchCaseInsensitiveStructFields, after a nesting check at depth 1000
// (beyond mcp.MaxDepth, so never reached for a body mcpauthz accepts).
// sdkUnmarshal is that. One difference, on purpose: arguments are decoded
// with UseNumber, so numbers are compared by their exact text, not as the
// float64 the SDK makes of them.
func sdkRead(body []byte) ([]reading, error) {
	var msgs []sdkjsonrpc.Message
	var batch []json.RawMessage
	if err := sdkUnmarshal(body, &batch, false); err == nil {
		if len(batch) == 0 {
			return nil, errors.New("empty batch")
		}
		for _, raw := range batch {
			m, err := sdkjsonrpc.DecodeMessage(raw)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, m)
		}
	} else {
		m, err := sdkjsonrpc.DecodeMessage(body)
		if err != nil {
			return nil, err
		}
		msgs = append(msgs, m)
	}
	out := make([]reading, len(msgs))
	for i, m := range msgs {
		req, ok := m.(*sdkjsonrpc.Request)
		if !ok {
			continue // a response: no method, no target
		}
		out[i] = sdkTarget(req.Method, req.Params)
	}
	return out, nil
}

// sdkTarget unmarshals params into the SDK's params type for method.
func sdkTarget(method string, params json.RawMessage) reading {
	r := reading{method: method}
	if params == nil {
		return r // the SDK refuses these methods without params; nothing to compare
	}
	var err error
	switch method {
	case "tools/call":
		var p *sdkCallToolParamsRaw
		if err = sdkUnmarshal(params, &p, false); err == nil && p != nil {
			r.name = p.Name
			if p.Arguments != nil {
				var a map[string]any
				if err = sdkUnmarshal(p.Arguments, &a, true); err == nil {
					r.arguments = a
				}
			}
		}
	case "prompts/get":
		var p *sdkGetPromptParams
		if err = sdkUnmarshal(params, &p, false); err == nil && p != nil {
			r.name = p.Name
			if p.Arguments != nil {
				a := make(map[string]any, len(p.Arguments))
				for k, v := range p.Arguments {
					a[k] = v
				}
				r.arguments = a
			}
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		var p *sdkURIParams
		if err = sdkUnmarshal(params, &p, false); err == nil && p != nil {
			r.uri = p.URI
		}
	}
	if err != nil {
		return reading{method: method, refused: err}
	}
	return r
}

// The SDK's params types, member for member. Importing go-sdk/mcp itself
// would add its dependencies (jsonschema-go, uritemplate, x/time) to go.mod
// for a test; TestSDKParamsMirror checks these against the SDK's source
// instead. InputResponses has its own UnmarshalJSON in the SDK; it is kept
// raw here, as nothing compared depends on it.
type (
	// sdkCallToolParamsRaw is mcp.CallToolParamsRaw.
	sdkCallToolParamsRaw struct {
		Meta           map[string]any  `json:"_meta,omitempty"`
		Name           string          `json:"name"`
		Arguments      json.RawMessage `json:"arguments,omitempty"`
		InputResponses json.RawMessage `json:"inputResponses,omitempty"`
		RequestState   string          `json:"requestState,omitempty"`
	}
	// sdkGetPromptParams is mcp.GetPromptParams.
	sdkGetPromptParams struct {
		Meta           map[string]any    `json:"_meta,omitempty"`
		Arguments      map[string]string `json:"arguments,omitempty"`
		Name           string            `json:"name"`
		InputResponses json.RawMessage   `json:"inputResponses,omitempty"`
		RequestState   string            `json:"requestState,omitempty"`
	}
	// sdkURIParams is mcp.ReadResourceParams; mcp.SubscribeParams and
	// mcp.UnsubscribeParams are it without the last two members.
	sdkURIParams struct {
		Meta           map[string]any  `json:"_meta,omitempty"`
		URI            string          `json:"uri"`
		InputResponses json.RawMessage `json:"inputResponses,omitempty"`
		RequestState   string          `json:"requestState,omitempty"`
	}
)

// sdkUnmarshal is the SDK's internal/json.Unmarshal (see sdkRead), with
// UseNumber when numbers is set.
func sdkUnmarshal(data []byte, v any, numbers bool) error {
	d := segjson.NewDecoder(bytes.NewReader(data))
	d.DontMatchCaseInsensitiveStructFields()
	if numbers {
		d.UseNumber()
	}
	return d.Decode(v)
}

// naiveMessage and naiveParams are how a Go server written without the SDK
// declares a JSON-RPC message and the params of the methods authorization
// looks at.
type naiveMessage struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      any             `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type naiveParams struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
	URI       string         `json:"uri"`
}

// naiveRead reads body with encoding/json (json.Unmarshal, with UseNumber
// so numbers keep their text): the envelope into naiveMessage, the params
// of a method with a target into naiveParams. encoding/json matches a
// member name to a field tag case-insensitively, folding Unicode, and the
// last matching member wins. A batch is unmarshaled as []json.RawMessage and
// each element on its own.
//
// For tools/call and prompts/get it also reads each top-level argument into
// a struct field tagged with its name, the way a tool declares its input
// (naiveFields).
func naiveRead(body []byte) ([]reading, error) {
	elems := []json.RawMessage{body}
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) > 0 && b[0] == '[' {
		elems = nil
		if err := naiveUnmarshal(body, &elems); err != nil {
			return nil, err
		}
	}
	out := make([]reading, len(elems))
	for i, raw := range elems {
		var m naiveMessage
		if err := naiveUnmarshal(raw, &m); err != nil {
			out[i].refused = err
			continue
		}
		r := reading{method: m.Method}
		if m.Params != nil && (namesTarget(m.Method) || uriTarget(m.Method)) {
			var p naiveParams
			if err := naiveUnmarshal(m.Params, &p); err != nil {
				out[i] = reading{method: m.Method, refused: err}
				continue
			}
			if namesTarget(m.Method) {
				r.name = p.Name
				if p.Arguments != nil {
					r.arguments = p.Arguments
					r.fields = naiveFields(m.Params, p.Arguments)
				}
			} else {
				r.uri = p.URI
			}
		}
		out[i] = r
	}
	return out, nil
}

// naiveUnmarshal is json.Unmarshal with UseNumber.
func naiveUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// naiveFields reads each top-level member name of arguments into a struct
// whose one field is tagged with that name, as a tool reading its input
// into a struct does, and returns what each field got. A member whose name
// differs only in case (or folds to the same, like K and k) from another
// lands in the same field, the last one winning, while a map keeps both.
// Names encoding/json cannot use as a tag are left out.
//
// Only the names sent are tried: a lone variant such as "Path", which a
// tool with a field tagged "path" reads, differs from no other member and
// goes unseen, as this test cannot know a tool's argument names. Nested
// objects are not read into structs; duplicates in them are compared as
// maps.
func naiveFields(params json.RawMessage, arguments map[string]any) map[string]any {
	var wrapper struct {
		Arguments json.RawMessage `json:"arguments"`
	}
	if naiveUnmarshal(params, &wrapper) != nil {
		return nil
	}
	fields := map[string]any{}
	for name := range arguments {
		if !validTag(name) {
			continue
		}
		typ := reflect.StructOf([]reflect.StructField{{
			Name: "F",
			Type: reflect.TypeFor[any](),
			Tag:  reflect.StructTag(`json:` + strconv.Quote(name)),
		}})
		v := reflect.New(typ)
		if naiveUnmarshal(wrapper.Arguments, v.Interface()) != nil {
			return nil
		}
		fields[name] = v.Elem().Field(0).Interface()
	}
	return fields
}

// validTag reports whether encoding/json takes name as a field's JSON name
// (its isValidTag).
func validTag(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

// exactNumbers compares numbers by their text, as written in the body.
func exactNumbers(ours, theirs json.Number) bool { return ours == theirs }

// sameDouble compares the exact value of our literal, as the policy reads
// it, with the value of the float64 encoding/json reads from theirs: the
// number rule makes them equal for every body mcpauthz accepts.
func sameDouble(ours, theirs json.Number) bool {
	f, err := strconv.ParseFloat(string(theirs), 64)
	if err != nil {
		return false // ±Inf
	}
	return sameValue(ours, json.Number(strconv.FormatFloat(f, 'g', -1, 64)))
}

// sameValue reports whether two number literals have the same exact
// decimal value. A nonzero literal beyond the range of doubles equals
// nothing (and is not handed to math/big, which would compute 10^99999999).
func sameValue(a, b json.Number) bool {
	x, okA := exactValue(a)
	y, okB := exactValue(b)
	return okA && okB && x.Cmp(y) == 0
}

func exactValue(n json.Number) (*big.Rat, bool) {
	mant, _, _ := strings.Cut(strings.ToLower(string(n)), "e")
	if !strings.ContainsAny(mant, "123456789") {
		return new(big.Rat), true
	}
	if f, err := strconv.ParseFloat(string(n), 64); err != nil || f == 0 {
		return nil, false
	}
	return new(big.Rat).SetString(string(n))
}

// diffReading describes how theirs differs from ours, or returns "".
func diffReading(ours, theirs reading, sameNumber func(ours, theirs json.Number) bool) string {
	switch {
	case ours.method != theirs.method:
		return fmt.Sprintf("method %q, mcpauthz %q", theirs.method, ours.method)
	case ours.name != theirs.name:
		return fmt.Sprintf("params.name %q, mcpauthz %q", theirs.name, ours.name)
	case ours.uri != theirs.uri:
		return fmt.Sprintf("params.uri %q, mcpauthz %q", theirs.uri, ours.uri)
	}
	if d := diffJSON("params.arguments", ours.arguments, theirs.arguments, sameNumber); d != "" {
		return d
	}
	ourArgs, _ := ours.arguments.(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(theirs.fields)) {
		if d := diffJSON("a struct field tagged "+strconv.Quote(name)+" of arguments", ourArgs[name], theirs.fields[name], sameNumber); d != "" {
			return d
		}
	}
	return ""
}

// diffJSON describes the first difference between two decoded JSON values,
// or returns "".
func diffJSON(path string, ours, theirs any, sameNumber func(ours, theirs json.Number) bool) string {
	differ := func() string { return fmt.Sprintf("%s is %s, mcpauthz %s", path, show(theirs), show(ours)) }
	switch o := ours.(type) {
	case map[string]any:
		th, ok := theirs.(map[string]any)
		if !ok {
			return differ()
		}
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range o {
				if !yield(k) {
					return
				}
			}
			for k := range th {
				if _, dup := o[k]; !dup && !yield(k) {
					return
				}
			}
		}) {
			ov, inOurs := o[k]
			tv, inTheirs := th[k]
			p := path + "[" + strconv.Quote(k) + "]"
			if inOurs != inTheirs {
				return fmt.Sprintf("%s: present for the reader %v, for mcpauthz %v", p, inTheirs, inOurs)
			}
			if d := diffJSON(p, ov, tv, sameNumber); d != "" {
				return d
			}
		}
		return ""
	case []any:
		th, ok := theirs.([]any)
		if !ok || len(th) != len(o) {
			return differ()
		}
		for i := range o {
			if d := diffJSON(fmt.Sprintf("%s[%d]", path, i), o[i], th[i], sameNumber); d != "" {
				return d
			}
		}
		return ""
	case json.Number:
		if th, ok := theirs.(json.Number); !ok || !sameNumber(o, th) {
			return differ()
		}
		return ""
	default: // nil, bool, string
		if !reflect.DeepEqual(ours, theirs) {
			return differ()
		}
		return ""
	}
}

// show formats a decoded JSON value for a failure message; strings are
// quoted the Go way, which shows bytes that are not UTF-8.
func show(v any) string {
	switch v := v.(type) {
	case nil:
		return "absent or null"
	case string:
		return strconv.Quote(v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

// TestSDKParamsMirror checks the mirrored params types against the SDK's
// source in the module cache: the same JSON member names and options, the
// same Go types for the members compared, and no UnmarshalJSON of the
// SDK's own on the type (which would make the mirror decode differently).
func TestSDKParamsMirror(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/modelcontextprotocol/go-sdk").Output()
	if err != nil {
		t.Fatalf("locating go-sdk: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "mcp")
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files in %s (%v)", dir, err)
	}
	structs := map[string]*goast.StructType{}
	unmarshalers := map[string]bool{}
	fset := token.NewFileSet()
	for _, file := range files {
		if strings.HasSuffix(file, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *goast.GenDecl:
				for _, spec := range d.Specs {
					if ts, ok := spec.(*goast.TypeSpec); ok {
						if st, ok := ts.Type.(*goast.StructType); ok {
							structs[ts.Name.Name] = st
						}
					}
				}
			case *goast.FuncDecl:
				if d.Recv != nil && d.Name.Name == "UnmarshalJSON" {
					unmarshalers[strings.TrimPrefix(types.ExprString(d.Recv.List[0].Type), "*")] = true
				}
			}
		}
	}
	// sdkTypes maps each SDK type a mirror stands for to the mirror's
	// members it lacks (they only ever make the mirror refuse more).
	tests := map[string]struct {
		mirror   reflect.Type
		sdkTypes map[string][]string
	}{
		"call_tool_params_raw": {reflect.TypeFor[sdkCallToolParamsRaw](), map[string][]string{"CallToolParamsRaw": nil}},
		"get_prompt_params":    {reflect.TypeFor[sdkGetPromptParams](), map[string][]string{"GetPromptParams": nil}},
		"uri_params": {reflect.TypeFor[sdkURIParams](), map[string][]string{
			"ReadResourceParams": nil,
			"SubscribeParams":    {"inputResponses,omitempty", "requestState,omitempty"},
			"UnsubscribeParams":  {"inputResponses,omitempty", "requestState,omitempty"},
		}},
	}
	// Go types of the members the readings hold, as the SDK spells them.
	compared := map[string]map[string]string{
		"call_tool_params_raw": {"name": "string", "arguments": "json.RawMessage"},
		"get_prompt_params":    {"name": "string", "arguments": "map[string]string"},
		"uri_params":           {"uri": "string"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			mirror := map[string]string{} // JSON tag -> Go type
			for f := range tc.mirror.Fields() {
				mirror[f.Tag.Get("json")] = f.Type.String()
			}
			for typ, lacks := range tc.sdkTypes {
				st := structs[typ]
				if st == nil {
					t.Fatalf("mcp.%s not found in %s", typ, dir)
				}
				if unmarshalers[typ] {
					t.Errorf("mcp.%s has its own UnmarshalJSON: sdkTarget must call it", typ)
				}
				sdk := map[string]string{}
				for _, f := range st.Fields.List {
					tag := ""
					if f.Tag != nil {
						s, _ := strconv.Unquote(f.Tag.Value)
						tag = reflect.StructTag(s).Get("json")
					}
					sdk[tag] = types.ExprString(f.Type)
				}
				for tag, goType := range sdk {
					if _, ok := mirror[tag]; !ok {
						t.Errorf("mcp.%s has member %q (%s), the mirror has not", typ, tag, goType)
					}
				}
				for tag := range mirror {
					if _, ok := sdk[tag]; !ok && !slices.Contains(lacks, tag) {
						t.Errorf("the mirror has member %q, mcp.%s has not", tag, typ)
					}
				}
				for member, goType := range compared[name] {
					for tag, got := range sdk {
						if strings.Split(tag, ",")[0] == member && got != goType {
							t.Errorf("mcp.%s member %q is %s, the mirror assumes %s", typ, member, got, goType)
						}
					}
				}
			}
		})
	}
}
