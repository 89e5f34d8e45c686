package mcp

import (
	"math/big"
	"strconv"
	"strings"
	"testing"
)

func TestExactDouble(t *testing.T) {
	tests := map[string]struct {
		lit  string
		want bool
	}{
		"zero":                    {"0", true},
		"negative_zero":           {"-0", true},
		"zero_with_fraction":      {"0.000", true},
		"zero_with_huge_exponent": {"0e99999999", true},
		"small_integer":           {"42", true},
		"negative_integer":        {"-17", true},
		"one_tenth":               {"0.1", true},
		"trailing_zero":           {"1.50", true},
		"exponent_form":           {"1e2", true},
		"hundred_with_point":      {"100.0", true},
		"upper_exponent":          {"-3.25E-2", true},
		"leading_zeros_fraction":  {"0.000001", true},
		"fifteen_digits":          {"123456789012345", true},
		"two_to_the_53":           {"9007199254740992", true},
		"two_to_the_53_plus_one":  {"9007199254740993", false},
		"shortest_17_digits":      {"0.30000000000000004", true},
		"exact_binary_of_0_1":     {"0.1000000000000000055511151231257827021181583404541015625", false},
		"seventeen_digits_of_0_1": {"0.10000000000000001", false},
		"rounds_to_100":           {"99.99999999999999999999", false},
		"rounds_to_7":             {"7.00000000000000000001", false},
		"beyond_int64":            {"123456789012345678901234567890", false},
		"int64_max":               {"9223372036854775807", false},
		"large_power_of_ten":      {"1e300", true},
		"1e23_as_integer":         {"100000000000000000000000", true},
		"max_double":              {"1.7976931348623157e308", true},
		"beyond_max_double":       {"1.7976931348623159e308", false},
		"overflow":                {"1e400", false},
		"negative_overflow":       {"-1e400", false},
		"min_normal":              {"2.2250738585072014e-308", true},
		"min_subnormal":           {"5e-324", true},
		"subnormal_not_shortest":  {"4.9e-324", false},
		"underflow":               {"1e-400", false},
		"huge_negative_exponent":  {"-1e-99999999", false},
		"digits_then_exponent":    {"12.5e+3", true},
		"fraction_moves_point":    {"0.0125e6", true},
		"long_exponent_digits":    {"1e0000000000000000000000000000002", true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := exactDouble([]byte(tc.lit)); got != tc.want {
				t.Errorf("exactDouble(%s) = %v, want %v", tc.lit, got, tc.want)
			}
			if ref := referenceExact(tc.lit); ref != tc.want {
				t.Errorf("reference model says %v for %s, the table %v", ref, tc.lit, tc.want)
			}
		})
	}
}

// referenceExact is the number rule computed the slow, obvious way: the
// literal's exact value (math/big) equals the exact value of the shortest
// round-trip form of the double strconv reads from it.
func referenceExact(lit string) bool {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil {
		return false // ±Inf
	}
	mant, _, _ := strings.Cut(strings.ToLower(lit), "e")
	if f == 0 {
		// Zero only when the literal is zero; its exponent need not be read
		// (math/big would compute 10^99999999 for 0e99999999).
		return !strings.ContainsAny(mant, "123456789")
	}
	// A finite nonzero double has an exponent within ±400 or so, and a
	// literal's digits are few: math/big's work is bounded.
	exact, ok := new(big.Rat).SetString(lit)
	if !ok {
		panic("not a number literal: " + lit)
	}
	short, _ := new(big.Rat).SetString(strconv.FormatFloat(f, 'g', -1, 64))
	return exact.Cmp(short) == 0
}

func FuzzExactDouble(f *testing.F) {
	for _, s := range []string{"0", "-0", "0.1", "1e2", "9007199254740993", "99.99999999999999999999",
		"1e400", "4.9e-324", "0.30000000000000004", "123456789012345678901234567890", "1.50"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, lit string) {
		p := &parser{b: []byte(lit)}
		if len(lit) == 0 || len(lit) > MaxNumber || p.scanNumberGrammar() != nil || p.i != len(lit) {
			return // not one number literal the parser would judge
		}
		if got, want := exactDouble([]byte(lit)), referenceExact(lit); got != want {
			t.Fatalf("exactDouble(%s) = %v, reference %v", lit, got, want)
		}
	})
}

// BenchmarkExactDouble: ordinary literals take the fast path (no
// conversion, no allocation); long ones are converted.
func BenchmarkExactDouble(b *testing.B) {
	for name, lit := range map[string]string{
		"integer":          "42",
		"decimal":          "-3.25E-2",
		"seventeen_digits": "0.30000000000000004",
		"not_a_double":     "99.99999999999999999999",
	} {
		b.Run(name, func(b *testing.B) {
			l := []byte(lit)
			b.ReportAllocs()
			for b.Loop() {
				exactDouble(l)
			}
		})
	}
}
