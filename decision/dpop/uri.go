package dpop

import (
	"errors"
	"strings"
)

// NormalizeURI returns s without its query and fragment, normalised as
// RFC 3986 §6.2.2 and §6.2.3 say (RFC 9449 §4.3 item 9): scheme and host
// in lower case, the scheme's default port dropped, an empty path made
// "/", percent-encodings of unreserved characters decoded, other
// percent-encodings in upper case, and a byte a path may not hold as it is
// percent-encoded. Dot segments are left as they are: a server that
// resolves them compares its own URI, and a proof naming another spelling
// is refused, not guessed at. Only http and https URIs with a host are
// accepted; one with userinfo is refused.
func NormalizeURI(s string) (string, error) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", errors.New("not an absolute http or https URI")
	}
	scheme = strings.ToLower(scheme)
	var defaultPort string
	switch scheme {
	case "http":
		defaultPort = "80"
	case "https":
		defaultPort = "443"
	default:
		return "", errors.New("the scheme is not http or https")
	}
	authority, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if strings.IndexByte(authority, '@') >= 0 {
		return "", errors.New("the URI has userinfo")
	}
	host, port := authority, ""
	if i := strings.LastIndexByte(authority, ':'); i >= 0 && !strings.Contains(authority[i:], "]") {
		host, port = authority[:i], authority[i+1:]
		for j := 0; j < len(port); j++ {
			if port[j] < '0' || port[j] > '9' {
				return "", errors.New("the port is not a number")
			}
		}
		port = strings.TrimLeft(port, "0")
		if port == "" && len(authority[i+1:]) > 0 {
			port = "0"
		}
	}
	if host == "" {
		return "", errors.New("the URI has no host")
	}
	for i := 0; i < len(host); i++ {
		if c := host[i]; c <= ' ' || c == 0x7f || c == '%' {
			return "", errors.New("the host holds a character a host name cannot")
		}
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(strings.ToLower(host))
	if port != "" && port != defaultPort {
		b.WriteByte(':')
		b.WriteString(port)
	}
	if path == "" {
		b.WriteByte('/')
		return b.String(), nil
	}
	for i := 0; i < len(path); i++ {
		c := path[i]
		switch {
		case c == '%':
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return "", errors.New("the path has a malformed percent-encoding")
			}
			d := unhex(path[i+1])<<4 | unhex(path[i+2])
			if unreserved(d) {
				b.WriteByte(d)
			} else {
				writeEscaped(&b, d)
			}
			i += 2
		case unreserved(c) || strings.IndexByte("/!$&'()*+,;=:@", c) >= 0:
			b.WriteByte(c)
		default:
			writeEscaped(&b, c)
		}
	}
	return b.String(), nil
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func writeEscaped(b *strings.Builder, c byte) {
	const hex = "0123456789ABCDEF"
	b.WriteByte('%')
	b.WriteByte(hex[c>>4])
	b.WriteByte(hex[c&15])
}
