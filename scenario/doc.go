// Package scenario reads scenario files: their types (phases, steps,
// defaults, pace sets, thresholds), variables with their -f and --set
// overrides, templates rendered before steps are decoded, every step's spec
// decoded strictly by its kind, and the JSON Schema of it all. Every
// problem is reported at once, each at its file:line:column, through
// package internal/strictyaml.
package scenario
