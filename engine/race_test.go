//go:build race

package engine

// raceEnabled: the race detector slows every goroutine, the load path's
// among them.
const raceEnabled = true
