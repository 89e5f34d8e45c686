package results

import (
	"encoding/json"
	"strings"
	"testing"
)

// BenchmarkRedact is the cost of redacting one tool result by its size,
// with one secret in it and with none (which returns the same bytes).
func BenchmarkRedact(b *testing.B) {
	re, err := NewPatterns().Compile(`\b(?:AKIA|ASIA)[0-9A-Z]{16}\b`)
	if err != nil {
		b.Fatal(err)
	}
	rs := []Redaction{{Pattern: re, With: "[aws]", Name: "aws"}}
	for _, size := range []struct {
		name string
		n    int
	}{{"1KiB", 1 << 10}, {"64KiB", 64 << 10}, {"1MiB", 1 << 20}} {
		for _, match := range []bool{false, true} {
			text := strings.Repeat("lorem ipsum ", size.n/12)
			if match {
				text = text[:len(text)/2] + " AKIAIOSFODNN7EXAMPLE " + text[len(text)/2:]
			}
			res, _ := json.Marshal(map[string]any{"content": []any{map[string]any{"type": "text", "text": text}}})
			name := size.name + "/no_match"
			if match {
				name = size.name + "/match"
			}
			b.Run(name, func(b *testing.B) {
				b.SetBytes(int64(len(res)))
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := Redact("tools/call", res, rs); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
