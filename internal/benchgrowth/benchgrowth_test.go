package benchgrowth

import (
	"slices"
	"testing"
)

func TestSizes(t *testing.T) {
	want := []int{10, 100, 1000}
	if testing.Short() {
		want = []int{10, 100}
	}
	if got := Sizes(100, 10, 100, 1000); !slices.Equal(got, want) {
		t.Errorf("Sizes(100, 10, 100, 1000) = %v, want %v (short %v)", got, want, testing.Short())
	}
}
