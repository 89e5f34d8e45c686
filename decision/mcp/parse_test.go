package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/bodies")

// wantMsg is what a test expects of one parsed message. Params, Args are JSON
// text ("" means absent); ID is the raw id ("" means absent).
type wantMsg struct {
	kind     Kind
	method   string
	id       string
	idValue  ast.Value
	params   string
	tool     string // Tool.Name; "" means no Tool
	prompt   string // Prompt.Name; "" means no Prompt
	args     string // arguments of the Tool or Prompt
	resource string // Resource.URI; "" means no Resource
}

func TestParseValid(t *testing.T) {
	const toolsCall = `{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/reports/q3.csv"}}}`
	tests := map[string]struct {
		body  string
		batch bool
		want  []wantMsg
	}{
		"tools_call": {
			body: toolsCall,
			want: []wantMsg{{
				kind: KindRequest, method: "tools/call", id: "42", idValue: ast.Number("42"),
				params: `{"name":"read_file","arguments":{"path":"/data/reports/q3.csv"}}`,
				tool:   "read_file", args: `{"path":"/data/reports/q3.csv"}`,
			}},
		},
		"tools_call_without_arguments": {
			body: `{"jsonrpc":"2.0","id":"x","method":"tools/call","params":{"name":"list"}}`,
			want: []wantMsg{{kind: KindRequest, method: "tools/call", id: `"x"`, idValue: ast.String("x"),
				params: `{"name":"list"}`, tool: "list"}},
		},
		"prompts_get": {
			body: `{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"review","arguments":{"lang":"go"}}}`,
			want: []wantMsg{{kind: KindRequest, method: "prompts/get", id: "1", idValue: ast.Number("1"),
				params: `{"name":"review","arguments":{"lang":"go"}}`, prompt: "review", args: `{"lang":"go"}`}},
		},
		"resources_read": {
			body: `{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///etc/hosts"}}`,
			want: []wantMsg{{kind: KindRequest, method: "resources/read", id: "2", idValue: ast.Number("2"),
				params: `{"uri":"file:///etc/hosts"}`, resource: "file:///etc/hosts"}},
		},
		"resources_subscribe": {
			body: `{"jsonrpc":"2.0","id":3,"method":"resources/subscribe","params":{"uri":"db://x"}}`,
			want: []wantMsg{{kind: KindRequest, method: "resources/subscribe", id: "3", idValue: ast.Number("3"),
				params: `{"uri":"db://x"}`, resource: "db://x"}},
		},
		"resources_unsubscribe": {
			body: `{"jsonrpc":"2.0","id":4,"method":"resources/unsubscribe","params":{"uri":"db://x"}}`,
			want: []wantMsg{{kind: KindRequest, method: "resources/unsubscribe", id: "4", idValue: ast.Number("4"),
				params: `{"uri":"db://x"}`, resource: "db://x"}},
		},
		"request_without_params": {
			body: `{"jsonrpc":"2.0","id":0,"method":"tools/list"}`,
			want: []wantMsg{{kind: KindRequest, method: "tools/list", id: "0", idValue: ast.Number("0")}},
		},
		"notification": {
			body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
			want: []wantMsg{{kind: KindNotification, method: "notifications/initialized"}},
		},
		"notification_with_params": {
			body: `{"method":"notifications/cancelled","params":{"requestId":7,"reason":"user"},"jsonrpc":"2.0"}`,
			want: []wantMsg{{kind: KindNotification, method: "notifications/cancelled",
				params: `{"requestId":7,"reason":"user"}`}},
		},
		"response_with_result": {
			body: `{"jsonrpc":"2.0","id":"s1","result":{"action":"accept","content":{"x":[1,{"y":null}]}}}`,
			want: []wantMsg{{kind: KindResponse, id: `"s1"`, idValue: ast.String("s1")}},
		},
		"exact_number_in_skipped_result": {
			body: `{"jsonrpc":"2.0","id":"r","result":{"n":1e300,"m":9007199254740992}}`,
			want: []wantMsg{{kind: KindResponse, id: `"r"`, idValue: ast.String("r")}},
		},
		"response_with_error": {
			body: `{"jsonrpc":"2.0","id":9,"error":{"code":-1,"message":"no"}}`,
			want: []wantMsg{{kind: KindResponse, id: "9", idValue: ast.Number("9")}},
		},
		"id_kept_exactly": {
			body: `{"jsonrpc":"2.0","id":1.50e+3,"method":"ping"}`,
			want: []wantMsg{{kind: KindRequest, method: "ping", id: "1.50e+3", idValue: ast.Number("1.50e+3")}},
		},
		"id_string_escaped": {
			body: `{"jsonrpc":"2.0","id":"a\"b\u00e9","method":"ping"}`,
			want: []wantMsg{{kind: KindRequest, method: "ping", id: `"a\"b\u00e9"`, idValue: ast.String("a\"bé")}},
		},
		"negative_id": {
			body: `{"jsonrpc":"2.0","id":-1,"method":"ping"}`,
			want: []wantMsg{{kind: KindRequest, method: "ping", id: "-1", idValue: ast.Number("-1")}},
		},
		"escaped_member_names": {
			body: `{"json\u0072pc":"2\u002e0","\u0069d":5,"method":"tools\/call","params":{"name":"t"}}`,
			want: []wantMsg{{kind: KindRequest, method: "tools/call", id: "5", idValue: ast.Number("5"),
				params: `{"name":"t"}`, tool: "t"}},
		},
		"whitespace_around": {
			body: " \t\r\n{ \"jsonrpc\" : \"2.0\" , \"method\" : \"ping\" , \"id\" : 1 }\n\n",
			want: []wantMsg{{kind: KindRequest, method: "ping", id: "1", idValue: ast.Number("1")}},
		},
		"unknown_members_ignored": {
			body: `{"jsonrpc":"2.0","id":1,"method":"ping","extra":{"deep":[[[{}]]]},"more":[]}`,
			want: []wantMsg{{kind: KindRequest, method: "ping", id: "1", idValue: ast.Number("1")}},
		},
		"many_keys": {
			body: `{"jsonrpc":"2.0","method":"m","params":{` + manyKeys(40) + `}}`,
			want: []wantMsg{{kind: KindNotification, method: "m", params: `{` + manyKeys(40) + `}`}},
		},
		"all_json_types_in_params": {
			body: `{"jsonrpc":"2.0","method":"m","params":{"s":"x","n":-0.5E-7,"t":true,"f":false,"z":null,` +
				`"a":[1,"two",[3],{}],"o":{"p":{"q":[]}},"big":9007199254740992}}`,
			want: []wantMsg{{kind: KindNotification, method: "m",
				params: `{"s":"x","n":-0.5E-7,"t":true,"f":false,"z":null,"a":[1,"two",[3],{}],` +
					`"o":{"p":{"q":[]}},"big":9007199254740992}`}},
		},
		"batch": {
			body: `[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{}}},` +
				`{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"result":{}}]`,
			batch: true,
			want: []wantMsg{
				{kind: KindRequest, method: "tools/call", id: "1", idValue: ast.Number("1"),
					params: `{"name":"t","arguments":{}}`, tool: "t", args: `{}`},
				{kind: KindNotification, method: "notifications/initialized"},
				{kind: KindResponse, id: "2", idValue: ast.Number("2")},
			},
		},
		"batch_of_one": {
			body:  `[{"jsonrpc":"2.0","id":1,"method":"ping"}]`,
			batch: true,
			want:  []wantMsg{{kind: KindRequest, method: "ping", id: "1", idValue: ast.Number("1")}},
		},
		"batch_at_limit": {
			body:  batchOf(MaxBatch),
			batch: true,
			want:  repeatMsg(MaxBatch, wantMsg{kind: KindNotification, method: "notifications/progress"}),
		},
		"nesting_at_limit": {
			body: `{"jsonrpc":"2.0","method":"m","params":{"a":` + nested(MaxDepth-2) + `}}`,
			want: []wantMsg{{kind: KindNotification, method: "m", params: `{"a":` + nested(MaxDepth-2) + `}`}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body, err := Parse([]byte(tc.body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if body.Batch != tc.batch {
				t.Errorf("Batch = %v, want %v", body.Batch, tc.batch)
			}
			if len(body.Messages) != len(tc.want) {
				t.Fatalf("got %d messages, want %d", len(body.Messages), len(tc.want))
			}
			for i, w := range tc.want {
				checkMessage(t, fmt.Sprintf("message %d", i), body.Messages[i], w)
			}
		})
	}
}

func checkMessage(t *testing.T, where string, m Message, w wantMsg) {
	t.Helper()
	if m.Kind != w.kind {
		t.Errorf("%s: Kind = %v, want %v", where, m.Kind, w.kind)
	}
	if m.Method != w.method {
		t.Errorf("%s: Method = %q, want %q", where, m.Method, w.method)
	}
	if string(m.ID) != w.id {
		t.Errorf("%s: ID = %q, want %q", where, m.ID, w.id)
	}
	if !valueEqual(m.IDValue, w.idValue) {
		t.Errorf("%s: IDValue = %v (%T), want %v (%T)", where, m.IDValue, m.IDValue, w.idValue, w.idValue)
	}
	if want := jsonValue(t, w.params); !valueEqual(m.Params, want) {
		t.Errorf("%s: Params = %v, want %v", where, m.Params, want)
	}
	checkNamed(t, where+": Tool", m.Tool, w.tool, w.args, m.Params)
	checkNamed(t, where+": Prompt", m.Prompt, w.prompt, w.args, m.Params)
	switch {
	case w.resource == "" && m.Resource != nil:
		t.Errorf("%s: Resource = %+v, want none", where, m.Resource)
	case w.resource != "" && (m.Resource == nil || m.Resource.URI != w.resource):
		t.Errorf("%s: Resource = %+v, want URI %q", where, m.Resource, w.resource)
	}
}

// checkNamed checks a Tool or Prompt, and that its arguments are the very
// object inside params, not a second build of it.
func checkNamed(t *testing.T, where string, got *Named, name, args string, params ast.Value) {
	t.Helper()
	if name == "" {
		if got != nil {
			t.Errorf("%s = %+v, want none", where, got)
		}
		return
	}
	if got == nil {
		t.Fatalf("%s missing, want name %q", where, name)
	}
	if got.Name != name {
		t.Errorf("%s.Name = %q, want %q", where, got.Name, name)
	}
	if want := jsonValue(t, args); !valueEqual(got.Arguments, want) {
		t.Errorf("%s.Arguments = %v, want %v", where, got.Arguments, want)
	}
	if got.Arguments != nil {
		inParams := params.(ast.Object).Get(ast.StringTerm("arguments")).Value
		if inParams.(ast.Object) != got.Arguments.(ast.Object) {
			t.Errorf("%s.Arguments is not the object inside Params", where)
		}
	}
}

// valueEqual compares values, and numbers by their literal text (ast.Number
// equality is numeric, which would hide a changed literal).
func valueEqual(got, want ast.Value) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	if got.Compare(want) != 0 {
		return false
	}
	g, err1 := ast.JSON(got)
	w, err2 := ast.JSON(want)
	return err1 == nil && err2 == nil && reflect.DeepEqual(g, w)
}

// jsonValue decodes JSON text with encoding/json into an OPA value.
func jsonValue(t *testing.T, s string) ast.Value {
	t.Helper()
	if s == "" {
		return nil
	}
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		t.Fatalf("bad test JSON %s: %v", s, err)
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		t.Fatalf("InterfaceToValue(%s): %v", s, err)
	}
	return v
}

func manyKeys(n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"k%d":%d`, i, i)
	}
	return b.String()
}

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func batchOf(n int) string {
	msgs := make([]string, n)
	for i := range msgs {
		msgs[i] = `{"jsonrpc":"2.0","method":"notifications/progress"}`
	}
	return "[" + strings.Join(msgs, ",") + "]"
}

func repeatMsg(n int, m wantMsg) []wantMsg {
	out := make([]wantMsg, n)
	for i := range out {
		out[i] = m
	}
	return out
}

func TestParseInvalid(t *testing.T) {
	const ok = `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	tests := map[string]struct {
		body string
		code int
		msg  string // substring of the error message
	}{
		// Not JSON.
		"empty_body":             {``, CodeParseError, "unexpected end of JSON input"},
		"only_whitespace":        {" \n", CodeParseError, "unexpected end of JSON input"},
		"truncated_object":       {`{"jsonrpc":"2.0"`, CodeParseError, "unexpected end"},
		"trailing_garbage":       {ok + `x`, CodeParseError, "after top-level value"},
		"two_values":             {ok + ok, CodeParseError, "after top-level value"},
		"trailing_comma":         {`{"jsonrpc":"2.0","id":1,"method":"ping",}`, CodeParseError, "beginning of object key"},
		"single_quotes":          {`{'jsonrpc':'2.0'}`, CodeParseError, "parse error"},
		"unquoted_key":           {`{jsonrpc:"2.0"}`, CodeParseError, "parse error"},
		"bad_literal":            {`{"jsonrpc":"2.0","id":1,"method":"m","params":{"a":tru}}`, CodeParseError, "literal true"},
		"leading_zero":           {`{"jsonrpc":"2.0","id":01,"method":"m"}`, CodeParseError, "parse error"},
		"bare_minus":             {`{"jsonrpc":"2.0","id":-,"method":"m"}`, CodeParseError, "numeric literal"},
		"fraction_without_digit": {`{"jsonrpc":"2.0","id":1.,"method":"m"}`, CodeParseError, "numeric literal"},
		"exponent_without_digit": {`{"jsonrpc":"2.0","id":1e+,"method":"m"}`, CodeParseError, "exponent"},
		"plus_sign":              {`{"jsonrpc":"2.0","id":+1,"method":"m"}`, CodeParseError, "beginning of value"},
		"bad_escape":             {`{"jsonrpc":"2.0","id":"\x","method":"m"}`, CodeParseError, "escape"},
		"short_unicode_escape":   {`{"jsonrpc":"2.0","id":"\u12","method":"m"}`, CodeParseError, "hexadecimal"},
		"control_char_in_string": {"{\"jsonrpc\":\"2.0\",\"id\":\"a\nb\",\"method\":\"m\"}", CodeParseError, "in string literal"},
		"unterminated_string":    {`{"jsonrpc":"2.0","id":"abc`, CodeParseError, "unexpected end"},
		"missing_colon":          {`{"jsonrpc" "2.0"}`, CodeParseError, "after object key"},
		"byte_order_mark":        {"\xef\xbb\xbf" + ok, CodeParseError, "beginning of value"},
		"syntax_error_in_skipped_result": {`{"jsonrpc":"2.0","id":1,"result":{"a":[1,2,}}`, CodeParseError,
			"beginning of value"},
		"syntax_error_after_invalid_message": {`[{"jsonrpc":"1.0","id":1,"method":"m"},{]`, CodeParseError,
			"beginning of object key"},
		"nesting_too_deep": {`{"jsonrpc":"2.0","method":"m","params":{"a":` + nested(MaxDepth-1) + `}}`,
			CodeParseError, "JSON nested too deeply"},
		"nesting_too_deep_in_skipped_member": {`{"jsonrpc":"2.0","id":1,"result":` + nested(MaxDepth) + `}`,
			CodeParseError, "JSON nested too deeply"},
		"nesting_too_deep_at_top": {nested(100000), CodeParseError, "JSON nested too deeply"},
		"number_out_of_range":     {`{"jsonrpc":"2.0","method":"m","params":{"a":[1E070000]}}`, CodeParseError, "number out of range"},
		"id_out_of_range":         {`{"jsonrpc":"2.0","id":-1e-99999999,"method":"m"}`, CodeInvalidRequest, "read it as 0"},

		// The number rule: a literal that is not the shortest form of the
		// double JavaScript reads from it (docs/security.md).
		"number_rounds_up_to_100": {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get-sum","arguments":{"a":99.99999999999999999999,"b":1}}}`,
			CodeInvalidRequest, "the number 99.99999999999999999999 is not exactly a double: JavaScript and encoding/json read it as 100"},
		"id_not_a_double":            {`{"jsonrpc":"2.0","id":7.00000000000000000001,"method":"tools/list"}`, CodeInvalidRequest, "read it as 7"},
		"integer_beyond_2_53":        {`{"jsonrpc":"2.0","method":"m","params":{"n":9007199254740993}}`, CodeInvalidRequest, "read it as 9007199254740992"},
		"integer_beyond_int64":       {`{"jsonrpc":"2.0","method":"m","params":{"n":123456789012345678901234567890}}`, CodeInvalidRequest, "read it as 1.2345678901234568e+29"},
		"number_overflows":           {`{"jsonrpc":"2.0","method":"m","params":{"n":1e400}}`, CodeInvalidRequest, "read it as Infinity"},
		"negative_number_overflows":  {`{"jsonrpc":"2.0","method":"m","params":{"n":-1.8e308}}`, CodeInvalidRequest, "read it as -Infinity"},
		"number_underflows":          {`{"jsonrpc":"2.0","method":"m","params":{"n":1e-400}}`, CodeInvalidRequest, "read it as 0"},
		"subnormal_not_shortest":     {`{"jsonrpc":"2.0","method":"m","params":{"n":4.9e-324}}`, CodeInvalidRequest, "read it as 5e-324"},
		"exact_binary_not_shortest":  {`{"jsonrpc":"2.0","method":"m","params":{"n":0.1000000000000000055511151231257827021181583404541015625}}`, CodeInvalidRequest, "read it as 0.1"},
		"seventeen_digits_not_short": {`{"jsonrpc":"2.0","method":"m","params":{"n":0.10000000000000001}}`, CodeInvalidRequest, "read it as 0.1"},
		"number_in_skipped_result":   {`{"jsonrpc":"2.0","id":"r","result":{"n":1e99999999}}`, CodeInvalidRequest, "read it as Infinity"},
		"number_in_unknown_member":   {`{"jsonrpc":"2.0","id":1,"method":"ping","x":[[{"y":2.00000000000000000001}]]}`, CodeInvalidRequest, "read it as 2"},
		"number_in_batch_element":    {`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}]`, CodeInvalidRequest, "batch element 1: the number 9007199254740993"},
		"number_in_meta":             {`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"_meta":{"progressToken":1.00000000000000000001}}}`, CodeInvalidRequest, "read it as 1"},

		// JSON, but not a valid message.
		"not_an_object":             {`"hello"`, CodeInvalidRequest, "message is not an object"},
		"null_body":                 {`null`, CodeInvalidRequest, "message is not an object"},
		"empty_batch":               {`[]`, CodeInvalidRequest, "empty batch"},
		"batch_too_large":           {batchOf(MaxBatch + 1), CodeInvalidRequest, "more than 1000"},
		"batch_element_not_object":  {`[` + ok + `,3]`, CodeInvalidRequest, "batch element 1: message is not an object"},
		"batch_element_invalid":     {`[` + ok + `,` + ok + `,{"jsonrpc":"2.0"}]`, CodeInvalidRequest, "batch element 2: message has neither"},
		"nested_batch":              {`[[` + ok + `]]`, CodeInvalidRequest, "batch element 0: message is not an object"},
		"jsonrpc_missing":           {`{"id":1,"method":"ping"}`, CodeInvalidRequest, "jsonrpc member missing"},
		"jsonrpc_wrong_version":     {`{"jsonrpc":"1.0","id":1,"method":"ping"}`, CodeInvalidRequest, `jsonrpc must be "2.0"`},
		"jsonrpc_number":            {`{"jsonrpc":2.0,"id":1,"method":"ping"}`, CodeInvalidRequest, `jsonrpc must be "2.0"`},
		"jsonrpc_padded":            {`{"jsonrpc":" 2.0","id":1,"method":"ping"}`, CodeInvalidRequest, `jsonrpc must be "2.0"`},
		"id_null":                   {`{"jsonrpc":"2.0","id":null,"method":"ping"}`, CodeInvalidRequest, "id must be a string or a number"},
		"id_bool":                   {`{"jsonrpc":"2.0","id":true,"method":"ping"}`, CodeInvalidRequest, "id must be a string or a number"},
		"id_object":                 {`{"jsonrpc":"2.0","id":{},"method":"ping"}`, CodeInvalidRequest, "id must be a string or a number"},
		"id_array":                  {`{"jsonrpc":"2.0","id":[1],"method":"ping"}`, CodeInvalidRequest, "id must be a string or a number"},
		"id_null_after_valid_id":    {`{"jsonrpc":"2.0","id":1,"id":null,"method":"ping"}`, CodeInvalidRequest, `two members named "id"`},
		"method_not_string":         {`{"jsonrpc":"2.0","id":1,"method":7}`, CodeInvalidRequest, "method must be a string"},
		"method_empty":              {`{"jsonrpc":"2.0","id":1,"method":""}`, CodeInvalidRequest, "method must not be empty"},
		"params_array":              {`{"jsonrpc":"2.0","id":1,"method":"m","params":[1]}`, CodeInvalidRequest, "params must be an object"},
		"params_null":               {`{"jsonrpc":"2.0","id":1,"method":"m","params":null}`, CodeInvalidRequest, "params must be an object"},
		"neither_method_nor_result": {`{"jsonrpc":"2.0","id":1}`, CodeInvalidRequest, "neither method nor result or error"},
		"method_and_result":         {`{"jsonrpc":"2.0","id":1,"method":"m","result":{}}`, CodeInvalidRequest, "both method and result"},
		"method_and_error":          {`{"jsonrpc":"2.0","id":1,"method":"m","error":{}}`, CodeInvalidRequest, "both method and result"},
		"result_and_error":          {`{"jsonrpc":"2.0","id":1,"result":{},"error":{}}`, CodeInvalidRequest, "both result and error"},
		"response_without_id":       {`{"jsonrpc":"2.0","result":{}}`, CodeInvalidRequest, "response has no id"},
		"empty_object":              {`{}`, CodeInvalidRequest, "jsonrpc member missing"},
		"first_failure_reported":    {`[{"jsonrpc":"2.0","id":1,"method":"tools/call"},{}]`, CodeInvalidParams, "batch element 0"},

		// Valid requests whose params a method needs are wrong.
		"tools_call_no_params":       {`{"jsonrpc":"2.0","id":1,"method":"tools/call"}`, CodeInvalidParams, "tools/call: params.name must be a non-empty string"},
		"tools_call_no_name":         {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}`, CodeInvalidParams, "params.name"},
		"tools_call_empty_name":      {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":""}}`, CodeInvalidParams, "params.name"},
		"tools_call_name_not_string": {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":1}}`, CodeInvalidParams, "params.name"},
		"tools_call_arguments_array": {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":[]}}`, CodeInvalidParams, "tools/call: params.arguments must be an object"},
		"tools_call_arguments_null":  {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":null}}`, CodeInvalidParams, "params.arguments must be an object"},
		"tools_call_notification":    {`{"jsonrpc":"2.0","method":"tools/call","params":{"arguments":{}}}`, CodeInvalidRequest, "tools/call is a request: it needs an id"},

		// Methods MCP defines as requests, sent without an id.
		"notification_tools_call":      {`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/shadow"}}}`, CodeInvalidRequest, "tools/call is a request"},
		"notification_resources_read":  {`{"jsonrpc":"2.0","method":"resources/read","params":{"uri":"file:///etc/shadow"}}`, CodeInvalidRequest, "resources/read is a request"},
		"notification_prompts_get":     {`{"jsonrpc":"2.0","method":"prompts/get","params":{"name":"p"}}`, CodeInvalidRequest, "prompts/get is a request"},
		"notification_tools_list":      {`{"jsonrpc":"2.0","method":"tools/list"}`, CodeInvalidRequest, "tools/list is a request"},
		"notification_initialize":      {`{"jsonrpc":"2.0","method":"initialize","params":{}}`, CodeInvalidRequest, "initialize is a request"},
		"notification_escaped_method":  {`{"jsonrpc":"2.0","method":"tools\/call","params":{"name":"t"}}`, CodeInvalidRequest, "tools/call is a request"},
		"notification_sampling":        {`{"jsonrpc":"2.0","method":"sampling/createMessage","params":{}}`, CodeInvalidRequest, "sampling/createMessage is a request"},
		"notification_in_batch":        {`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"ping"}]`, CodeInvalidRequest, "batch element 1: ping is a request"},
		"prompts_get_no_name":          {`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"arguments":{}}}`, CodeInvalidParams, "prompts/get: params.name"},
		"prompts_get_arguments_string": {`{"jsonrpc":"2.0","id":1,"method":"prompts/get","params":{"name":"p","arguments":"x"}}`, CodeInvalidParams, "prompts/get: params.arguments"},
		"resources_read_no_uri":        {`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{}}`, CodeInvalidParams, "resources/read: params.uri must be a non-empty string"},
		"resources_read_empty_uri":     {`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":""}}`, CodeInvalidParams, "params.uri"},
		"resources_subscribe_uri_num":  {`{"jsonrpc":"2.0","id":1,"method":"resources/subscribe","params":{"uri":5}}`, CodeInvalidParams, "resources/subscribe: params.uri"},
		"resources_unsubscribe_no_par": {`{"jsonrpc":"2.0","id":1,"method":"resources/unsubscribe"}`, CodeInvalidParams, "resources/unsubscribe: params.uri"},
		"batch_invalid_params":         {`[` + ok + `,{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{}}]`, CodeInvalidParams, "invalid params: batch element 1: resources/read"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body, err := Parse([]byte(tc.body))
			if err == nil {
				t.Fatalf("Parse succeeded with %d messages, want error %d", len(body.Messages), tc.code)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if perr.Code != tc.code {
				t.Errorf("code = %d, want %d (message %q)", perr.Code, tc.code, perr.Message)
			}
			if !strings.Contains(perr.Message, tc.msg) {
				t.Errorf("message %q does not contain %q", perr.Message, tc.msg)
			}
			if body.Messages != nil || body.Batch {
				t.Errorf("failed Parse returned a non-empty Body: %+v", body)
			}
		})
	}
}

// TestParseStrings checks string decoding against encoding/json, byte for
// byte, and that every string that encoding/json would have to repair
// (invalid UTF-8, a lone surrogate) is refused instead: readers repair them
// differently.
func TestParseStrings(t *testing.T) {
	tests := map[string]struct {
		content string
		code    int // 0: accepted
	}{
		"plain":                      {`abc`, 0},
		"empty":                      {``, 0},
		"simple_escapes":             {`\"\\\/`, 0},
		"unicode_escape":             {`\u00e9\u4e2d\u00ff`, 0},
		"surrogate_pair":             {`\ud83d\ude00`, 0},
		"surrogate_pair_upper_hex":   {`\uD83D\uDE00`, 0},
		"raw_utf8":                   {"é中😀", 0},
		"replacement_char_literally": {"\xef\xbf\xbd", 0},
		"del_char":                   {"\x7f", 0},
		"lone_high_surrogate":        {`a\ud800b`, CodeParseError},
		"lone_low_surrogate":         {`\udc00`, CodeParseError},
		"high_then_non_surrogate":    {`\ud800\u0041`, CodeParseError},
		"two_high_surrogates":        {`\ud800\ud800\udc00`, CodeParseError},
		"high_surrogate_at_end":      {`\ud83d`, CodeParseError},
		"high_then_literal_u":        {`\ud83du0041`, CodeParseError},
		"invalid_utf8_byte":          {"a\xffb", CodeParseError},
		"truncated_utf8":             {"\xe4\xb8", CodeParseError},
		"overlong_utf8":              {"\xc0\xaf", CodeParseError},
		"encoded_surrogate_in_utf8":  {"\xed\xa0\x80", CodeParseError},
		"escape_then_invalid_utf8":   {`\n` + "\xff", CodeParseError},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := `{"jsonrpc":"2.0","method":"m","params":{"s":"` + tc.content + `","` + tc.content + `":1}}`
			var ref struct{ Params map[string]any }
			if err := json.Unmarshal([]byte(body), &ref); err != nil {
				t.Fatalf("encoding/json rejects the test body: %v", err)
			}
			got, err := Parse([]byte(body))
			if tc.code != 0 {
				var perr *Error
				if !errors.As(err, &perr) || perr.Code != tc.code {
					t.Fatalf("Parse: %v, want code %d", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want := ref.Params["s"].(string)
			params := got.Messages[0].Params.(ast.Object)
			s, ok := params.Get(ast.StringTerm("s")).Value.(ast.String)
			if !ok || string(s) != want {
				t.Errorf("value = %q, want %q", s, want)
			}
			if params.Get(ast.StringTerm(want)) == nil {
				t.Errorf("key %q not found in %v", want, params)
			}
		})
	}
}

// TestParseDoesNotAliasBody checks that nothing returned refers to the
// caller's buffer, which it may reuse.
func TestParseDoesNotAliasBody(t *testing.T) {
	buf := []byte(`{"jsonrpc":"2.0","id":"abc","method":"tools/call","params":{"name":"some_tool_name","arguments":{"path":"/x/y/z"}}}`)
	got, err := Parse(buf)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	for i := range buf {
		buf[i] = 'X'
	}
	m := got.Messages[0]
	if string(m.ID) != `"abc"` || m.IDValue.Compare(ast.String("abc")) != 0 {
		t.Errorf("id changed with the body: %s %v", m.ID, m.IDValue)
	}
	if m.Tool.Name != "some_tool_name" || m.Method != "tools/call" {
		t.Errorf("strings changed with the body: %q %q", m.Tool.Name, m.Method)
	}
	if want := jsonValue(t, `{"path":"/x/y/z"}`); !valueEqual(m.Tool.Arguments, want) {
		t.Errorf("arguments changed with the body: %v", m.Tool.Arguments)
	}
}

// golden is the stable rendering of a Parse result in testdata/bodies/*.golden.
type golden struct {
	Error    *goldenError    `json:"error,omitempty"`
	Batch    bool            `json:"batch,omitempty"`
	Messages []goldenMessage `json:"messages,omitempty"`
}

type goldenError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type goldenMessage struct {
	Kind     string       `json:"kind"`
	Method   string       `json:"method,omitempty"`
	ID       string       `json:"id,omitempty"`
	IDValue  string       `json:"id_value,omitempty"` // in Rego syntax, so a string shows its quotes
	Params   any          `json:"params,omitempty"`
	Tool     *goldenNamed `json:"tool,omitempty"`
	Prompt   *goldenNamed `json:"prompt,omitempty"`
	Resource *Resource    `json:"resource,omitempty"`
	// What params._meta says of a 2026-07-28 request.
	ProtocolVersion    string `json:"protocol_version,omitempty"`
	ClientInfo         any    `json:"client_info,omitempty"`
	ClientCapabilities any    `json:"client_capabilities,omitempty"`
}

type goldenNamed struct {
	Name      string `json:"name"`
	Arguments any    `json:"arguments,omitempty"`
}

func render(t *testing.T, body Body, err error) []byte {
	t.Helper()
	var g golden
	if err != nil {
		var perr *Error
		if !errors.As(err, &perr) {
			t.Fatalf("error %v is %T, want *Error", err, err)
		}
		g.Error = &goldenError{Code: perr.Code, Message: perr.Message}
	}
	g.Batch = body.Batch
	for _, m := range body.Messages {
		gm := goldenMessage{Kind: m.Kind.String(), Method: m.Method, ID: string(m.ID),
			Params: toJSON(t, m.Params), Resource: m.Resource, ProtocolVersion: m.ProtocolVersion}
		if m.ClientInfo != nil {
			gm.ClientInfo = toJSON(t, m.ClientInfo)
		}
		if m.ClientCapabilities != nil {
			gm.ClientCapabilities = toJSON(t, m.ClientCapabilities)
		}
		if m.IDValue != nil {
			gm.IDValue = m.IDValue.String()
		}
		for _, n := range []struct {
			from *Named
			to   **goldenNamed
		}{{m.Tool, &gm.Tool}, {m.Prompt, &gm.Prompt}} {
			if n.from != nil {
				*n.to = &goldenNamed{Name: n.from.Name, Arguments: toJSON(t, n.from.Arguments)}
			}
		}
		g.Messages = append(g.Messages, gm)
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(g); err != nil {
		t.Fatalf("rendering: %v", err)
	}
	return out.Bytes()
}

func toJSON(t *testing.T, v ast.Value) any {
	t.Helper()
	if v == nil {
		return nil
	}
	x, err := ast.JSON(v)
	if err != nil {
		t.Fatalf("ast.JSON(%v): %v", v, err)
	}
	return x
}

func TestParseGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "bodies", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no golden inputs in testdata/bodies")
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			body, perr := Parse(raw)
			got := render(t, body, perr)
			goldenPath := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if err != nil {
				t.Fatalf("reading golden file (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", goldenPath, diff)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	inputs, _ := filepath.Glob(filepath.Join("testdata", "bodies", "*.json"))
	for _, in := range inputs {
		raw, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
	f.Add([]byte(`{"jsonrpc":"2.0","id":"\ud800\udc00\ud800","method":"m","params":{"a":"\xff","a":1}}`))
	f.Add([]byte(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"n","arguments":{"x":[1.5e-3,true,null]}}}]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := Parse(data)
		sameWithoutParams(t, data, body, err)
		valid := json.Valid(data)
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %v is %T, want *Error", err, err)
			}
			if !valid && perr.Code != CodeParseError {
				t.Fatalf("encoding/json rejects the input but Parse gave code %d: %s", perr.Code, perr.Message)
			}
			if valid && perr.Code == CodeParseError {
				_, lone := referenceSurrogates(data)
				switch {
				case strings.Contains(perr.Message, "nested too deeply"):
				case !utf8.Valid(data) && strings.Contains(perr.Message, "invalid UTF-8"):
				case lone && strings.Contains(perr.Message, "lone surrogate"):
				case strings.Contains(perr.Message, "number out of range") && hasHugeNumber(decodeRef(t, data)):
				default:
					t.Fatalf("input is JSON but Parse says: %s", perr.Message)
				}
			}
			if valid && perr.Code != CodeParseError {
				if want := referenceCode(t, data); want != perr.Code {
					t.Fatalf("code %d (%s), reference rules give %d", perr.Code, perr.Message, want)
				}
			}
			return
		}
		if !valid {
			t.Fatalf("Parse accepted input that encoding/json rejects")
		}
		if code := referenceCode(t, data); code != 0 {
			t.Fatalf("Parse accepted a body the reference rules reject with %d", code)
		}
		compareWithEncodingJSON(t, data, body)
	})
}

// sameWithoutParams requires ParseWith(SkipParams) to give what Parse
// gave, but for Message.Params.
func sameWithoutParams(t *testing.T, data []byte, full Body, fullErr error) {
	t.Helper()
	lean, err := ParseWith(data, Options{SkipParams: true})
	if (err == nil) != (fullErr == nil) || (err != nil && err.Error() != fullErr.Error()) {
		t.Fatalf("SkipParams: error %v, Parse: %v", err, fullErr)
	}
	if err != nil {
		return
	}
	for i := range full.Messages {
		m := full.Messages[i]
		m.Params = nil
		if !reflect.DeepEqual(lean.Messages[i], m) {
			t.Fatalf("message %d with SkipParams:\n%+v\nParse:\n%+v", i, lean.Messages[i], m)
		}
		if lean.Messages[i].Params != nil {
			t.Fatalf("message %d: SkipParams built params", i)
		}
	}
	if lean.Batch != full.Batch || len(lean.Messages) != len(full.Messages) {
		t.Fatalf("SkipParams: batch %v of %d, Parse: batch %v of %d", lean.Batch, len(lean.Messages), full.Batch, len(full.Messages))
	}
}

// decodeRef decodes data the way a reference implementation would.
func decodeRef(t *testing.T, data []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var x any
	if err := d.Decode(&x); err != nil {
		t.Fatalf("encoding/json: %v", err)
	}
	return x
}

// referenceCode applies the validation rules to the encoding/json decoding of
// data, independently of the parser: 0 when valid, else the JSON-RPC code.
func referenceCode(t *testing.T, data []byte) int {
	x := decodeRef(t, data)
	_, inValue := referenceSurrogates(data)
	if depth(x) > MaxDepth || !utf8.Valid(data) || inValue {
		return CodeParseError
	}
	msgs := []any{x}
	raws := []json.RawMessage{data}
	if arr, ok := x.([]any); ok {
		if len(arr) == 0 {
			return CodeInvalidRequest
		}
		msgs = arr
		raws = nil
		if err := json.Unmarshal(data, &raws); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		if i == MaxBatch {
			return CodeInvalidRequest // messages before the limit are checked first
		}
		if inName, _ := referenceSurrogates(raws[i]); inName {
			return CodeInvalidRequest
		}
		if code := referenceCanonical(t, raws[i]); code != 0 {
			return code
		}
		if code := referenceMessageCode(m); code != 0 {
			return code
		}
	}
	return 0
}

func referenceMessageCode(x any) int {
	m, ok := x.(map[string]any)
	if !ok || m["jsonrpc"] != "2.0" {
		return CodeInvalidRequest
	}
	id, hasID := m["id"]
	switch id.(type) {
	case string, json.Number:
	default:
		if hasID {
			return CodeInvalidRequest
		}
	}
	method, hasMethod := m["method"]
	if s, ok := method.(string); hasMethod && (!ok || s == "") {
		return CodeInvalidRequest
	}
	params, hasParams := m["params"].(map[string]any)
	if _, present := m["params"]; present && !hasParams {
		return CodeInvalidRequest
	}
	_, hasResult := m["result"]
	_, hasError := m["error"]
	switch {
	case hasMethod && (hasResult || hasError),
		!hasMethod && !hasResult && !hasError,
		hasResult && hasError,
		!hasMethod && !hasID:
		return CodeInvalidRequest
	}
	if hasMethod && !hasID && IsRequestMethod(method.(string)) {
		return CodeInvalidRequest
	}
	nonEmpty := func(k string) bool { s, ok := params[k].(string); return ok && s != "" }
	switch method {
	case "tools/call", "prompts/get":
		if !nonEmpty("name") {
			return CodeInvalidParams
		}
		if args, present := params["arguments"]; present {
			if _, ok := args.(map[string]any); !ok {
				return CodeInvalidParams
			}
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		if !nonEmpty("uri") {
			return CodeInvalidParams
		}
	}
	// params._meta, when sent, is an object whose revision is a non-empty
	// string and whose client info and capabilities are objects.
	if meta, present := params["_meta"]; present {
		obj, ok := meta.(map[string]any)
		if !ok {
			return CodeInvalidParams
		}
		if v, present := obj[MetaProtocolVersion]; present {
			if s, ok := v.(string); !ok || s == "" {
				return CodeInvalidParams
			}
		}
		for _, k := range []string{MetaClientInfo, MetaClientCapabilities} {
			if v, present := obj[k]; present {
				if _, ok := v.(map[string]any); !ok {
					return CodeInvalidParams
				}
			}
		}
	}
	return 0
}

// hasHugeNumber reports whether x holds a number OPA refuses.
func hasHugeNumber(x any) bool {
	switch x := x.(type) {
	case json.Number:
		_, err := ast.NumberChecked(string(x))
		return err != nil
	case map[string]any:
		for _, v := range x {
			if hasHugeNumber(v) {
				return true
			}
		}
	case []any:
		for _, v := range x {
			if hasHugeNumber(v) {
				return true
			}
		}
	}
	return false
}

func depth(x any) int {
	d := 0
	switch x := x.(type) {
	case map[string]any:
		for _, v := range x {
			d = max(d, depth(v))
		}
		return d + 1
	case []any:
		for _, v := range x {
			d = max(d, depth(v))
		}
		return d + 1
	}
	return 0
}

// compareWithEncodingJSON checks every built value of an accepted body
// against what encoding/json decodes from it.
func compareWithEncodingJSON(t *testing.T, data []byte, body Body) {
	x := decodeRef(t, data)
	refs := []any{x}
	if arr, ok := x.([]any); ok {
		refs = arr
		if !body.Batch {
			t.Fatal("array body not marked as batch")
		}
	}
	if len(body.Messages) != len(refs) {
		t.Fatalf("%d messages, encoding/json decodes %d", len(body.Messages), len(refs))
	}
	for i, m := range body.Messages {
		ref := refs[i].(map[string]any)
		if want, _ := ref["method"].(string); m.Method != want {
			t.Errorf("message %d: Method %q, want %q", i, m.Method, want)
		}
		checkRefValue(t, fmt.Sprintf("message %d: params", i), m.Params, ref["params"])
		checkRefValue(t, fmt.Sprintf("message %d: IDValue", i), m.IDValue, ref["id"])
		if id, ok := ref["id"]; ok {
			var fromRaw any
			d := json.NewDecoder(bytes.NewReader(m.ID))
			d.UseNumber()
			if err := d.Decode(&fromRaw); err != nil || !reflect.DeepEqual(fromRaw, id) {
				t.Errorf("message %d: raw ID %q decodes to %v (%v), want %v", i, m.ID, fromRaw, err, id)
			}
		}
		for _, n := range []*Named{m.Tool, m.Prompt} {
			if n == nil {
				continue
			}
			params := ref["params"].(map[string]any)
			if n.Name != params["name"] {
				t.Errorf("message %d: name %q, want %v", i, n.Name, params["name"])
			}
			checkRefValue(t, fmt.Sprintf("message %d: arguments", i), n.Arguments, params["arguments"])
		}
	}
}

// checkRefValue compares a built value with an encoding/json decoding, both
// as OPA values and as exact JSON (number literals included).
func checkRefValue(t *testing.T, where string, got ast.Value, ref any) {
	t.Helper()
	if ref == nil {
		if got != nil {
			t.Errorf("%s = %v, encoding/json has none", where, got)
		}
		return
	}
	want, err := ast.InterfaceToValue(ref)
	if err != nil {
		t.Fatalf("%s: InterfaceToValue: %v", where, err)
	}
	if got == nil || got.Compare(want) != 0 {
		t.Errorf("%s = %v, want %v", where, got, want)
		return
	}
	// reflect.DeepEqual, not cmp: cmp's slice diff is exponential on deep nesting.
	if g := toJSON(t, got); !reflect.DeepEqual(g, ref) {
		t.Errorf("%s differs from encoding/json: got %#v, want %#v", where, g, ref)
	}
}

// Benchmark bodies: the typical tools/call, and a larger initialize-style
// request with nested arguments.
var (
	benchSmall = []byte(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/reports/q3.csv"}}}`)
	benchLarge = []byte(`{"jsonrpc":"2.0","id":"req-7f3a9c21-4b1e","method":"tools/call","params":{"name":"query_database",` +
		`"_meta":{"progressToken":"tok-123"},"arguments":{"database":"analytics","sql":"SELECT region, SUM(revenue) FROM sales ` +
		`WHERE quarter = 'Q3' AND year = 2025 GROUP BY region ORDER BY 2 DESC","limit":500,"timeout_ms":30000,"dry_run":false,` +
		`"parameters":[{"name":"quarter","value":"Q3"},{"name":"year","value":2025}],"tags":["finance","quarterly","report",` +
		`"emea","apac","amer"],"options":{"cache":true,"format":"csv","columns":["region","revenue"],"notes":"caf\u00e9 \u2014 ` +
		`r\u00e9sum\u00e9","weights":[0.25,0.5,0.125,1e-3,-2.5E+2]},"requester":{"user":"alice@example.com","team":"bi",` +
		`"roles":["analyst","viewer"],"session":{"started":"2026-11-26T10:00:00Z","ip":"10.1.2.3"}}}}}`)
)

func BenchmarkParse(b *testing.B) {
	for name, body := range map[string][]byte{"tools_call": benchSmall, "large": benchLarge} {
		for _, opts := range []Options{{}, {SkipParams: true}} {
			if opts.SkipParams {
				name += "_skip_params"
			}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(body)))
				for b.Loop() {
					if _, err := ParseWith(body, opts); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkEncodingJSONBaseline is the cost Parse replaces: encoding/json into
// maps, then OPA's conversion of the params to an ast.Value.
func BenchmarkEncodingJSONBaseline(b *testing.B) {
	for name, body := range map[string][]byte{"tools_call": benchSmall, "large": benchLarge} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				d := json.NewDecoder(bytes.NewReader(body))
				d.UseNumber()
				var m map[string]any
				if err := d.Decode(&m); err != nil {
					b.Fatal(err)
				}
				if _, err := ast.InterfaceToValue(m["params"]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
