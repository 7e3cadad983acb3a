// Package engine runs a scenario once: it claims a run directory, opens the
// target through the opener it is given, runs the phases with each step's
// timeout and retries, journals what steps create before they run,
// guarantees the teardown (and finishes a dead run's with Cleanup), and
// reports progress. It knows no step kind and no target: step kinds live in
// package steps, targets behind package target, scenarios in package
// scenario.
package engine
