// Package report turns a run's figures into what a person reads: the
// gnuplot scripts beside the run's TSV files, their rendering to PNG or SVG,
// report.md, and the overlay graph of a comparison. It computes no figure:
// every number it shows comes from a results.Summary.
package report
