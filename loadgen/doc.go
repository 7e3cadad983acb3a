// Package loadgen is the load path: a pacer that fixes every event's intended
// send time in advance (an open model, so a slow system cannot slow the
// clock that judges it), a bounded pool of CloudEvents senders, a receiver
// that timestamps receipts, and a tracker that accounts for every event by
// sender and sequence number. Measurements go to a results.Recorder. It
// depends on nothing in the engine and can be used as a library.
package loadgen
