//go:build !race

package twins

const raceEnabled = false
