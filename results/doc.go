// Package results owns a run's figures: T-Digest latency distributions with
// exact counts and extremes, an Aggregator that adds events up per second,
// pace step and phase with no I/O, Summarize (one pure function from
// measured steps to summary.json's figures, verdicts and thresholds), the
// Timeline and Recorder that write the per-second files, windows recomputed
// from them, and comparisons of runs. It knows nothing about how events are
// sent or received.
package results
