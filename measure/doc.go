// Package measure owns one run's measurement: it opens the run's recorder,
// runs the receivers and the router that accounts for every event by load
// and sequence number, consumes the records loads emit (loadgen's, or later
// a remote agent's), drains, counts lost and duplicate events exactly, and
// finishes into a results.Summary. It is the one place where what was sent
// meets what was received.
package measure
