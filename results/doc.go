// Package results owns what a run measures: T-Digest latency distributions
// with exact counts and extremes, per-second, per-pace-step and per-phase
// windows of counters and digests, and the files a run leaves behind
// (timeline.tsv, summary.json, the saved digests). It knows nothing about
// how events are sent or received.
package results
