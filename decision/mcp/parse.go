package mcp

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Limits on what Parse accepts. They bound the work and the stack depth an
// untrusted body can cause.
const (
	// MaxDepth is the deepest nesting of arrays and objects Parse accepts; the
	// outermost value is at depth 1.
	MaxDepth = 64
	// MaxBatch is the largest number of messages a batch may hold.
	MaxBatch = 1000
	// MaxMembers is the largest number of members one object may hold.
	MaxMembers = 4096
	// MaxString is the longest string literal, key or value, in bytes as
	// sent (escapes included).
	MaxString = 1 << 20
	// MaxNumber is the longest number literal, in bytes.
	MaxNumber = 128
)

// Parse reads an HTTP body holding one JSON-RPC 2.0 message or a batch of
// them, validates it against JSON-RPC 2.0 and the MCP rules authorization
// relies on, and builds the policy values (id, params, tool and prompt
// arguments) directly as OPA values.
//
// The returned error is always an *Error carrying the JSON-RPC code a reply
// should use: CodeParseError when the body is not JSON (or nests deeper than
// MaxDepth), CodeInvalidRequest when it is JSON but not a valid message,
// CodeInvalidParams when a method's required params are missing or malformed.
// Any invalid message in a batch makes the whole body invalid.
//
// Parse refuses every body that two JSON readers could read differently
// (see docs/security.md, "One reading of every message"): a string that is
// not UTF-8 or holds a lone surrogate escape is a CodeParseError; an object
// with two member names equal under Unicode simple case folding (exact
// duplicates included), a member name with a control character or a lone
// surrogate, an envelope or params member that case-folds to a name MCP
// defines without being it, and a number literal that is not the shortest
// form of the double JavaScript reads from it (number.go), are
// CodeInvalidRequest. So is a method MCP defines as a request sent without
// an id (methods.go): a server would run that notification.
//
// Parse does not keep body: the values it returns refer to a private copy.
func Parse(body []byte) (Body, error) {
	return ParseWith(body, Options{})
}

// ReadJSON reads one JSON value that is not an MCP message (an AuthZEN
// request, a JSON field of the Decision API) with the rules Parse applies
// to every value of a message (see docs/security.md, "One reading of every
// message"): UTF-8 only, no lone surrogate, no two member names equal under
// Unicode simple case folding, no control character or character folding
// to ASCII in a name, the number rule, and the limits on depth, members,
// strings and numbers. Names MCP defines get no special treatment.
//
// The error is an *Error: CodeParseError when data is not JSON (or
// cannot be read as Unicode), CodeInvalidRequest when it is ambiguous.
func ReadJSON(data []byte) (ast.Value, error) {
	p := &parser{b: data, index: -1}
	p.items = p.itemsArr[:0]
	p.elems = p.elemsArr[:0]
	p.slab = p.slabArr[:]
	p.ws()
	if p.i >= len(p.b) {
		return nil, p.syntaxErr("unexpected end of JSON input")
	}
	t, err := p.value(1)
	if err != nil {
		return nil, err
	}
	p.ws()
	if p.i < len(p.b) {
		return nil, p.syntaxErr("invalid character %s after top-level value", quoteChar(p.b[p.i]))
	}
	if p.invalid != nil {
		return nil, &Error{Code: p.invalid.Code, Message: strings.TrimPrefix(p.invalid.Message, "invalid request: ")}
	}
	return t.Value, nil
}

// Options adjust what Parse builds.
type Options struct {
	// SkipParams leaves Message.Params nil: params are still validated, and
	// the members naming the target (name, uri, arguments) still read, but
	// the params object itself is not built. For callers whose policy does
	// not read params.
	SkipParams bool
}

// ParseWith is Parse with options.
func ParseWith(body []byte, opts Options) (Body, error) {
	// One allocation holds the parser with its scratch space and the storage
	// a typical single message needs (the message, its Tool, its id, the
	// first few terms). The returned values may point into it, so the
	// references to scratch that could grow large are dropped before return.
	p := &parser{b: body, skipParams: opts.SkipParams, index: -1}
	p.items = p.itemsArr[:0]
	p.elems = p.elemsArr[:0]
	p.slab = p.slabArr[:]
	out, err := p.body()
	p.b, p.buf, p.items, p.elems, p.names, p.nameEnds = nil, nil, nil, nil, nil, nil
	if err != nil {
		return Body{}, err
	}
	return out, nil
}

// parser is the state of one Parse call: a single forward pass over b.
type parser struct {
	b []byte
	i int // offset of the next unread byte

	// s is a copy of b, made the first time a string or number value is
	// built, so every plain string and number literal is a substring of one
	// allocation instead of one allocation each.
	s    string
	sSet bool

	buf   []byte         // scratch for unescaping strings
	items [][2]*ast.Term // stack of object members being built (nested objects push above their parent)
	elems []*ast.Term    // stack of array elements being built
	slab  []ast.Term     // terms are carved from here, to allocate them in blocks

	invalid *Error // first validation (not syntax) failure; scanning goes on to find syntax errors
	index   int    // batch position of the message being read, -1 for a single message

	// The member names of the objects being read, innermost last, folded
	// (see foldName): names holds them end to end, nameEnds where each ends.
	// An object's names are popped when it closes, so the stacks stay as
	// deep as the nesting.
	names    []byte
	nameEnds []int

	skipParams bool // Options.SkipParams

	// Inline storage, used before anything is allocated.
	itemsArr  [8][2]*ast.Term
	elemsArr  [8]*ast.Term
	slabArr   [6]ast.Term
	one       [1]Message // Body.Messages of a single message
	named     Named      // the first Tool or Prompt
	namedUsed bool
	idArr     [24]byte // the first short id
	idUsed    bool
}

// body parses the whole input.
func (p *parser) body() (Body, error) {
	p.ws()
	if p.i >= len(p.b) {
		return Body{}, p.syntaxErr("unexpected end of JSON input")
	}
	var out Body
	switch p.b[p.i] {
	case '{':
		m, err := p.message(1, -1)
		if err != nil {
			return Body{}, err
		}
		p.one[0] = m
		out.Messages = p.one[:]
	case '[':
		out.Batch = true
		msgs, err := p.batch()
		if err != nil {
			return Body{}, err
		}
		out.Messages = msgs
	default:
		if err := p.skip(1); err != nil {
			return Body{}, err
		}
		p.fail(CodeInvalidRequest, -1, "message is not an object")
	}
	p.ws()
	if p.i < len(p.b) {
		return Body{}, p.syntaxErr("invalid character %s after top-level value", quoteChar(p.b[p.i]))
	}
	if p.invalid != nil {
		return Body{}, p.invalid
	}
	return out, nil
}

// batch parses a JSON array of messages; p.b[p.i] is '['.
func (p *parser) batch() ([]Message, error) {
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		p.fail(CodeInvalidRequest, -1, "empty batch")
		return nil, nil
	}
	var msgs []Message
	for n := 0; ; n++ {
		if p.i >= len(p.b) {
			return nil, p.syntaxErr("unexpected end of JSON input")
		}
		switch {
		case n == MaxBatch:
			p.fail(CodeInvalidRequest, -1, fmt.Sprintf("batch has more than %d messages", MaxBatch))
			fallthrough
		case p.invalid != nil:
			// The body is already rejected: only check that the rest is JSON.
			if err := p.skip(2); err != nil {
				return nil, err
			}
		case p.b[p.i] == '{':
			m, err := p.message(2, n)
			if err != nil {
				return nil, err
			}
			msgs = append(msgs, m)
		default:
			if err := p.skip(2); err != nil {
				return nil, err
			}
			p.fail(CodeInvalidRequest, n, "message is not an object")
		}
		more, err := p.next(']')
		if err != nil {
			return nil, err
		}
		if !more {
			return msgs, nil
		}
	}
}

// Kinds of JSON value seen for a top-level member of a message.
const (
	absent byte = iota
	isString
	isNumber
	isObject
	isOther
)

// jsonString is a scanned string literal: the bounds of its content in the
// body, and what decoding it needs.
type jsonString struct {
	start, end int
	escaped    bool // contains a backslash escape
	nonASCII   bool // contains a byte >= 0x80 (always valid UTF-8)
	surrogate  bool // contains a \u escape of a surrogate that is not half of a pair
}

// message parses one message object at the given depth; p.b[p.i] is '{'.
// index is the position in a batch, or -1 for a single message. A message
// that fails validation is recorded in p.invalid; err is only a syntax error.
func (p *parser) message(depth, index int) (Message, error) {
	var (
		m          Message
		version    byte // kind of the jsonrpc member
		versionOK  bool
		idKind     byte
		idStart    int
		idEnd      int
		idStr      jsonString
		methodKind byte
		method     jsonString
		paramsKind byte
		params     ast.Object
		targets    targetFields // the members of params naming the target
		hasResult  bool
		hasError   bool
	)
	p.index = index
	base := len(p.nameEnds)
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
	} else {
		for {
			key, err := p.key()
			if err != nil {
				return m, err
			}
			// key aliases p.b or p.buf; it is only compared, before the value overwrites p.buf.
			switch string(key) {
			case "jsonrpc":
				version, versionOK = isOther, false
				if p.b[p.i] == '"' {
					s, err := p.scanString()
					if err != nil {
						return m, err
					}
					version, versionOK = isString, p.stringEquals(s, "2.0")
				} else if err := p.skip(depth + 1); err != nil {
					return m, err
				}
			case "id":
				idStart = p.i
				switch c := p.b[p.i]; {
				case c == '"':
					s, err := p.scanString()
					if err != nil {
						return m, err
					}
					idKind, idStr = isString, s
				case c == '-' || (c >= '0' && c <= '9'):
					if err := p.scanNumber(); err != nil {
						return m, err
					}
					idKind = isNumber
				default:
					if err := p.skip(depth + 1); err != nil {
						return m, err
					}
					idKind = isOther
				}
				idEnd = p.i
			case "method":
				if p.b[p.i] == '"' {
					s, err := p.scanString()
					if err != nil {
						return m, err
					}
					methodKind, method = isString, s
				} else {
					if err := p.skip(depth + 1); err != nil {
						return m, err
					}
					methodKind = isOther
				}
			case "params":
				if p.b[p.i] == '{' && p.invalid == nil && p.skipParams {
					tf, err := p.targetMembers(depth + 1)
					if err != nil {
						return m, err
					}
					paramsKind, params, targets = isObject, nil, tf
				} else if p.b[p.i] == '{' && p.invalid == nil {
					obj, err := p.object(depth+1, true)
					if err != nil {
						return m, err
					}
					paramsKind, params, targets = isObject, obj, targetFields{
						name: obj.Get(nameKey), uri: obj.Get(uriKey), arguments: obj.Get(argumentsKey),
						meta: obj.Get(metaKey),
					}
				} else {
					kind := isOther
					if p.b[p.i] == '{' {
						kind = isObject // body already rejected: validate only
					}
					if err := p.skip(depth + 1); err != nil {
						return m, err
					}
					paramsKind, params, targets = kind, nil, targetFields{}
				}
			case "result":
				hasResult = true
				if err := p.skip(depth + 1); err != nil {
					return m, err
				}
			case "error":
				hasError = true
				if err := p.skip(depth + 1); err != nil {
					return m, err
				}
			default:
				if err := p.skip(depth + 1); err != nil {
					return m, err
				}
			}
			more, err := p.next('}')
			if err != nil {
				return m, err
			}
			if !more {
				break
			}
		}
	}
	p.endMembers(base)

	if p.invalid != nil {
		return m, nil // an earlier batch element already failed
	}
	var why string
	switch {
	case version == absent:
		why = `jsonrpc member missing`
	case !versionOK:
		why = `jsonrpc must be "2.0"`
	case idKind == isOther:
		why = "id must be a string or a number"
	case methodKind == isOther:
		why = "method must be a string"
	case methodKind == isString && method.start == method.end:
		why = "method must not be empty"
	case paramsKind == isOther:
		why = "params must be an object"
	case methodKind != absent && (hasResult || hasError):
		why = "a message cannot have both method and result or error"
	case methodKind == absent && !hasResult && !hasError:
		why = "message has neither method nor result or error"
	case hasResult && hasError:
		why = "a response cannot have both result and error"
	case methodKind == absent && idKind == absent:
		why = "response has no id"
	}
	if why != "" {
		p.fail(CodeInvalidRequest, index, why)
		return m, nil
	}

	switch {
	case methodKind == absent:
		m.Kind = KindResponse
	case idKind == absent:
		m.Kind = KindNotification
	default:
		m.Kind = KindRequest
	}
	if methodKind == isString {
		m.Method = p.stringValue(method)
		if m.Kind == KindNotification && IsRequestMethod(m.Method) {
			p.fail(CodeInvalidRequest, index, m.Method+" is a request: it needs an id (a server runs a notification and answers nothing)")
			return m, nil
		}
	}
	if idKind != absent {
		raw := p.b[idStart:idEnd]
		if !p.idUsed && len(raw) <= len(p.idArr) {
			p.idUsed = true
			// Capacity capped, so a caller appending to ID cannot write past it.
			m.ID = p.idArr[:copy(p.idArr[:], raw):len(raw)]
		} else {
			m.ID = append([]byte(nil), raw...)
		}
		if idKind == isString {
			m.IDValue = p.stringTerm(idStr).Value
		} else {
			t, err := p.numberTerm(idStart, idEnd)
			if err != nil {
				return m, err
			}
			m.IDValue = t.Value
		}
	}
	if params != nil {
		m.Params = params
	}
	// _meta first: a request whose params are bad still names its revision,
	// which decides whether its method exists at all (Error.Method).
	p.meta(&m, targets.meta, index)
	p.target(&m, &targets, index)
	if e := p.invalid; e != nil && e.Code == CodeInvalidParams && index < 0 && m.Kind == KindRequest {
		e.Method, e.ID, e.ProtocolVersion = m.Method, m.ID, m.ProtocolVersion
	}
	return m, nil
}

// targetFields are the members of params that name an operation's target;
// nil when absent.
type targetFields struct {
	name, uri, arguments *ast.Term
	meta                 *ast.Term // params._meta
}

// targetMembers validates the params object at p.i (which is '{') and
// builds only its members that name a target, as Options.SkipParams asks.
func (p *parser) targetMembers(depth int) (targetFields, error) {
	var tf targetFields
	if empty, err := p.open(depth, '}'); empty || err != nil {
		return tf, err
	}
	base := len(p.nameEnds)
	for {
		key, err := p.key()
		if err != nil {
			return tf, err
		}
		// key aliases p.b or p.buf; it is compared before the value overwrites p.buf.
		var dst **ast.Term
		switch string(key) {
		case "name":
			dst = &tf.name
		case "uri":
			dst = &tf.uri
		case "arguments":
			dst = &tf.arguments
		case "_meta":
			dst = &tf.meta
		}
		// Other members are built too, and dropped: building is what
		// rejects a number out of range, so both modes reject the same.
		v, err := p.value(depth + 1)
		if err != nil {
			return tf, err
		}
		if dst != nil {
			*dst = v
		}
		if more, err := p.next('}'); err != nil || !more {
			p.endMembers(base)
			return tf, err
		}
	}
}

// Keys of params that name the target of an operation.
var (
	nameKey      = ast.InternedTerm("name")
	argumentsKey = ast.InternedTerm("arguments")
	uriKey       = ast.InternedTerm("uri")
	metaKey      = ast.InternedTerm("_meta")

	metaVersionKey      = ast.StringTerm(MetaProtocolVersion)
	metaClientKey       = ast.StringTerm(MetaClientInfo)
	metaCapabilitiesKey = ast.StringTerm(MetaClientCapabilities)
)

// meta checks params._meta, already built, and reads the members of it
// that say which revision and client a request speaks for: lookups in the
// object, no second pass over the body.
func (p *parser) meta(m *Message, t *ast.Term, index int) {
	if t == nil || p.invalid != nil {
		return
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		p.fail(CodeInvalidParams, index, "params._meta must be an object")
		return
	}
	m.Meta = obj
	if obj.Len() == 0 {
		return
	}
	if v := obj.Get(metaVersionKey); v != nil {
		s, ok := v.Value.(ast.String)
		if !ok || s == "" {
			p.fail(CodeInvalidParams, index, "params._meta[\""+MetaProtocolVersion+"\"] must be a non-empty string")
			return
		}
		m.ProtocolVersion = string(s)
	}
	for _, f := range [...]struct {
		key *ast.Term
		dst *ast.Object
	}{{metaClientKey, &m.ClientInfo}, {metaCapabilitiesKey, &m.ClientCapabilities}} {
		v := obj.Get(f.key)
		if v == nil {
			continue
		}
		o, ok := v.Value.(ast.Object)
		if !ok {
			p.fail(CodeInvalidParams, index, fmt.Sprintf("params._meta[%q] must be an object", string(f.key.Value.(ast.String))))
			return
		}
		*f.dst = o
	}
}

// target checks the params a method requires and fills in the message's
// Tool, Prompt or Resource, pointing into the params already built.
func (p *parser) target(m *Message, tf *targetFields, index int) {
	switch m.Method {
	case "tools/call", "prompts/get":
		name, ok := nonEmptyString(tf.name)
		if !ok {
			p.fail(CodeInvalidParams, index, m.Method+": params.name must be a non-empty string")
			return
		}
		t := &p.named
		if p.namedUsed {
			t = new(Named)
		}
		p.namedUsed = true
		t.Name = name
		if args := tf.arguments; args != nil {
			obj, ok := args.Value.(ast.Object)
			if !ok {
				p.fail(CodeInvalidParams, index, m.Method+": params.arguments must be an object")
				return
			}
			t.Arguments = obj
		}
		if m.Method == "tools/call" {
			m.Tool = t
		} else {
			m.Prompt = t
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		uri, ok := nonEmptyString(tf.uri)
		if !ok {
			p.fail(CodeInvalidParams, index, m.Method+": params.uri must be a non-empty string")
			return
		}
		m.Resource = &Resource{URI: uri}
	}
}

// nonEmptyString returns t's value when it is a non-empty string.
func nonEmptyString(t *ast.Term) (string, bool) {
	if t == nil {
		return "", false
	}
	s, ok := t.Value.(ast.String)
	return string(s), ok && s != ""
}

// fail records a validation failure unless one was recorded before: the
// first failure is the one reported.
func (p *parser) fail(code, index int, why string) {
	if p.invalid != nil {
		return
	}
	prefix := "invalid request: "
	if code == CodeInvalidParams {
		prefix = "invalid params: "
	}
	if index >= 0 {
		prefix += fmt.Sprintf("batch element %d: ", index)
	}
	p.invalid = &Error{Code: code, Message: prefix + why}
}

// syntaxErr reports that the body is not JSON, at the current offset.
func (p *parser) syntaxErr(format string, args ...any) *Error {
	return &Error{
		Code:    CodeParseError,
		Message: fmt.Sprintf("parse error: "+format+" at offset %d", append(args, p.i)...),
	}
}

// tooDeep reports nesting beyond MaxDepth.
func (p *parser) tooDeep() *Error {
	return p.syntaxErr("JSON nested too deeply (more than %d levels)", MaxDepth)
}

// quoteChar formats c for an error message.
func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c >= 0x20 && c < 0x7f:
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("0x%02x", c)
}

// ws skips JSON whitespace.
func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// key reads a member name of a message or of its params, and the colon
// after it, leaving p.i at the start of the value. The returned bytes alias
// p.b or p.buf.
func (p *parser) key() ([]byte, error) {
	s, err := p.keyString()
	if err != nil {
		return nil, err
	}
	k := p.keyBytes(s)
	p.member(k, s, true)
	if err := p.colon(); err != nil {
		return nil, err
	}
	if p.i >= len(p.b) {
		return nil, p.syntaxErr("unexpected end of JSON input")
	}
	return k, nil
}

// open moves past the '{' or '[' at p.i, which opens a value at depth,
// and the whitespace after it. It reports whether closer follows at once
// (the value is empty), and moves past it then.
func (p *parser) open(depth int, closer byte) (empty bool, err error) {
	if depth > MaxDepth {
		return false, p.tooDeep()
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == closer {
		p.i++
		return true, nil
	}
	return false, nil
}

// next moves past what follows an object member or array element: ','
// and the whitespace after it, when it reports that another one follows,
// or closer ('}' or ']').
func (p *parser) next(closer byte) (more bool, err error) {
	p.ws()
	if p.i >= len(p.b) {
		return false, p.syntaxErr("unexpected end of JSON input")
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		p.ws()
		return true, nil
	case closer:
		p.i++
		return false, nil
	}
	after := "object key:value pair"
	if closer == ']' {
		after = "array element"
	}
	return false, p.syntaxErr("invalid character %s after %s", quoteChar(p.b[p.i]), after)
}

// keyString scans the string that opens an object member at p.i. A lone
// surrogate in a member name is left to member to refuse.
func (p *parser) keyString() (jsonString, error) {
	if p.i >= len(p.b) {
		return jsonString{}, p.syntaxErr("unexpected end of JSON input")
	}
	if p.b[p.i] != '"' {
		return jsonString{}, p.syntaxErr("invalid character %s looking for beginning of object key string", quoteChar(p.b[p.i]))
	}
	return p.scanLiteral()
}

// keyBytes returns the decoded member name s; it aliases p.b or p.buf.
func (p *parser) keyBytes(s jsonString) []byte {
	if s.escaped {
		p.buf = appendUnquoted(p.buf[:0], p.b[s.start:s.end])
		return p.buf
	}
	return p.b[s.start:s.end]
}

// mcpNames are the member names MCP gives a meaning to in a message or its
// params. A name that folds to one of them without being it (Method, ID,
// paramſ) is read as that member by case-insensitive decoders such as Go's
// encoding/json, and as another member, or ignored, by everyone else.
var mcpNames = [...]string{"jsonrpc", "id", "method", "params", "result", "error", "name", "arguments", "uri", "_meta"}

// member records k, the decoded name of a member of the object being read
// (scanned as s), and refuses a name that JSON readers could take for
// another: a lone surrogate (decoded as U+FFFD by some, kept by others), a
// control character (a trailing NUL was once dropped by one MCP SDK), and
// at message and params level (mcpLevel) a case variant of a name in
// mcpNames. endMembers then compares the object's names with each other.
func (p *parser) member(k []byte, s jsonString, mcpLevel bool) {
	start := len(p.names)
	ctl, toASCII := false, false
	p.names, ctl, toASCII = appendFolded(p.names, k)
	p.nameEnds = append(p.nameEnds, len(p.names))
	if p.invalid != nil {
		return
	}
	switch {
	case s.surrogate:
		p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("member name %q holds a lone surrogate escape", k))
	case ctl:
		p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("member name %q holds a control character", k))
	case toASCII:
		// ſ and K exist in case folding only to fold to s and k: a name
		// holding one is read as its ASCII twin by a case-insensitive
		// decoder (a Go tool's argument struct) even with no twin present.
		p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("member name %q holds a character that case-folds to ASCII", k))
	case mcpLevel:
		folded := p.names[start:]
		for _, n := range mcpNames {
			if string(folded) == n && string(k) != n {
				p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("member name %q is a case variant of %q", k, n))
				return
			}
		}
	}
}

// endMembers ends the object whose first member name is at nameEnds[base]:
// it refuses the object when two of its names are equal once folded (exact
// duplicates included: JSON readers disagree on which one wins) or when it
// has more than MaxMembers, and pops its names.
func (p *parser) endMembers(base int) {
	start := 0
	if base > 0 {
		start = p.nameEnds[base-1]
	}
	ends := p.nameEnds[base:]
	if p.invalid == nil {
		if len(ends) > MaxMembers {
			p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("an object has more than %d members", MaxMembers))
		} else if dup, ok := duplicateName(p.names, start, ends); ok {
			p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("an object has two members named %q (compared under Unicode case folding)", dup))
		}
	}
	p.names = p.names[:start]
	p.nameEnds = p.nameEnds[:base]
}

// smallObject is the number of members up to which duplicateName compares
// names pairwise instead of allocating a set.
const smallObject = 16

// duplicateName looks for two equal names among the folded names stored in
// names from start, ending at ends.
func duplicateName(names []byte, start int, ends []int) (string, bool) {
	if len(ends) < 2 {
		return "", false
	}
	name := func(i int) []byte {
		if i == 0 {
			return names[start:ends[0]]
		}
		return names[ends[i-1]:ends[i]]
	}
	if len(ends) <= smallObject {
		for i := range ends {
			for j := i + 1; j < len(ends); j++ {
				if string(name(i)) == string(name(j)) {
					return string(name(i)), true
				}
			}
		}
		return "", false
	}
	seen := make(map[string]struct{}, len(ends))
	for i := range ends {
		n := name(i)
		if _, ok := seen[string(n)]; ok {
			return string(n), true
		}
		seen[string(n)] = struct{}{}
	}
	return "", false
}

// appendFolded appends name (valid UTF-8) with every character replaced by
// one representative of its Unicode simple case folding orbit, so that two
// names fold to the same bytes exactly when Go's case-insensitive field
// matching, or any simple-folding reader, could take one for the other:
// Name and name, params and paramſ (U+017F), k and the Kelvin sign (U+212A).
// ASCII letters fold to lower case. It also reports whether name holds a
// control character (U+0000 to U+001F), and whether it holds a character
// beyond ASCII that folds to ASCII (ſ U+017F, K U+212A).
func appendFolded(dst, name []byte) (out []byte, ctl, toASCII bool) {
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20:
				ctl = true
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(name[i:])
		i += size
		f := r
		for g := unicode.SimpleFold(r); g != r; g = unicode.SimpleFold(g) {
			f = min(f, g)
		}
		if f < utf8.RuneSelf {
			toASCII = true
			if f >= 'A' && f <= 'Z' {
				f += 'a' - 'A'
			}
		}
		dst = utf8.AppendRune(dst, f)
	}
	return dst, ctl, toASCII
}

// colon moves past the ':' after an object key and the whitespace around it.
func (p *parser) colon() error {
	p.ws()
	if p.i >= len(p.b) {
		return p.syntaxErr("unexpected end of JSON input")
	}
	if p.b[p.i] != ':' {
		return p.syntaxErr("invalid character %s after object key", quoteChar(p.b[p.i]))
	}
	p.i++
	p.ws()
	return nil
}

// skip validates the value at p.i and moves past it without building
// anything. depth is the depth the value has if it is an array or object.
func (p *parser) skip(depth int) error {
	if p.i >= len(p.b) {
		return p.syntaxErr("unexpected end of JSON input")
	}
	switch c := p.b[p.i]; c {
	case '{':
		if empty, err := p.open(depth, '}'); empty || err != nil {
			return err
		}
		base := len(p.nameEnds)
		for {
			s, err := p.keyString()
			if err != nil {
				return err
			}
			p.member(p.keyBytes(s), s, false)
			if err := p.colon(); err != nil {
				return err
			}
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			if more, err := p.next('}'); err != nil || !more {
				p.endMembers(base)
				return err
			}
		}
	case '[':
		if empty, err := p.open(depth, ']'); empty || err != nil {
			return err
		}
		for {
			if err := p.skip(depth + 1); err != nil {
				return err
			}
			if more, err := p.next(']'); err != nil || !more {
				return err
			}
		}
	case '"':
		_, err := p.scanString()
		return err
	case 't':
		return p.literal("true")
	case 'f':
		return p.literal("false")
	case 'n':
		return p.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			return p.scanNumber()
		}
		return p.syntaxErr("invalid character %s looking for beginning of value", quoteChar(c))
	}
}

// value builds the value at p.i. depth is as for skip.
func (p *parser) value(depth int) (*ast.Term, error) {
	if p.i >= len(p.b) {
		return nil, p.syntaxErr("unexpected end of JSON input")
	}
	switch c := p.b[p.i]; c {
	case '{':
		obj, err := p.object(depth, false)
		if err != nil {
			return nil, err
		}
		return p.term(obj), nil
	case '[':
		arr, err := p.array(depth)
		if err != nil {
			return nil, err
		}
		return p.term(arr), nil
	case '"':
		s, err := p.scanString()
		if err != nil {
			return nil, err
		}
		return p.stringTerm(s), nil
	case 't':
		// Scalars are immutable, so shared interned terms are safe to hand out.
		return ast.InternedTerm(true), p.literal("true")
	case 'f':
		return ast.InternedTerm(false), p.literal("false")
	case 'n':
		return ast.InternedNullTerm, p.literal("null")
	default:
		if c == '-' || (c >= '0' && c <= '9') {
			start := p.i
			if err := p.scanNumber(); err != nil {
				return nil, err
			}
			return p.numberTerm(start, p.i)
		}
		return nil, p.syntaxErr("invalid character %s looking for beginning of value", quoteChar(c))
	}
}

// object builds the object at p.i (which is '{'). mcpLevel says it is a
// message's params, whose member names MCP defines in part (see member).
func (p *parser) object(depth int, mcpLevel bool) (ast.Object, error) {
	if empty, err := p.open(depth, '}'); err != nil {
		return nil, err
	} else if empty {
		// A fresh object, not ast.InternedEmptyObject: callers may extend it.
		return ast.NewObject(), nil
	}
	base := len(p.items)
	nameBase := len(p.nameEnds)
	for {
		s, err := p.keyString()
		if err != nil {
			return nil, err
		}
		p.member(p.keyBytes(s), s, mcpLevel)
		k := p.stringTerm(s)
		if err := p.colon(); err != nil {
			return nil, err
		}
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.items = append(p.items, [2]*ast.Term{k, v})
		more, err := p.next('}')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	p.endMembers(nameBase)
	// ast.NewObject reads the items but keeps no reference to the slice, so
	// the scratch stack can be reused at once. A duplicate name was refused
	// by endMembers; the object is built anyway, and discarded.
	obj := ast.NewObject(p.items[base:]...)
	clear(p.items[base:])
	p.items = p.items[:base]
	return obj, nil
}

// array builds the array at p.i (which is '[').
func (p *parser) array(depth int) (*ast.Array, error) {
	if empty, err := p.open(depth, ']'); err != nil {
		return nil, err
	} else if empty {
		return ast.NewArray(), nil
	}
	base := len(p.elems)
	for {
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.elems = append(p.elems, v)
		more, err := p.next(']')
		if err != nil {
			return nil, err
		}
		if !more {
			break
		}
	}
	// ast.NewArray keeps the slice it is given, so it gets its own.
	elems := make([]*ast.Term, len(p.elems)-base)
	copy(elems, p.elems[base:])
	clear(p.elems[base:])
	p.elems = p.elems[:base]
	return ast.NewArray(elems...), nil
}

// literal checks that the keyword lit is at p.i and moves past it.
func (p *parser) literal(lit string) error {
	for k := 0; k < len(lit); k++ {
		if p.i >= len(p.b) {
			return p.syntaxErr("unexpected end of JSON input")
		}
		if p.b[p.i] != lit[k] {
			return p.syntaxErr("invalid character %s in literal %s (expecting '%c')", quoteChar(p.b[p.i]), lit, lit[k])
		}
		p.i++
	}
	return nil
}

// scanNumber checks the number literal at p.i against the JSON grammar and
// moves past it. A literal longer than MaxNumber, or one that is not the
// shortest form of the double JavaScript reads from it (number.go), makes
// the body invalid.
func (p *parser) scanNumber() error {
	start := p.i
	if err := p.scanNumberGrammar(); err != nil {
		return err
	}
	switch lit := p.b[start:p.i]; {
	case len(lit) > MaxNumber:
		p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("a number is longer than %d bytes", MaxNumber))
	case !exactDouble(lit):
		p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("the number %s is not exactly a double: JavaScript and encoding/json read it as %s", lit, shortestForm(lit)))
	}
	return nil
}

// scanNumberGrammar moves past the number literal at p.i, checking it
// against the JSON grammar.
func (p *parser) scanNumberGrammar() error {
	b, i := p.b, p.i
	if b[i] == '-' {
		i++
	}
	digits := func(what string) error {
		if i >= len(b) {
			p.i = i
			return p.syntaxErr("unexpected end of JSON input")
		}
		if b[i] < '0' || b[i] > '9' {
			p.i = i
			return p.syntaxErr("invalid character %s in %s", quoteChar(b[i]), what)
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		return nil
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	default:
		if err := digits("numeric literal"); err != nil {
			return err
		}
	}
	if i < len(b) && b[i] == '.' {
		i++
		if err := digits("numeric literal"); err != nil {
			return err
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if err := digits("exponent of numeric literal"); err != nil {
			return err
		}
	}
	p.i = i
	return nil
}

// scanString checks the string value at p.i (which is '"') and moves past
// it, reporting what decoding its content will need. A lone surrogate
// escape is a syntax error: the string cannot be read as UTF-8, and readers
// disagree on what it becomes (U+FFFD in Go, a lone UTF-16 unit in
// JavaScript).
func (p *parser) scanString() (jsonString, error) {
	s, err := p.scanLiteral()
	if err == nil && s.surrogate {
		p.i = s.start - 1
		return s, p.syntaxErr("string holds a lone surrogate escape, which is not Unicode")
	}
	return s, err
}

// scanLiteral checks the string literal at p.i (which is '"') against the
// JSON grammar and UTF-8, and moves past it. A literal longer than
// MaxString makes the body invalid.
func (p *parser) scanLiteral() (jsonString, error) {
	s, err := p.scanLiteralBytes()
	if err == nil && s.end-s.start > MaxString {
		p.fail(CodeInvalidRequest, p.index, fmt.Sprintf("a string is longer than %d bytes", MaxString))
	}
	return s, err
}

// scanLiteralBytes is scanLiteral without the length limit.
func (p *parser) scanLiteralBytes() (jsonString, error) {
	b := p.b
	s := jsonString{start: p.i + 1}
	i := s.start
	for i < len(b) {
		c := b[i]
		switch {
		case c == '"':
			s.end = i
			p.i = i + 1
			return s, nil
		case c == '\\':
			s.escaped = true
			if i+1 >= len(b) {
				p.i = len(b)
				return s, p.syntaxErr("unexpected end of JSON input")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						p.i = len(b)
						return s, p.syntaxErr("unexpected end of JSON input")
					}
					if hexVal(b[k]) < 0 {
						p.i = k
						return s, p.syntaxErr("invalid character %s in \\u hexadecimal character escape", quoteChar(b[k]))
					}
				}
				r := hex4(b[i+2 : i+6])
				i += 6
				if utf16.IsSurrogate(r) {
					// Only a high surrogate followed at once by an escaped
					// low one is a character.
					if r < 0xdc00 && i+6 <= len(b) && b[i] == '\\' && b[i+1] == 'u' &&
						hexVal(b[i+2]) >= 0 && hexVal(b[i+3]) >= 0 && hexVal(b[i+4]) >= 0 && hexVal(b[i+5]) >= 0 {
						if lo := hex4(b[i+2 : i+6]); lo >= 0xdc00 && lo <= 0xdfff {
							i += 6
							continue
						}
					}
					s.surrogate = true
				}
			default:
				p.i = i + 1
				return s, p.syntaxErr("invalid character %s in string escape code", quoteChar(b[i+1]))
			}
		case c < 0x20:
			p.i = i
			return s, p.syntaxErr("invalid character %s in string literal", quoteChar(c))
		case c >= utf8.RuneSelf:
			s.nonASCII = true
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				p.i = i
				return s, p.syntaxErr("invalid UTF-8 in string")
			}
			i += size
		default:
			i++
		}
	}
	p.i = len(b)
	return s, p.syntaxErr("unexpected end of JSON input")
}

// hexVal is the value of a hex digit, or -1.
func hexVal(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

// hex4 decodes four hex digits already checked by scanString.
func hex4(b []byte) rune {
	return hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
}

// appendUnquoted appends the decoded content of a string literal that
// scanString accepted, the way encoding/json decodes it: invalid UTF-8 bytes
// and unpaired surrogate escapes each become U+FFFD.
func appendUnquoted(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			e := s[i+1]
			i += 2
			switch e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s[i : i+4])
				i += 4
				if utf16.IsSurrogate(r) {
					// A high surrogate followed by an escaped low one is one
					// character; anything else is replaced, and what follows
					// is decoded on its own.
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if d := utf16.DecodeRune(r, hex4(s[i+2:i+6])); d != utf8.RuneError {
							dst = utf8.AppendRune(dst, d)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// stringEquals reports whether the decoded content of s is want.
func (p *parser) stringEquals(s jsonString, want string) bool {
	if !s.escaped && !s.nonASCII {
		return string(p.b[s.start:s.end]) == want
	}
	p.buf = appendUnquoted(p.buf[:0], p.b[s.start:s.end])
	return string(p.buf) == want
}

// stringValue returns the decoded content of s.
func (p *parser) stringValue(s jsonString) string {
	return string(p.stringTerm(s).Value.(ast.String))
}

// stringTerm builds the term for the string s, interned when common.
func (p *parser) stringTerm(s jsonString) *ast.Term {
	raw := p.b[s.start:s.end]
	if !s.escaped && (!s.nonASCII || utf8.Valid(raw)) {
		if t := interned(raw); t != nil {
			return t
		}
		return p.term(ast.String(p.str(s.start, s.end)))
	}
	p.buf = appendUnquoted(p.buf[:0], raw)
	if t := interned(p.buf); t != nil {
		return t
	}
	return p.term(ast.String(string(p.buf)))
}

// numberTerm builds the term for the number literal at b[start:end], kept
// exactly as written. A number whose exponent OPA cannot evaluate in bounded
// time (like 1e99999999) is rejected, as OPA's own JSON decoding does.
func (p *parser) numberTerm(start, end int) (*ast.Term, error) {
	if end-start <= 3 {
		if t := ast.InternedIntNumberTermFromString(string(p.b[start:end])); t != nil {
			return t, nil
		}
	}
	n, err := ast.NumberChecked(p.str(start, end))
	if err != nil {
		p.i = start
		return nil, p.syntaxErr("number out of range")
	}
	return p.term(n), nil
}

// str returns b[start:end] as a string, from the one copy of the body.
func (p *parser) str(start, end int) string {
	if !p.sSet {
		p.s, p.sSet = string(p.b), true
	}
	return p.s[start:end]
}

// termBlock is how many terms are allocated at once, once the parser's
// inline ones are used up.
const termBlock = 16

// term returns a new term holding v.
func (p *parser) term(v ast.Value) *ast.Term {
	if len(p.slab) == 0 {
		p.slab = make([]ast.Term, termBlock)
	}
	t := &p.slab[0]
	p.slab = p.slab[1:]
	t.Value = v
	return t
}

// maxInterned is the longest string looked up among the interned terms.
const maxInterned = 32

// interned returns the shared term for a common string, or nil.
func interned(s []byte) *ast.Term {
	if len(s) > maxInterned {
		return nil
	}
	return internedStrings[string(s)]
}

// internedStrings holds terms for the keys and values MCP messages repeat,
// so parsing them allocates nothing. It is filled once and only read after.
var internedStrings = func() map[string]*ast.Term {
	words := []string{
		// JSON-RPC
		"jsonrpc", "2.0", "id", "method", "params", "result", "error", "code", "message", "data",
		// MCP methods
		"initialize", "ping", "tools/list", "tools/call", "resources/list", "resources/templates/list",
		"resources/read", "resources/subscribe", "resources/unsubscribe", "prompts/list", "prompts/get",
		"completion/complete", "logging/setLevel", "tasks/get", "tasks/result", "tasks/cancel", "tasks/list",
		"server/discover", "subscriptions/listen",
		"notifications/initialized", "notifications/cancelled", "notifications/progress",
		"notifications/roots/list_changed", "notifications/tasks/status", "notifications/message",
		// params members
		"name", "arguments", "uri", "_meta", "progressToken", "cursor", "task", "taskId", "ttl",
		"protocolVersion", "capabilities", "clientInfo", "version", "title", "roots", "listChanged",
		"sampling", "elicitation", "experimental", "level", "ref", "argument", "value", "type",
		"requestId", "reason", "progress", "total", "action", "content", "text", "role", "model",
		"mimeType", "path", "query", "url", "ref/prompt", "ref/resource",
		// protocol versions and log levels
		"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28",
		"debug", "info", "notice", "warning", "critical", "alert", "emergency",
	}
	m := make(map[string]*ast.Term, len(words))
	for _, w := range words {
		m[w] = ast.InternedTerm(w)
	}
	return m
}()
