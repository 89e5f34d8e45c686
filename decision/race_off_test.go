//go:build !race

package decision

// raceEnabled: the race detector is on, and allocation counts are its own.
const raceEnabled = false
