// Package loadgen is the load path: a pacer that fixes every event's intended
// send time in advance (an open model, so a slow system cannot slow the
// clock that judges it), a bounded pool of CloudEvents (or Kafka) senders,
// and a receiver that timestamps receipts. A load emits Records — intended,
// dropped, sent with its answer — to an Output, and a receiver hands each
// Receipt to a function; neither knows who consumes them (package measure,
// in a run). It depends on nothing in the engine and can be used as a
// library.
package loadgen
