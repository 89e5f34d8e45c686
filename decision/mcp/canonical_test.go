package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
)

// TestParseCanonical holds one case per way two JSON readers can read the
// same bytes differently: each must be refused with the exact code, and the
// unambiguous spelling next to it accepted.
func TestParseCanonical(t *testing.T) {
	call := func(params string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + params + `}`
	}
	args := func(a string) string { return call(`{"name":"read_file","arguments":` + a + `}`) }
	tests := map[string]struct {
		body string
		code int    // 0: accepted
		msg  string // substring of the error message
	}{
		// Exact duplicates, at every level.
		"duplicate_envelope_method": {`{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`, CodeInvalidRequest, `two members named "method"`},
		"duplicate_envelope_id":     {`{"jsonrpc":"2.0","id":1,"id":2,"method":"ping"}`, CodeInvalidRequest, `two members named "id"`},
		"duplicate_jsonrpc":         {`{"jsonrpc":"2.0","jsonrpc":"2.0","id":1,"method":"ping"}`, CodeInvalidRequest, "two members"},
		"duplicate_params":          {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}`, CodeInvalidRequest, "two members"},
		"duplicate_tool_name":       {call(`{"name":"safe_tool","name":"forbidden_tool"}`), CodeInvalidRequest, `two members named "name"`},
		"duplicate_argument":        {args(`{"path":"/data/a","path":"/etc/passwd"}`), CodeInvalidRequest, `two members named "path"`},
		"duplicate_nested":          {args(`{"q":{"a":[{"x":1,"x":2}]}}`), CodeInvalidRequest, `two members named "x"`},
		"duplicate_in_meta":         {call(`{"name":"t","_meta":{"progressToken":1,"progressToken":2}}`), CodeInvalidRequest, "two members"},
		"duplicate_in_result":       {`{"jsonrpc":"2.0","id":1,"result":{"a":1,"a":2}}`, CodeInvalidRequest, "two members"},
		"duplicate_in_unknown":      {`{"jsonrpc":"2.0","id":1,"method":"ping","x":{"a":1,"a":2}}`, CodeInvalidRequest, "two members"},
		"duplicate_escaped":         {args(`{"path":"/data/a","p\u0061th":"/etc/passwd"}`), CodeInvalidRequest, `two members named "path"`},
		"duplicate_in_batch":        {`[{"jsonrpc":"2.0","id":1,"method":"ping"},` + args(`{"a":1,"a":2}`) + `]`, CodeInvalidRequest, "batch element 1: "},
		"duplicate_many_members":    {args(`{` + members(smallObject+4, "k") + `,"k3":0}`), CodeInvalidRequest, `two members named "k3"`},

		// Names equal under Unicode simple case folding.
		"case_variant_tool_name":       {call(`{"name":"safe_tool","Name":"forbidden_tool"}`), CodeInvalidRequest, `"Name" is a case variant of "name"`},
		"case_variant_argument":        {args(`{"path":"/data/a","Path":"/etc/passwd"}`), CodeInvalidRequest, `two members named "path"`},
		"case_variant_nested":          {args(`{"opts":{"mode":"r","MODE":"w"}}`), CodeInvalidRequest, `two members named "mode"`},
		"long_s_folds_to_s":            {`{"jsonrpc":"2.0","id":1,"method":"ping","paramſ":{"name":"x"}}`, CodeInvalidRequest, "case-folds to ASCII"},
		"long_s_beside_s":              {args(`{"ſql":"drop","sql":"select"}`), CodeInvalidRequest, "case-folds to ASCII"},
		"kelvin_folds_to_k":            {args(`{"kind":"a","\u212aind":"b"}`), CodeInvalidRequest, "case-folds to ASCII"},
		"kelvin_raw_utf8":              {args(`{"kind":"a","Kind":"b"}`), CodeInvalidRequest, "two members"},
		"case_variant_alone_envelope":  {`{"jsonrpc":"2.0","id":1,"Method":"tools/call","method":"ping"}`, CodeInvalidRequest, "case variant"},
		"case_variant_method_alone":    {`{"jsonrpc":"2.0","id":1,"METHOD":"tools/call"}`, CodeInvalidRequest, `"METHOD" is a case variant of "method"`},
		"case_variant_id_alone":        {`{"jsonrpc":"2.0","ID":1,"method":"ping"}`, CodeInvalidRequest, `"ID" is a case variant of "id"`},
		"case_variant_params_alone":    {`{"jsonrpc":"2.0","id":1,"method":"ping","Params":{}}`, CodeInvalidRequest, "case variant"},
		"case_variant_jsonrpc_alone":   {`{"JSONRPC":"2.0","id":1,"method":"ping"}`, CodeInvalidRequest, "case variant"},
		"case_variant_result_alone":    {`{"jsonrpc":"2.0","id":1,"Result":{}}`, CodeInvalidRequest, "case variant"},
		"case_variant_error_alone":     {`{"jsonrpc":"2.0","id":1,"ERROR":{}}`, CodeInvalidRequest, "case variant"},
		"case_variant_name_alone":      {call(`{"Name":"forbidden_tool"}`), CodeInvalidRequest, `"Name" is a case variant of "name"`},
		"case_variant_arguments_alone": {call(`{"name":"t","Arguments":{"path":"/etc"}}`), CodeInvalidRequest, "case variant"},
		"case_variant_uri_alone":       {`{"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"URI":"file:///etc/passwd","uri":"file:///data/a"}}`, CodeInvalidRequest, "case variant"},
		"case_variant_meta_alone":      {call(`{"name":"t","_Meta":{}}`), CodeInvalidRequest, "case variant"},
		"kelvin_alone_in_params":       {call(`{"name":"t","\u212a":1}`), CodeInvalidRequest, "case-folds to ASCII"},
		"kelvin_alone_in_arguments":    {args(`{"\u212aind":"hard"}`), CodeInvalidRequest, "case-folds to ASCII"},
		"long_s_alone_in_arguments":    {args(`{"\u017fize":9}`), CodeInvalidRequest, "case-folds to ASCII"},
		"long_s_raw_in_result":         {`{"jsonrpc":"2.0","id":1,"result":{"ſ":1}}`, CodeInvalidRequest, "case-folds to ASCII"},
		"non_ascii_fold_ok":            {args(`{"Ärger":1,"σ":2}`), 0, ""},
		"case_variant_escaped":         {call(`{"\u004eame":"forbidden_tool"}`), CodeInvalidRequest, "case variant"},
		"case_variant_skip_params":     {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","NAME":"b"}}`, CodeInvalidRequest, "case variant"},
		"case_variant_in_argument_ok":  {args(`{"Path":"/etc/passwd"}`), 0, ""},
		"distinct_names_ok":            {args(`{"path":"/data/a","paths":["/data/b"],"pāth":1}`), 0, ""},

		// Control characters and lone surrogates in member names.
		"nul_in_name":             {call(`{"name":"safe_tool","name\u0000":"forbidden_tool"}`), CodeInvalidRequest, "control character"},
		"nul_in_argument_name":    {args(`{"path\u0000":"/etc/passwd"}`), CodeInvalidRequest, "control character"},
		"tab_in_name":             {args(`{"pa\tth":"/etc"}`), CodeInvalidRequest, "control character"},
		"unit_separator_in_name":  {args(`{"a\u001f":1}`), CodeInvalidRequest, "control character"},
		"lone_surrogate_in_name":  {args(`{"\ud800":1}`), CodeInvalidRequest, "lone surrogate"},
		"lone_surrogate_in_meta":  {call(`{"name":"t","_meta":{"\udfff":1}}`), CodeInvalidRequest, "lone surrogate"},
		"surrogate_pair_in_name":  {args(`{"\ud83d\ude00":1}`), 0, ""},
		"control_char_in_value":   {args(`{"a":"x\u0000y"}`), 0, ""},
		"del_in_name_is_not_ctrl": {args("{\"a\x7f\":1}"), 0, ""},

		// Strings must be Unicode.
		"invalid_utf8_value":         {args("{\"path\":\"/data/\xff\"}"), CodeParseError, "invalid UTF-8"},
		"invalid_utf8_name":          {args("{\"pa\xc0th\":1}"), CodeParseError, "invalid UTF-8"},
		"invalid_utf8_id":            {"{\"jsonrpc\":\"2.0\",\"id\":\"\xfe\",\"method\":\"ping\"}", CodeParseError, "invalid UTF-8"},
		"invalid_utf8_skipped":       {"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"\xff\"}", CodeParseError, "invalid UTF-8"},
		"lone_surrogate_value":       {args(`{"path":"/data/\ud800"}`), CodeParseError, "lone surrogate"},
		"lone_surrogate_id":          {`{"jsonrpc":"2.0","id":"\udc00","method":"ping"}`, CodeParseError, "lone surrogate"},
		"lone_surrogate_after_fail":  {`[{"jsonrpc":"1.0","id":1,"method":"m"},{"a":"\ud800"}]`, CodeParseError, "lone surrogate"},
		"utf8_wins_over_duplicate":   {args("{\"a\":1,\"a\":\"\xff\"}"), CodeParseError, "invalid UTF-8"},
		"encoded_surrogate_in_utf8":  {args("{\"a\":\"\xed\xa0\x80\"}"), CodeParseError, "invalid UTF-8"},
		"surrogate_pair_value_is_ok": {args(`{"a":"\ud83d\ude00"}`), 0, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, opts := range []Options{{}, {SkipParams: true}} {
				checkParse(t, tc.body, opts, tc.code, tc.msg)
			}
		})
	}
}

// TestParseLimits checks every bound at the limit (accepted) and one past
// it (refused with its code).
func TestParseLimits(t *testing.T) {
	ok := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	args := func(a string) string {
		return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":` + a + `}}`
	}
	tests := map[string]struct {
		body string
		code int
		msg  string
	}{
		"depth_at_limit":         {args(`{"a":` + nested(MaxDepth-3) + `}`), 0, ""},
		"depth_past_limit":       {args(`{"a":` + nested(MaxDepth-2) + `}`), CodeParseError, "nested too deeply"},
		"batch_at_limit":         {batchOf(MaxBatch), 0, ""},
		"batch_past_limit":       {batchOf(MaxBatch + 1), CodeInvalidRequest, "more than 1000 messages"},
		"members_at_limit":       {args(`{` + members(MaxMembers, "m") + `}`), 0, ""},
		"members_past_limit":     {args(`{` + members(MaxMembers+1, "m") + `}`), CodeInvalidRequest, "more than 4096 members"},
		"members_past_in_result": {`{"jsonrpc":"2.0","id":1,"result":{` + members(MaxMembers+1, "m") + `}}`, CodeInvalidRequest, "more than 4096 members"},
		"string_at_limit":        {args(`{"s":"` + strings.Repeat("a", MaxString) + `"}`), 0, ""},
		"string_past_limit":      {args(`{"s":"` + strings.Repeat("a", MaxString+1) + `"}`), CodeInvalidRequest, "string is longer than 1048576 bytes"},
		"name_past_limit":        {args(`{"` + strings.Repeat("a", MaxString+1) + `":1}`), CodeInvalidRequest, "string is longer"},
		"number_at_limit":        {args(`{"n":1` + strings.Repeat("0", MaxNumber-1) + `}`), 0, ""},
		"number_past_limit":      {args(`{"n":` + strings.Repeat("1", MaxNumber+1) + `}`), CodeInvalidRequest, "number is longer than 128 bytes"},
		"id_number_past_limit":   {`{"jsonrpc":"2.0","id":` + strings.Repeat("9", MaxNumber+1) + `,"method":"ping"}`, CodeInvalidRequest, "number is longer"},
		"fraction_past_limit":    {args(`{"n":0.` + strings.Repeat("5", MaxNumber-1) + `}`), CodeInvalidRequest, "number is longer"},
		"ok":                     {ok, 0, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, opts := range []Options{{}, {SkipParams: true}} {
				checkParse(t, tc.body, opts, tc.code, tc.msg)
			}
		})
	}
}

// checkParse parses body and requires the code (0: success) and an error
// message holding msg.
func checkParse(t *testing.T, body string, opts Options, code int, msg string) {
	t.Helper()
	got, err := ParseWith([]byte(body), opts)
	if code == 0 {
		if err != nil {
			t.Fatalf("ParseWith(%+v): %v, want success", opts, err)
		}
		return
	}
	var perr *Error
	if !errors.As(err, &perr) {
		t.Fatalf("ParseWith(%+v) = %d messages, %v; want code %d", opts, len(got.Messages), err, code)
	}
	if perr.Code != code {
		t.Errorf("ParseWith(%+v): code %d (%s), want %d", opts, perr.Code, perr.Message, code)
	}
	if !strings.Contains(perr.Message, msg) {
		t.Errorf("ParseWith(%+v): message %q does not contain %q", opts, perr.Message, msg)
	}
}

// members returns n members "<prefix>0":0,"<prefix>1":0,... for an object.
func members(n int, prefix string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + prefix + strconv.Itoa(i) + `":0`)
	}
	return b.String()
}

// referenceCanonical applies the one-reading rules to one message (raw
// JSON that encoding/json accepts), independently of the parser: token by
// token with encoding/json, comparing names with strings.EqualFold (Unicode
// simple folding), and numbers with math/big (referenceExact). It returns 0 or CodeInvalidRequest. Lone surrogates are
// left to referenceSurrogates, since encoding/json replaces them.
func referenceCanonical(t *testing.T, raw []byte) int {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	type frame struct {
		object, mcp bool
		names       []string
		wantName    bool   // the next string token is a member name
		last        string // the member name whose value comes next
	}
	var stack []*frame
	bad := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.object && top.wantName {
			if delim, ok := tok.(json.Delim); ok && delim == '}' {
				if len(top.names) > MaxMembers {
					bad = true
				}
				for i := range top.names {
					for j := i + 1; j < len(top.names); j++ {
						bad = bad || strings.EqualFold(top.names[i], top.names[j])
					}
				}
				stack = stack[:len(stack)-1]
				continue
			}
			name := tok.(string)
			bad = bad || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 })
			bad = bad || strings.ContainsFunc(name, func(r rune) bool {
				if r < 0x80 {
					return false
				}
				for c := 'a'; c <= 'z'; c++ {
					if strings.EqualFold(string(r), string(c)) {
						return true
					}
				}
				return false
			})
			if top.mcp {
				for _, n := range mcpNames {
					bad = bad || (strings.EqualFold(name, n) && name != n)
				}
			}
			top.names = append(top.names, name)
			top.wantName, top.last = false, name
			continue
		}
		// A value (or the start of one).
		isParams := len(stack) == 1 && top.object && top.last == "params"
		if top != nil && top.object {
			top.wantName = true
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, &frame{object: true, wantName: true, mcp: len(stack) == 0 || isParams})
			case '[':
				stack = append(stack, &frame{})
			case ']':
				stack = stack[:len(stack)-1]
			}
		case json.Number:
			bad = bad || len(v) > MaxNumber || !referenceExact(string(v))
		case string:
			bad = bad || len(v) > MaxString
		}
	}
	if bad {
		return CodeInvalidRequest
	}
	return 0
}

// referenceSurrogates reports whether some member name, and some other
// string, of the JSON text data holds a \u escape of a surrogate that is not
// half of a pair. encoding/json decodes those to U+FFFD, so they are found
// in the text.
func referenceSurrogates(data []byte) (inName, inValue bool) {
	for i := 0; i < len(data); i++ {
		if data[i] != '"' {
			continue
		}
		lone := false
		j := i + 1
		for ; j < len(data) && data[j] != '"'; j++ {
			if data[j] != '\\' {
				continue
			}
			j++
			if j >= len(data) || data[j] != 'u' || j+4 >= len(data) {
				continue
			}
			r, err := strconv.ParseUint(string(data[j+1:j+5]), 16, 32)
			if err != nil {
				continue
			}
			j += 4
			switch {
			case r >= 0xd800 && r < 0xdc00:
				if j+6 < len(data) && data[j+1] == '\\' && data[j+2] == 'u' {
					if lo, err := strconv.ParseUint(string(data[j+3:j+7]), 16, 32); err == nil && lo >= 0xdc00 && lo <= 0xdfff {
						j += 6
						continue
					}
				}
				lone = true
			case r >= 0xdc00 && r <= 0xdfff:
				lone = true
			}
		}
		k := j + 1
		for k < len(data) && strings.IndexByte(" \t\r\n", data[k]) >= 0 {
			k++
		}
		if lone {
			if k < len(data) && data[k] == ':' {
				inName = true
			} else {
				inValue = true
			}
		}
		i = j
	}
	return inName, inValue
}
