//go:build race

package measure

// raceEnabled: the race detector slows every goroutine, so latencies that
// include the load path grow too.
const raceEnabled = true
