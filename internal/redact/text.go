package redact

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
)

// String returns free text (a denial's reason, a session id, a log line's
// message or value, an error) with every credential-shaped part erased: a
// JWT or an API key becomes Redacted; so do the credentials after "Basic "
// (when they decode to user:password) and after "Bearer " or "DPoP "; a
// URL loses its user info and the values of its credential parameters
// (see URL), a query or name=value pair those of its credential
// parameters (see Query). Text without any of these is returned as it is,
// without allocating: the engine runs this on every denial's reason.
func String(s string) string {
	if !mayHold(s) {
		return s
	}
	out := shapes(s)
	out = schemes(out)
	return words(out)
}

// mayHold reports whether s could hold anything String erases: the cheap
// test that keeps ordinary text from the scans.
// It is one pass over s, comparing only at the few bytes that can start a
// mark: a JWT's "eyJ", an API key's prefix, '?', '=', '@', and the schemes'
// names ("basic ", "bearer ", "dpop " in any case).
func mayHold(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '?', '=', '@':
			return true
		case 'e':
			if strings.HasPrefix(s[i:], "eyJ") {
				return true
			}
		case APIKeyPrefix[0]:
			if strings.HasPrefix(s[i:], APIKeyPrefix) {
				return true
			}
		case 'b', 'B', 'd', 'D':
			if _, n := schemeAt(s, i); n > 0 {
				return true
			}
		}
	}
	return false
}

// textSchemes are the schemes whose credentials String erases in free
// text, with the shortest run that counts as credentials after the
// scheme's name (0: Basic's credentials are recognised by decoding).
var textSchemes = []struct {
	name string
	min  int
}{{"basic ", 0}, {"bearer ", 16}, {"dpop ", 16}}

// schemeAt reports which textSchemes entry starts s at i as a word (not
// inside a longer word), and the length of its name.
func schemeAt(s string, i int) (scheme, n int) {
	if i > 0 && isWordByte(s[i-1]) {
		return 0, 0
	}
	for k, t := range textSchemes {
		if len(s)-i >= len(t.name) && strings.EqualFold(s[i:i+len(t.name)], t.name) {
			return k, len(t.name)
		}
	}
	return 0, 0
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// shapes replaces every JWT and API key in s by Redacted.
func shapes(s string) string {
	var b strings.Builder
	rest := s
	for {
		js, je, jok := jwsAt(rest)
		ks := strings.Index(rest, APIKeyPrefix)
		if !jok && ks < 0 {
			break
		}
		start, end := js, je
		if ks >= 0 && (!jok || ks < js) {
			start, end = ks, ks+len(APIKeyPrefix)+base64urlRun(rest[ks+len(APIKeyPrefix):])
		}
		b.WriteString(rest[:start])
		b.WriteString(Redacted)
		rest = rest[end:]
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(rest)
	return b.String()
}

// token68Run returns the length of the token68 (RFC 9110) that starts s:
// the form of an authorization scheme's credentials.
func token68Run(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if !(isBase64URL(c) || c == '.' || c == '~' || c == '+' || c == '/') {
			break
		}
		i++
	}
	for i < len(s) && s[i] == '=' {
		i++
	}
	return i
}

// schemes erases the credentials that follow "Basic ", "Bearer " and
// "DPoP " in s.
func schemes(s string) string {
	var b strings.Builder
	done := 0
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c != 'b' && c != 'd' {
			continue
		}
		k, n := schemeAt(s, i)
		if n == 0 {
			continue
		}
		from := i + n
		run := token68Run(s[from:])
		cred := s[from : from+run]
		if run == 0 || cred == Redacted {
			continue
		}
		if textSchemes[k].min == 0 {
			if !basicCredentials(cred) {
				continue
			}
		} else if run < textSchemes[k].min {
			continue
		}
		b.WriteString(s[done:from])
		b.WriteString(Redacted)
		done = from + run
		i = done - 1
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// basicCredentials reports whether cred is Basic credentials: base64 of
// "user:password".
func basicCredentials(cred string) bool {
	raw, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		raw, err = base64.RawStdEncoding.DecodeString(cred)
	}
	return err == nil && strings.IndexByte(string(raw), ':') >= 0
}

// isTextDelim ends a word of free text: URLs and queries are judged one
// word at a time.
func isTextDelim(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '"', '\'', '`', '<', '>', '(', ')', '[', ']', '{', '}', ',', '\\':
		return true
	}
	return false
}

// words erases, word by word, the credentials of URLs (user info, query
// and fragment parameters), of queries after a '?', and of name=value
// pairs.
func words(s string) string {
	var b strings.Builder
	done := 0
	for i := 0; i < len(s); {
		if isTextDelim(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && !isTextDelim(s[j]) {
			j++
		}
		w := s[i:j]
		var r string
		switch {
		case strings.Contains(w, "://") || strings.IndexByte(w, '?') >= 0:
			// A URL, or a path with a query: URL judges the query and the
			// fragment apart.
			r = URL(w)
		case strings.IndexByte(w, '=') >= 0:
			r = Query(w)
		default:
			r = w
		}
		if r != w {
			b.WriteString(s[done:i])
			b.WriteString(r)
			done = j
		}
		i = j
	}
	if done == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}

// LogAttr is a slog.HandlerOptions.ReplaceAttr that passes every service
// log line through String: its message, every string value, and every
// error or other value whose text holds a credential (which is then logged
// as that text, erased). Keys are not judged by name: a log line's keys
// are mcpauthz's own ("code" is a denial's code, not an OAuth code).
func LogAttr(_ []string, a slog.Attr) slog.Attr {
	switch a.Value.Kind() {
	case slog.KindString:
		if s := a.Value.String(); mayHold(s) {
			if r := String(s); r != s {
				a.Value = slog.StringValue(r)
			}
		}
	case slog.KindAny:
		var s string
		switch v := a.Value.Any().(type) {
		case nil:
			return a
		case error:
			s = v.Error()
		case fmt.Stringer:
			s = v.String()
		default:
			s = fmt.Sprint(v)
		}
		if r := String(s); r != s {
			a.Value = slog.StringValue(r)
		}
	}
	return a
}
