// Package steps owns the step kinds a scenario can use and the registry that
// maps a kind name to its typed spec. A kind decodes strictly into its spec,
// validates it, and runs it against an Env; kinds that create something say
// so before they run, so the engine can journal it and undo it later.
// Kinds know nothing about phases or their order.
package steps
