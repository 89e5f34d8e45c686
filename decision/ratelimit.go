package decision

import (
	"errors"
	"fmt"
	"sort"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// RateLimitEntry is one member of a decision's rate_limit: a descriptor
// entry Envoy's rate limit filter builds from the dynamic metadata key
// RateLimitKeyPrefix+Name. mcpauthz counts nothing itself; the rate limit
// service Envoy calls does.
type RateLimitEntry struct {
	Name  string
	Value string
}

// RateLimitKeyPrefix prefixes the dynamic metadata key of each rate_limit
// entry ("rate_limit.subject"). The key is one flat key, dot included:
// Envoy's metadata path names it as a single segment.
const RateLimitKeyPrefix = "rate_limit."

// Bounds of a decision's rate_limit. They keep what a policy adds to
// every response (and to the rate limit service's keys) small; a policy
// that goes past them is broken, and its decision denies.
const (
	MaxRateLimitEntries  = 16
	MaxRateLimitNameLen  = 64
	MaxRateLimitValueLen = 256
)

// rateLimitEntries reads decision.rate_limit: an object of names to
// non-empty strings, sorted by name. Names are [A-Za-z0-9_-] (no dot, so
// a metadata key names one entry); values are UTF-8 without control
// characters. Anything else is an error, and the decision denies: a rate
// limit the policy asked for and Envoy cannot apply must not become an
// unlimited allow.
func rateLimitEntries(v ast.Value) ([]RateLimitEntry, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, errors.New("not an object of names to strings")
	}
	if obj.Len() > MaxRateLimitEntries {
		return nil, fmt.Errorf("%d entries, more than %d", obj.Len(), MaxRateLimitEntries)
	}
	if obj.Len() == 0 {
		return nil, nil
	}
	rl := make([]RateLimitEntry, 0, obj.Len())
	err := obj.Iter(func(kt, vt *ast.Term) error {
		k, ok := kt.Value.(ast.String)
		if !ok {
			return fmt.Errorf("name %v is not a string", kt)
		}
		if !validRateLimitName(string(k)) {
			return fmt.Errorf("name %q is not 1 to %d of A-Z a-z 0-9 _ -", string(k), MaxRateLimitNameLen)
		}
		s, ok := vt.Value.(ast.String)
		if !ok {
			return fmt.Errorf("%s is %s, want a string", string(k), ast.ValueName(vt.Value))
		}
		if err := validRateLimitValue(string(s)); err != nil {
			return fmt.Errorf("%s: %w", string(k), err)
		}
		rl = append(rl, RateLimitEntry{Name: string(k), Value: string(s)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(rl, func(i, j int) bool { return rl[i].Name < rl[j].Name })
	return rl, nil
}

func validRateLimitName(s string) bool {
	if s == "" || len(s) > MaxRateLimitNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// validRateLimitValue: Envoy's metadata action treats an empty string as
// absent (no descriptor is sent, so no limit would apply), and the value
// becomes part of the rate limit service's cache key.
func validRateLimitValue(s string) error {
	switch {
	case s == "":
		return errors.New("empty value (Envoy would send no descriptor)")
	case len(s) > MaxRateLimitValueLen:
		return fmt.Errorf("value of %d bytes, more than %d", len(s), MaxRateLimitValueLen)
	case !utf8.ValidString(s):
		return errors.New("value is not UTF-8")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return errors.New("value has a control character")
		}
	}
	return nil
}

// rateLimitOf merges the rate_limit of the allowed messages of a body: in a
// batch, the first message that names an entry sets its value (Envoy takes
// one value per key), up to MaxRateLimitEntries in all.
func rateLimitOf(outs []outcome) []RateLimitEntry {
	if len(outs) == 1 {
		return outs[0].res.rateLimit // the common case: already sorted, no copy
	}
	var rl []RateLimitEntry
	for i := range outs {
		for _, e := range outs[i].res.rateLimit {
			if len(rl) < MaxRateLimitEntries && !hasRateLimit(rl, e.Name) {
				rl = append(rl, e)
			}
		}
	}
	sort.Slice(rl, func(i, j int) bool { return rl[i].Name < rl[j].Name })
	return rl
}

func hasRateLimit(rl []RateLimitEntry, name string) bool {
	for _, e := range rl {
		if e.Name == name {
			return true
		}
	}
	return false
}
