//go:build race

package agent

// raceEnabled: the race detector slows the generators enough to spread
// their sends.
const raceEnabled = true
