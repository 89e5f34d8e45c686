package mcp

import (
	"math"
	"strconv"

	"github.com/mcpauthz/mcpauthz/internal/jsonenc"
)

// The number rule (docs/security.md, "One reading of every message"): a
// number literal is accepted only when its exact decimal value is the value
// of the shortest decimal that round-trips the IEEE-754 double JavaScript's
// JSON.parse (and encoding/json into float64) reads from it. Rego compares
// numbers as exact decimals, so a literal such as 99.99999999999999999999 is
// below 100 for the policy and 100 for a server written in JavaScript; an
// id such as 7.00000000000000000001 comes back from such a server as 7.
// Where the literal is the shortest form of its double, the policy, the
// server and every reply agree on its value.

// maxExactDigits is the largest count of significant decimal digits that
// every double in the normal range tells apart (DBL_DIG): two decimals of at
// most this many digits never read as the same double, so the shortest form
// of the double such a literal reads as is the literal itself.
const maxExactDigits = 15

// Bounds of the exponent of the leading digit of a value that is inside the
// normal range of doubles (about 2.2e-308 to 1.8e308) whatever its digits.
const (
	minSafeLead = -307
	maxSafeLead = 307
)

// exactDouble reports whether the number literal lit, already checked
// against the JSON grammar, passes the number rule. Literals of at most
// maxExactDigits significant digits in the normal range pass without
// conversion, so ordinary numbers cost one pass over their bytes and no
// allocation; the others are converted and compared with their shortest
// round-trip form.
func exactDouble(lit []byte) bool {
	d := decimalOf(lit)
	if d.zero {
		return true // every zero, -0 included, reads as a zero
	}
	if d.digits <= maxExactDigits && d.lead >= minSafeLead && d.lead <= maxSafeLead {
		return true
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil || f == 0 {
		// Beyond the range of doubles (JavaScript reads ±Infinity), or a
		// nonzero literal that reads as zero.
		return false
	}
	var buf [32]byte
	short := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	s := decimalOf(short)
	if s.lead != d.lead || s.digits != d.digits {
		return false
	}
	return sameDigits(lit, short, d.digits)
}

// shortestForm is how JavaScript writes the double it reads from lit, for
// an error message.
func shortestForm(lit []byte) string {
	f, _ := strconv.ParseFloat(string(lit), 64)
	switch {
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	b, _ := jsonenc.AppendNumber(nil, f)
	return string(b)
}

// decimal describes the value of a number literal: how many significant
// digits it has (from the first nonzero digit to the last), and the
// power of ten of its first significant digit.
type decimal struct {
	zero   bool
	digits int
	lead   int
}

// expCap bounds the exponent read from a literal: far beyond any double,
// and far from overflowing an int however many digits the exponent has.
const expCap = 1 << 20

// decimalOf reads the significant digits and the magnitude of lit, a
// number literal in the JSON grammar (strconv's 'e' format is one too).
func decimalOf(lit []byte) decimal {
	var d decimal
	i := 0
	if i < len(lit) && lit[i] == '-' {
		i++
	}
	first, last := -1, -1 // positions of the first and last nonzero digits, counted over the mantissa's digits
	point := -1           // number of mantissa digits before the decimal point
	n := 0                // mantissa digits seen
	for ; i < len(lit); i++ {
		c := lit[i]
		if c == '.' {
			point = n
			continue
		}
		if c < '0' || c > '9' {
			break
		}
		if c != '0' {
			if first < 0 {
				first = n
			}
			last = n
		}
		n++
	}
	if point < 0 {
		point = n
	}
	exp := 0
	if i < len(lit) && (lit[i] == 'e' || lit[i] == 'E') {
		i++
		neg := false
		if i < len(lit) && (lit[i] == '+' || lit[i] == '-') {
			neg = lit[i] == '-'
			i++
		}
		for ; i < len(lit); i++ {
			if exp < expCap {
				exp = exp*10 + int(lit[i]-'0')
			}
		}
		if neg {
			exp = -exp
		}
	}
	if first < 0 {
		d.zero = true
		return d
	}
	d.digits = last - first + 1
	// The digit at mantissa position first stands for 10^(point-1-first).
	d.lead = point - 1 - first + exp
	return d
}

// sameDigits reports whether the first n significant digits of two
// literals are the same: the mantissa digits from the first nonzero one,
// the decimal point skipped.
func sameDigits(a, b []byte, n int) bool {
	i, j := firstSignificant(a), firstSignificant(b)
	for ; n > 0; n-- {
		for a[i] == '.' {
			i++
		}
		for b[j] == '.' {
			j++
		}
		if a[i] != b[j] {
			return false
		}
		i, j = i+1, j+1
	}
	return true
}

// firstSignificant returns the position of the first nonzero digit of a
// literal that has one.
func firstSignificant(lit []byte) int {
	i := 0
	for lit[i] < '1' || lit[i] > '9' {
		i++
	}
	return i
}
