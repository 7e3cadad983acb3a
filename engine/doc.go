// Package engine owns scenarios and runs: it decodes scenario files strictly
// (every error names file:line:column), resolves variables and paces, and
// executes the phases with guaranteed, journaled teardown. It knows nothing
// about what a step does; step kinds live in package steps.
package engine
