package extauthz

import (
	"errors"
	"fmt"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
)

// This file reads a CheckRequest and writes a CheckResponse in protobuf's
// wire format directly, for the server codec (codec.go). The generated
// types decode every header into a map entry of two fresh strings and the
// request into a tree of a dozen messages, and encode the response through
// protobuf's reflection; on this path, which every MCP request takes, that
// cost half as much CPU as the decision itself. Here the request is copied once
// into a string, every string the engine keeps is a substring of it (the
// body and metadata are copied apart, being bytes), and only the fields
// the adapter reads are decoded: RequestFromCheck's fields, to the letter
// (TestWireMatchesGenerated and FuzzDecodeCheck hold the two equal).

// Field numbers of envoy.service.auth.v3 and envoy.config.core.v3 messages.
const (
	fCheckAttributes = 1 // CheckRequest.attributes

	fAttrSource            = 1  // AttributeContext.source
	fAttrRequest           = 4  // AttributeContext.request
	fAttrContextExtensions = 10 // AttributeContext.context_extensions
	fAttrMetadataContext   = 11 // AttributeContext.metadata_context

	fPeerAddress     = 1 // AttributeContext.Peer.address
	fPeerPrincipal   = 4 // AttributeContext.Peer.principal
	fPeerCertificate = 5 // AttributeContext.Peer.certificate

	fAddressSocket   = 1 // Address.socket_address (oneof address)
	fAddressPipe     = 2 // Address.pipe
	fAddressInternal = 3 // Address.envoy_internal_address

	fSocketAddress = 2 // SocketAddress.address
	fSocketPort    = 3 // SocketAddress.port_value (oneof port_specifier)
	fSocketNamed   = 4 // SocketAddress.named_port

	fRequestHTTP = 2 // AttributeContext.Request.http

	fHTTPMethod    = 2  // HttpRequest.method
	fHTTPHeaders   = 3  // HttpRequest.headers
	fHTTPPath      = 4  // HttpRequest.path
	fHTTPHost      = 5  // HttpRequest.host
	fHTTPScheme    = 6  // HttpRequest.scheme
	fHTTPBody      = 11 // HttpRequest.body
	fHTTPRawBody   = 12 // HttpRequest.raw_body
	fHTTPHeaderMap = 13 // HttpRequest.header_map (encode_raw_headers)

	fHeaderMapHeaders = 1 // HeaderMap.headers

	fMapKey   = 1 // key of a map entry
	fMapValue = 2 // value of a map entry
)

// errMalformed is returned for bytes that are not a CheckRequest.
var errMalformed = errors.New("malformed CheckRequest")

// wireRequest is a CheckRequest decoded for the engine: the request, and
// the raw metadata_context messages, which only the adapter's options
// give a meaning to (see applyMetadata).
type wireRequest struct {
	req      decision.Request
	metadata [][]byte // each occurrence of attributes.metadata_context
}

// field is one field of a message being read.
type field struct {
	num protowire.Number
	typ protowire.Type
	v   uint64 // a varint's value
	off int    // where a length-delimited value starts in the message buffer
	n   int    // and its length
}

// fields iterates over the fields of b[pos:end].
type fields struct {
	b        []byte
	pos, end int
	err      error
}

func (it *fields) next(f *field) bool {
	if it.pos >= it.end || it.err != nil {
		return false
	}
	b := it.b[it.pos:it.end]
	num, typ, n := protowire.ConsumeTag(b)
	if n < 0 {
		it.fail()
		return false
	}
	*f = field{num: num, typ: typ}
	switch typ {
	case protowire.VarintType:
		v, m := protowire.ConsumeVarint(b[n:])
		if m < 0 {
			it.fail()
			return false
		}
		f.v = v
		n += m
	case protowire.BytesType:
		v, m := protowire.ConsumeBytes(b[n:])
		if m < 0 {
			it.fail()
			return false
		}
		f.off, f.n = it.pos+n+m-len(v), len(v)
		n += m
	default:
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			it.fail()
			return false
		}
		n += m
	}
	it.pos += n
	return true
}

// fail records that the field at it.pos cannot be read.
func (it *fields) fail() {
	it.err = fmt.Errorf("%w: bad field at byte %d", errMalformed, it.pos)
}

// sub iterates over the message that f holds.
func (it *fields) sub(f *field) fields {
	return fields{b: it.b, pos: f.off, end: f.off + f.n}
}

// wireDecoder decodes one CheckRequest. b is the message, which may be
// gRPC's buffer and is not kept; s is a copy of it as one string, so that
// every string field is a substring of it instead of an allocation.
type wireDecoder struct {
	b []byte
	s string
	w *wireRequest
	// The fields RequestFromCheck reads through getters, kept until the end
	// because a later occurrence of a field replaces an earlier one.
	body, rawBody field
	source        peer
	headerMaps    []field // each occurrence of http.header_map, in order
}

// peer is what the adapter reads of attributes.source.
type peer struct {
	socket    bool // address holds a socket_address
	host      string
	port      uint32
	principal string
	// certificate is the URL-encoded PEM of the peer's certificate
	// (include_peer_certificate).
	certificate string
}

func (d *wireDecoder) str(f *field) string { return d.s[f.off : f.off+f.n] }

// decodeCheck decodes a CheckRequest into w. Nothing in w refers to b.
func decodeCheck(b []byte, w *wireRequest) error {
	d := wireDecoder{b: b, s: string(b), w: w}
	it := fields{b: b, end: len(b)}
	var f field
	for it.next(&f) {
		if f.num == fCheckAttributes && f.typ == protowire.BytesType {
			if err := d.attributes(it.sub(&f)); err != nil {
				return err
			}
		}
	}
	if it.err != nil {
		return it.err
	}
	return d.finish()
}

func (d *wireDecoder) attributes(it fields) error {
	var f field
	for it.next(&f) {
		if f.typ != protowire.BytesType {
			continue
		}
		var err error
		switch f.num {
		case fAttrSource:
			err = d.peer(it.sub(&f), &d.source)
		case fAttrRequest:
			err = d.request(it.sub(&f))
		case fAttrContextExtensions:
			if d.w.req.Context == nil {
				d.w.req.Context = make(map[string]string, 4)
			}
			err = d.mapEntry(it.sub(&f), d.w.req.Context)
		case fAttrMetadataContext:
			d.w.metadata = append(d.w.metadata, []byte(d.str(&f)))
		}
		if err != nil {
			return err
		}
	}
	return it.err
}

func (d *wireDecoder) peer(it fields, p *peer) error {
	var f field
	for it.next(&f) {
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case fPeerAddress:
			if err := d.address(it.sub(&f), p); err != nil {
				return err
			}
		case fPeerPrincipal:
			p.principal = d.str(&f)
		case fPeerCertificate:
			p.certificate = d.str(&f)
		}
	}
	return it.err
}

func (d *wireDecoder) address(it fields, p *peer) error {
	var f field
	for it.next(&f) {
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case fAddressSocket:
			if !p.socket {
				// The oneof switches to socket_address: a fresh message.
				p.socket, p.host, p.port = true, "", 0
			}
			if err := d.socketAddress(it.sub(&f), p); err != nil {
				return err
			}
		case fAddressPipe, fAddressInternal:
			sub := it.sub(&f)
			if err := skipMessage(&sub); err != nil {
				return err
			}
			p.socket = false
		}
	}
	return it.err
}

func (d *wireDecoder) socketAddress(it fields, p *peer) error {
	var f field
	for it.next(&f) {
		switch {
		case f.num == fSocketAddress && f.typ == protowire.BytesType:
			p.host = d.str(&f)
		case f.num == fSocketPort && f.typ == protowire.VarintType:
			p.port = uint32(f.v)
		case f.num == fSocketNamed && f.typ == protowire.BytesType:
			// The port oneof switches to named_port: port_value reads 0.
			p.port = 0
		}
	}
	return it.err
}

func (d *wireDecoder) request(it fields) error {
	var f field
	for it.next(&f) {
		if f.num == fRequestHTTP && f.typ == protowire.BytesType {
			if err := d.http(it.sub(&f)); err != nil {
				return err
			}
		}
	}
	return it.err
}

func (d *wireDecoder) http(it fields) error {
	r := &d.w.req
	var f field
	if r.Headers == nil {
		// Sized to the headers, counted first: a map grown entry by entry
		// allocates and rehashes on the way.
		n, count := 0, it
		for count.next(&f) {
			if f.num == fHTTPHeaders && f.typ == protowire.BytesType {
				n++
			}
		}
		if n > 0 {
			r.Headers = make(map[string]string, n)
		}
	}
	for it.next(&f) {
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case fHTTPMethod:
			r.Method = d.str(&f)
		case fHTTPHeaders:
			if r.Headers == nil {
				r.Headers = make(map[string]string)
			}
			if err := d.mapEntry(it.sub(&f), r.Headers); err != nil {
				return err
			}
		case fHTTPPath:
			r.Path = d.str(&f)
		case fHTTPHost:
			r.Host = d.str(&f)
		case fHTTPScheme:
			r.Scheme = d.str(&f)
		case fHTTPBody:
			d.body = f
		case fHTTPRawBody:
			d.rawBody = f
		case fHTTPHeaderMap:
			d.headerMaps = append(d.headerMaps, f)
		}
	}
	return it.err
}

// mapEntry adds one entry of a map<string, string> to m; a later entry
// with the same key replaces an earlier one, as protobuf decodes maps.
func (d *wireDecoder) mapEntry(it fields, m map[string]string) error {
	key, val, _, err := d.strings3(it)
	if err != nil {
		return err
	}
	m[key] = val
	return nil
}

// strings3 reads the string (or bytes) fields 1, 2 and 3 of a message: a
// map entry's key and value, a HeaderValue's key, value and raw_value.
func (d *wireDecoder) strings3(it fields) (s1, s2, s3 string, err error) {
	var f field
	for it.next(&f) {
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case 1:
			s1 = d.str(&f)
		case 2:
			s2 = d.str(&f)
		case 3:
			s3 = d.str(&f)
		}
	}
	return s1, s2, s3, it.err
}

// skipMessage checks that a message the adapter does not read is well formed.
func skipMessage(it *fields) error {
	var f field
	for it.next(&f) {
	}
	return it.err
}

// finish applies what RequestFromCheck derives from the fields.
func (d *wireDecoder) finish() error {
	r := &d.w.req
	if len(r.Headers) == 0 && len(d.headerMaps) > 0 {
		if err := d.headerMap(); err != nil {
			return err
		}
	}
	if d.rawBody.n > 0 {
		r.Body = []byte(d.str(&d.rawBody))
	} else if d.body.n > 0 {
		r.Body = []byte(d.str(&d.body))
	}
	fromHeaders(r)
	if p := &d.source; p.socket || p.principal != "" {
		if p.socket {
			r.SourceAddress = hostPort(p.host, p.port)
		}
		r.SourcePrincipal = p.principal
	}
	// Only the source's certificate: the destination's is Envoy's own.
	r.SourceCertificate = d.source.certificate
	return nil
}

// headerMap reads http.header_map, which Envoy sends instead of the
// headers map with encode_raw_headers, as headersFromMap does.
func (d *wireDecoder) headerMap() error {
	hs := make(map[string]string)
	var f field
	for _, hm := range d.headerMaps {
		it := fields{b: d.b, pos: hm.off, end: hm.off + hm.n}
		for it.next(&f) {
			if f.num != fHeaderMapHeaders || f.typ != protowire.BytesType {
				continue
			}
			key, value, raw, err := d.strings3(it.sub(&f))
			if err != nil {
				return err
			}
			addHeader(hs, key, value, raw)
		}
		if it.err != nil {
			return it.err
		}
	}
	d.w.req.Headers = hs
	return nil
}

// applyMetadata reads the metadata_context of a wire-decoded request as
// RequestFromCheck reads it. Envoy sends metadata only when a filter left
// some, so the generated types are used for it: it is rare and nested.
func (w *wireRequest) applyMetadata(opts *Options) error {
	var fm map[string]*structpb.Struct
	if len(w.metadata) > 0 {
		var md corev3.Metadata
		for _, b := range w.metadata {
			if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(b, &md); err != nil {
				return fmt.Errorf("metadata_context: %w", err)
			}
		}
		fm = md.GetFilterMetadata()
	}
	applyFilterMetadata(&w.req, fm, opts)
	return nil
}

// Field numbers of the response messages.
const (
	fRespStatus   = 1 // CheckResponse.status (google.rpc.Status)
	fRespDenied   = 2 // CheckResponse.denied_response
	fRespOK       = 3 // CheckResponse.ok_response
	fRespMetadata = 4 // CheckResponse.dynamic_metadata

	fStatusCode    = 1 // google.rpc.Status.code
	fStatusMessage = 2 // google.rpc.Status.message

	fOKHeaders          = 2 // OkHttpResponse.headers
	fOKHeadersToRemove  = 5 // OkHttpResponse.headers_to_remove
	fOKResponseHeaders  = 6 // OkHttpResponse.response_headers_to_add
	fOKQueryToRemove    = 8 // OkHttpResponse.query_parameters_to_remove
	fDeniedStatus       = 1 // DeniedHttpResponse.status (envoy.type.v3.HttpStatus)
	fDeniedHeaders      = 2 // DeniedHttpResponse.headers
	fDeniedBody         = 3 // DeniedHttpResponse.body
	fHTTPStatusCode     = 1 // HttpStatus.code
	fOptionHeader       = 1 // HeaderValueOption.header
	fOptionAppendAction = 3 // HeaderValueOption.append_action
	fHeaderKey          = 1 // HeaderValue.key
	fHeaderValue        = 2 // HeaderValue.value
	fStructFields       = 1 // google.protobuf.Struct.fields
	fValueString        = 3 // google.protobuf.Value.string_value
)

// Append actions of response headers, as ResponseFromDecision sets them.
var (
	overwrite = uint64(corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
	appendAdd = uint64(corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD)
)

// appendCheckResponse appends the CheckResponse that ResponseFromDecision
// builds for d, in protobuf's wire format. Sizes are computed before each
// nested message is written, so the response is written once, in place.
func appendCheckResponse(b []byte, d *decision.Decision) []byte {
	if d.Allow {
		// status {} : code OK is the default, so the message is empty.
		b = protowire.AppendTag(b, fRespStatus, protowire.BytesType)
		b = protowire.AppendVarint(b, 0)
		b = protowire.AppendTag(b, fRespOK, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeOK(d)))
		b = appendHeaderOptions(b, fOKHeaders, d.UpstreamHeaders, overwrite)
		b = appendStrings(b, fOKHeadersToRemove, d.RemoveHeaders)
		b = appendHeaderOptions(b, fOKResponseHeaders, d.ResponseHeaders, appendAdd)
		b = appendStrings(b, fOKQueryToRemove, d.RemoveQueryParams)
	} else {
		code := uint64(grpcCode(d))
		b = protowire.AppendTag(b, fRespStatus, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeVarintField(fStatusCode, code)+sizeString(fStatusMessage, d.Reason)))
		b = appendVarintField(b, fStatusCode, code)
		b = appendString(b, fStatusMessage, d.Reason)
		b = protowire.AppendTag(b, fRespDenied, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeDenied(d)))
		b = protowire.AppendTag(b, fDeniedStatus, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeVarintField(fHTTPStatusCode, uint64(d.Status))))
		b = appendVarintField(b, fHTTPStatusCode, uint64(d.Status))
		b = appendHeaderOptions(b, fDeniedHeaders, d.ResponseHeaders, overwrite)
		b = appendBytesField(b, fDeniedBody, d.Body)
	}
	b = protowire.AppendTag(b, fRespMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeMetadata(d)))
	b = appendMetadataEntry(b, "decision_id", d.ID)
	b = appendMetadataEntry(b, "method", d.Method)
	b = appendMetadataEntry(b, "tool", d.Tool)
	b = appendMetadataEntry(b, "subject", d.Subject)
	b = appendMetadataEntry(b, "revision", d.Revision)
	b = appendMetadataEntry(b, "code", d.Code)
	for _, e := range d.RateLimit {
		b = appendRateLimitEntry(b, e)
	}
	return b
}

func sizeCheckResponse(d *decision.Decision) int {
	n := protowire.SizeTag(fRespStatus)
	if d.Allow {
		n += protowire.SizeBytes(0) + sizeMessage(fRespOK, sizeOK(d))
	} else {
		n += protowire.SizeBytes(sizeVarintField(fStatusCode, uint64(grpcCode(d))) + sizeString(fStatusMessage, d.Reason))
		n += sizeMessage(fRespDenied, sizeDenied(d))
	}
	return n + sizeMessage(fRespMetadata, sizeMetadata(d))
}

func sizeOK(d *decision.Decision) int {
	return sizeHeaderOptions(fOKHeaders, d.UpstreamHeaders, overwrite) + sizeStrings(fOKHeadersToRemove, d.RemoveHeaders) +
		sizeHeaderOptions(fOKResponseHeaders, d.ResponseHeaders, appendAdd) + sizeStrings(fOKQueryToRemove, d.RemoveQueryParams)
}

func sizeDenied(d *decision.Decision) int {
	return sizeMessage(fDeniedStatus, sizeVarintField(fHTTPStatusCode, uint64(d.Status))) +
		sizeHeaderOptions(fDeniedHeaders, d.ResponseHeaders, overwrite) + sizeBytesField(fDeniedBody, d.Body)
}

// sizeMessage is the size of a nested message field of n bytes.
func sizeMessage(num protowire.Number, n int) int {
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

// proto3 leaves out fields that hold their default value.
func sizeString(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return sizeMessage(num, len(s))
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func sizeBytesField(num protowire.Number, v []byte) int {
	if len(v) == 0 {
		return 0
	}
	return sizeMessage(num, len(v))
}

func appendBytesField(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func sizeVarintField(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendVarintField(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

// Repeated strings are written even when empty: only singular fields
// have a default to leave out.
func sizeStrings(num protowire.Number, ss []string) int {
	n := 0
	for _, s := range ss {
		n += sizeMessage(num, len(s))
	}
	return n
}

func appendStrings(b []byte, num protowire.Number, ss []string) []byte {
	for _, s := range ss {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	return b
}

// sizeHeaderOption is the size of one HeaderValueOption message.
func sizeHeaderOption(h decision.Header, action uint64) int {
	return sizeMessage(fOptionHeader, sizeString(fHeaderKey, h.Name)+sizeString(fHeaderValue, h.Value)) +
		sizeVarintField(fOptionAppendAction, action)
}

func sizeHeaderOptions(num protowire.Number, hs []decision.Header, action uint64) int {
	n := 0
	for _, h := range hs {
		n += sizeMessage(num, sizeHeaderOption(h, action))
	}
	return n
}

func appendHeaderOptions(b []byte, num protowire.Number, hs []decision.Header, action uint64) []byte {
	for _, h := range hs {
		b = protowire.AppendTag(b, num, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeHeaderOption(h, action)))
		b = protowire.AppendTag(b, fOptionHeader, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizeString(fHeaderKey, h.Name)+sizeString(fHeaderValue, h.Value)))
		b = appendString(b, fHeaderKey, h.Name)
		b = appendString(b, fHeaderValue, h.Value)
		b = appendVarintField(b, fOptionAppendAction, action)
	}
	return b
}

// The dynamic metadata is a Struct of six string Values, and one more per
// rate_limit entry. A Value's kind is a oneof, written even when the
// string is empty; a map entry's key and value are written always.
func sizeValue(s string) int { return sizeMessage(fValueString, len(s)) }

func sizeEntry(key, s string) int {
	return sizeEntryOfKeyLen(len(key), s)
}

func sizeEntryOfKeyLen(keyLen int, s string) int {
	return sizeMessage(fMapKey, keyLen) + sizeMessage(fMapValue, sizeValue(s))
}

// sizeRateLimitEntry is the size of the map entry rate_limit.<name>.
func sizeRateLimitEntry(e decision.RateLimitEntry) int {
	return sizeEntryOfKeyLen(len(decision.RateLimitKeyPrefix)+len(e.Name), e.Value)
}

func sizeMetadata(d *decision.Decision) int {
	return sizeMessage(fStructFields, sizeEntry("decision_id", d.ID)) +
		sizeMessage(fStructFields, sizeEntry("method", d.Method)) +
		sizeMessage(fStructFields, sizeEntry("tool", d.Tool)) +
		sizeMessage(fStructFields, sizeEntry("subject", d.Subject)) +
		sizeMessage(fStructFields, sizeEntry("revision", d.Revision)) +
		sizeMessage(fStructFields, sizeEntry("code", d.Code)) +
		sizeRateLimit(d.RateLimit)
}

func sizeRateLimit(rl []decision.RateLimitEntry) int {
	n := 0
	for _, e := range rl {
		n += sizeMessage(fStructFields, sizeRateLimitEntry(e))
	}
	return n
}

func appendMetadataEntry(b []byte, key, s string) []byte {
	return appendEntry(b, "", key, s)
}

// appendRateLimitEntry writes the map entry rate_limit.<name>.
func appendRateLimitEntry(b []byte, e decision.RateLimitEntry) []byte {
	return appendEntry(b, decision.RateLimitKeyPrefix, e.Name, e.Value)
}

// appendEntry writes the Struct map entry prefix+key: s, the key in two
// pieces so that no key string is built.
func appendEntry(b []byte, prefix, key, s string) []byte {
	b = protowire.AppendTag(b, fStructFields, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeEntryOfKeyLen(len(prefix)+len(key), s)))
	b = protowire.AppendTag(b, fMapKey, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(prefix)+len(key)))
	b = append(b, prefix...)
	b = append(b, key...)
	b = protowire.AppendTag(b, fMapValue, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizeValue(s)))
	b = protowire.AppendTag(b, fValueString, protowire.BytesType)
	return protowire.AppendString(b, s)
}
