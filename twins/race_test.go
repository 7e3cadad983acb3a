//go:build race

package twins

// raceEnabled: the race detector slows every goroutine.
const raceEnabled = true
