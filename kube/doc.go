// Package kube is the kubernetes target: a cluster reached the way kubectl
// and helm reach it (access.go: a kubeconfig, a context, a namespace,
// resolved once per run; credentials never leave the rest.Config), and one
// file per verb a step asks of it: install, upgrade, uninstall, wait (with
// the readiness rules in ready.go), apply, delete, logs, the port-forwards
// that reach sinks inside the cluster, the run's Lease and claim, and the
// label sweep that removes what the journal missed.
package kube
