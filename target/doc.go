// Package target says what a step needs from where the systems under test
// live: the Target every kind of target offers (charts, readiness, sinks,
// Kafka), the Cluster a Kubernetes API adds (apply, delete, wait, logs), the
// optional parts a shared target has (a claim, a sweep), the grammar of sink
// names, and the errors steps act on. It holds no implementation: package
// twins is the local target, package kube the kubernetes one, and
// target/fake a recording fake for unit tests of steps.
package target
